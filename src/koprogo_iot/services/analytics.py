"""Time series, consumption reports and insights as the caller may see them: the sensors and places a principal
may read are resolved here, then handed to the computations in `koprogo_iot.analytics`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from uuid import UUID
from zoneinfo import ZoneInfo

from koprogo_iot.analytics import aggregates, balance, forecast, insights, series
from koprogo_iot.analytics.aggregates import (
    ComparisonReport,
    ConsumptionReport,
    Counters,
    GroupBy,
    MedianReport,
    Period,
    SensorScope,
)
from koprogo_iot.analytics.balance import BalanceReport
from koprogo_iot.analytics.insights import InsightReport, Prices
from koprogo_iot.analytics.series import TimeSeries
from koprogo_iot.domain.access import Principal
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.consumption import DEFAULT_ZONE
from koprogo_iot.domain.errors import NotFound
from koprogo_iot.domain.sensors import MeasurementKind, SensorType
from koprogo_iot.services.provisioning import Provisioning
from koprogo_iot.storage.ports import ReadingSource


class Horizon(StrEnum):
    MONTH = "month"  # to the end of the current month
    YEAR = "year"  # to the end of the current year


@dataclass(frozen=True, slots=True)
class GroupForecast:
    key: str
    label: str
    unit_of_measure: str
    projection: forecast.Projection


@dataclass(frozen=True, slots=True)
class ForecastReport:
    horizon: Horizon
    today: date  # in Europe/Brussels: forecasts start here, what came before is measured
    groups: list[GroupForecast]
    timezone: str = DEFAULT_ZONE


# Enough history for the model: a year back (its yearly profile) plus its level window and back-testing origins.
_HISTORY = timedelta(days=forecast.YEAR + forecast.LEVEL_DAYS + forecast.BACKTEST_DAYS + 7 * forecast.ORIGINS + 7)


class Analytics:
    def __init__(self, provisioning: Provisioning, source: ReadingSource) -> None:
        self.provisioning = provisioning
        self.source = source

    async def time_series(
        self,
        principal: Principal,
        sensor_id: UUID,
        start: datetime | None = None,
        end: datetime | None = None,
        interval: int = series.DEFAULT_INTERVAL,
    ) -> TimeSeries:
        """A sensor's series; another organization's sensor, or a neighbour's for an owner, is NotFound."""
        sensor = await self.provisioning.get_sensor(principal, sensor_id)
        return await series.time_series(self.source, sensor, start, end, interval)

    async def counters(self, principal: Principal, scope: SensorScope) -> Counters:
        """The counters of `scope` the caller may see (another organization's building or unit: NotFound), and
        the names of the buildings and units they may see."""
        if scope.building_id is not None:
            await self.provisioning.get_building(principal, scope.building_id)
        units = await self.provisioning.list_units(principal)
        if scope.unit_id is not None and scope.unit_id not in {u.id for u in units}:
            raise NotFound(f"unit {scope.unit_id} not found")
        sensors = [
            s
            for s in await self.provisioning.list_sensors(principal, scope.building_id, scope.unit_id)
            if s.measurement_kind is MeasurementKind.CUMULATIVE and scope.sensor_type in (None, s.sensor_type)
        ]
        labels = {b.id: b.name for b in await self.provisioning.list_buildings(principal)}
        labels |= {u.id: u.name for u in units}
        return Counters(principal.organization_id, sensors, labels)

    async def consumption(
        self,
        principal: Principal,
        scope: SensorScope,
        group_by: GroupBy = GroupBy.BUILDING,
        period: Period = Period.DAY,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> ConsumptionReport:
        counters = await self.counters(principal, scope)
        return await aggregates.consumption_report(self.source, counters, group_by, period, start, end)

    async def units_vs_median(
        self,
        principal: Principal,
        building_id: UUID,
        sensor_type: SensorType,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> MedianReport:
        """For managers only: an owner sees only their own units, so a median over what they may see would compare
        them with themselves."""
        principal.require_manager()
        counters = await self.counters(principal, SensorScope(building_id=building_id, sensor_type=sensor_type))
        return await aggregates.units_vs_median(self.source, counters, building_id, sensor_type, start, end)

    async def building_balance(
        self,
        principal: Principal,
        building_id: UUID,
        sensor_type: SensorType | None = None,
        period: Period = Period.DAY,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> BalanceReport:
        """The building's main meters against the sum of its units' meters. For managers only: an owner sees only
        their own units, so the sum would miss the neighbours' and the whole difference look unexplained."""
        principal.require_manager()
        counters = await self.counters(principal, SensorScope(building_id=building_id))
        return await balance.building_balance(self.source, counters, building_id, sensor_type, period, start, end)

    async def period_comparison(
        self,
        principal: Principal,
        scope: SensorScope,
        group_by: GroupBy = GroupBy.BUILDING,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> ComparisonReport:
        counters = await self.counters(principal, scope)
        return await aggregates.period_comparison(self.source, counters, group_by, start, end)

    async def insights(
        self,
        principal: Principal,
        building_id: UUID | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        prices: Prices | None = None,
    ) -> InsightReport:
        """Insights on the counters the caller may see; building-wide ones (ratios, units against their median)
        only for managers, who see whole buildings."""
        counters = await self.counters(principal, SensorScope(building_id=building_id))
        return await insights.building_insights(
            self.source, counters, building_id, start, end, prices, building_wide=principal.role.manages
        )

    async def forecast(
        self,
        principal: Principal,
        scope: SensorScope,
        group_by: GroupBy = GroupBy.BUILDING,
        horizon: Horizon = Horizon.MONTH,
        now: datetime | None = None,
    ) -> ForecastReport:
        """Each group's projected consumption to the end of the month or year (`analytics.forecast`)."""
        zone = ZoneInfo(DEFAULT_ZONE)
        today = (now or utcnow()).astimezone(zone).date()
        start = today.replace(day=1) if horizon is Horizon.MONTH else today.replace(month=1, day=1)
        end = (
            (start + timedelta(days=32)).replace(day=1)
            if horizon is Horizon.MONTH
            else start.replace(year=start.year + 1)
        )
        counters = await self.counters(principal, scope)

        def midnight(day: date) -> datetime:
            return datetime(day.year, day.month, day.day, tzinfo=zone)

        first = min(start, today - _HISTORY)
        report = await aggregates.consumption_report(
            self.source, counters, group_by, Period.DAY, midnight(first), midnight(today)
        )
        groups = []
        for group in report.groups:
            daily = {b.start.astimezone(zone).date(): b.consumption for b in group.buckets if b.consumption is not None}
            projection = forecast.project(daily, today, start, end)
            groups.append(GroupForecast(group.key, group.label, group.unit_of_measure, projection))
        return ForecastReport(horizon, today, groups)
