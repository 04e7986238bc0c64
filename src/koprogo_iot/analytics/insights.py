"""Insights: recommendations computed from the counters' readings, each with the figures behind it.

Rules (thresholds are the constants below, each with its reason):
- `continuous_flow`: a water counter whose night flow (02:00-05:00 in Brussels) never fell below `LEAK_FLOW_L_PER_H`
  over its last `LEAK_NIGHTS` measured nights (at least `MIN_NIGHTS`): a probable leak.
- `unit_above_median`: a unit consuming more than `MEDIAN_EXCESS` above the median of its building's units, per
  sensor type, among at least `MIN_UNITS_FOR_MEDIAN` units with data. Managers only: an owner sees only their units.
- `hot_cold_ratio`: hot water above `HOT_SHARE` of a unit's water (hot + cold), or of the building's (managers only).
- `standby_electricity`: a common electricity counter whose night power is at least `STANDBY_SHARE` of its daytime
  power (08:00-20:00), or above `STANDBY_NIGHT_KW`.
- `building_balance`: a building's main meter counting more than `BALANCE_SHARE` above the sum of its units' meters
  of its medium over the period (`analytics.balance`). Managers only: an owner does not see the other units.
Only sensors the caller may see are read (the analytics service narrows them to the owner's scope), so an owner
never gets an insight about a neighbour's unit. The period is trimmed to whole hours so the hourly rollups answer;
nights and days are examined over its last `RECENT_SPAN`; a longer period's whole local days come from the daily
rollups.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from uuid import UUID
from zoneinfo import ZoneInfo

from koprogo_iot.analytics.aggregates import Counters
from koprogo_iot.analytics.balance import MediumBalance, balances, meterings
from koprogo_iot.analytics.series import resolve_period
from koprogo_iot.domain.consumption import (
    DEFAULT_ZONE,
    Bucket,
    CounterResult,
    Point,
    bucket_floor,
    consumption_by_bucket,
    median,
    relative_change,
)
from koprogo_iot.domain.errors import InvalidValue
from koprogo_iot.domain.rollups import Rollups, local_day
from koprogo_iot.domain.sensors import IoTSensor, SensorType
from koprogo_iot.domain.units import canonical, conversion_factor
from koprogo_iot.storage.ports import ReadingSource

DEFAULT_SPAN = timedelta(days=30)  # default period: the last 30 days
# Nights and days are examined over the period's last 30 days only: they tell today's leaks and standby, and this
# bounds the hourly rows read whatever the period (a year's totals come from the daily rollups).
RECENT_SPAN = timedelta(days=30)
HOURS_PER_YEAR = 8760

# Prices valuing the waste, overridable per request: all-in Belgian tariffs of 2024-2025 (water with sanitation and
# VAT is about 4.5 EUR/m³ in Brussels and 5-6 EUR/m³ in Flanders and Wallonia; electricity about 0.30 EUR/kWh).
DEFAULT_WATER_PRICE_EUR_PER_M3 = 5.0
DEFAULT_ELECTRICITY_PRICE_EUR_PER_KWH = 0.30

# Local hours when nobody normally draws water and common areas should only draw their standby (lifts, emergency
# lighting, ventilation); and the hours when they are in use.
NIGHT = (time(2), time(5))
DAYTIME = (time(8), time(20))
# A dripping tap already loses a few litres an hour; under 1 L/h (3 L over the night) a meter's 1 L resolution
# cannot tell a flow from its rounding.
LEAK_FLOW_L_PER_H = 1.0
# 10 L/h is 88 m³ a year, more than a two-person household uses (Belgians use about 100 L per person per day).
LEAK_CRITICAL_FLOW_L_PER_H = 10.0
# A week of nights covers weekday and weekend habits and says whether a leak is running now, not months ago.
LEAK_NIGHTS = 7
MIN_NIGHTS = 3  # fewer nights or days cannot tell a habit (a late dishwasher) from a flow that never stops
# Flats differ in size and occupancy: only a unit 50 % above the median is worth a look, 100 % a closer one.
MEDIAN_EXCESS = 0.5
MEDIAN_EXCESS_WARNING = 1.0
MIN_UNITS_FOR_MEDIAN = 3  # the median of two units is their mean: one high unit would drag it up
# Hot water is usually a third to two fifths of a household's water; above 60 % hints at a hot water leak, above
# 80 % at swapped meters.
HOT_SHARE = 0.6
HOT_SHARE_WARNING = 0.8
MIN_RATIO_WATER_M3 = 0.5  # on less water a few showers swing the ratio
# Common areas draw far less at night than by day (lighting, lifts); a night at half the day's power means something
# runs around the clock. 1 kW all night is 8,760 kWh a year, what the common areas of a small building use in total.
STANDBY_SHARE = 0.5
STANDBY_WARNING_SHARE = 0.8
STANDBY_NIGHT_KW = 1.0
MIN_STANDBY_KW = 0.05  # 50 W is emergency lighting and the meters themselves: no saving to find below
# A period total covering less than this share of the period (a sensor installed or silent meanwhile) is left out
# of the comparisons: it would look low, and drag the median down.
MIN_COVERAGE = 0.9
# Building-wide ratio from at least two units: with one, it repeats that unit's insight.
MIN_UNITS_FOR_BUILDING_RATIO = 2
# Meters may each err by 2 % (Measuring Instruments Directive, usual flows): a main meter 3 % above the sum of the
# units' is beyond what the meters explain, 10 % is a loss worth acting on (the balance alert's default is 3 % too).
BALANCE_SHARE = 0.03
BALANCE_SHARE_WARNING = 0.10

_WATER = (SensorType.COLD_WATER, SensorType.HOT_WATER)
_HOUR = timedelta(hours=1)
_ZONE = ZoneInfo(DEFAULT_ZONE)


class InsightKind(StrEnum):
    CONTINUOUS_FLOW = "continuous_flow"
    UNIT_ABOVE_MEDIAN = "unit_above_median"
    HOT_COLD_RATIO = "hot_cold_ratio"
    STANDBY_ELECTRICITY = "standby_electricity"
    BUILDING_BALANCE = "building_balance"


class Severity(StrEnum):
    CRITICAL = "critical"  # costs a lot every day: act now
    WARNING = "warning"  # probably a fault: check soon
    INFO = "info"  # worth knowing


@dataclass(frozen=True, slots=True)
class Figure:
    """One number behind an insight, with its unit."""

    value: float
    unit: str


@dataclass(frozen=True, slots=True)
class Insight:
    """A recommendation in plain language, and the figures it rests on."""

    kind: InsightKind
    severity: Severity
    building_id: UUID
    title: str
    message: str
    figures: dict[str, Figure]
    sensor_id: UUID | None = None
    unit_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class Prices:
    """What a m³ of water and a kWh of electricity cost, to value the waste."""

    water_eur_per_m3: float = DEFAULT_WATER_PRICE_EUR_PER_M3
    electricity_eur_per_kwh: float = DEFAULT_ELECTRICITY_PRICE_EUR_PER_KWH

    def __post_init__(self) -> None:
        for name, price in (
            ("water price", self.water_eur_per_m3),
            ("electricity price", self.electricity_eur_per_kwh),
        ):
            if not (math.isfinite(price) and price > 0):
                raise InvalidValue(f"{name} must be a positive number")


@dataclass(frozen=True, slots=True)
class InsightReport:
    start: datetime
    end: datetime
    building_id: UUID | None
    prices: Prices
    insights: list[Insight]
    timezone: str = DEFAULT_ZONE


@dataclass(frozen=True, slots=True)
class _Usage:
    """A counter's consumption in its base unit (m³, kWh): over the period, and per whole night and daytime."""

    sensor: IoTSensor
    base_unit: str
    total: float | None  # None: unknown, or covering less than MIN_COVERAGE of the period
    nights: list[tuple[Bucket, float]]  # only windows with readings on both sides
    days: list[tuple[Bucket, float]]


@dataclass(frozen=True, slots=True)
class _Names:
    names: Mapping[UUID, str]  # of units and buildings

    def place(self, sensor: IoTSensor) -> str:
        """Where a sensor is, for a syndic: its unit (or the common areas) and its location."""
        owner = self.names.get(sensor.unit_id, "a unit") if sensor.unit_id is not None else "common areas"
        return f"{owner}, {sensor.location}"

    def building(self, building_id: UUID) -> str:
        return self.names.get(building_id, str(building_id))


async def building_insights(
    source: ReadingSource,
    counters: Counters,
    building_id: UUID | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    prices: Prices | None = None,
    building_wide: bool = True,
) -> InsightReport:
    """The insights on `counters` (one building's, or the organization's). `building_wide`: the caller sees whole
    buildings (a manager), so building-wide ratios and comparisons between units are given too."""
    prices = prices or Prices()
    start, end = whole_hours(start, end)
    sensors = list(counters.sensors)
    names = _Names(counters.names)
    organization_id = counters.organization_id
    ids = [s.id for s in sensors]
    recent = (max(start, end - RECENT_SPAN), end)
    # Local 02:00 and 08:00 are whole UTC hours (Brussels is a whole number of hours from UTC): hourly rollups answer.
    hourly = await source.points(organization_id, ids, *recent, Rollups.HOURLY)
    nights, days = local_windows(*recent, NIGHT), local_windows(*recent, DAYTIME)
    pieces = [((start, end), hourly)]
    if recent[0] > start:
        # A longer period: whole local days from the daily rollups, the hours around them from the hourly ones.
        # Consumption of adjacent pieces adds up exactly (the domain spreads each step linearly over its span).
        first, last = _midnight_on_or_after(start), local_day(end, _ZONE)[0]
        pieces = [((first, last), await source.points(organization_id, ids, first, last, Rollups.DAILY))]
        if first > start:
            head = await source.points(organization_id, ids, start, first, Rollups.HOURLY)
            pieces.insert(0, ((start, first), head))
        if end > last:
            pieces.append(((last, end), hourly))  # within the recent hours, already read
    usages = [
        _usage(s, [(piece, points[s.id]) for piece, points in pieces], hourly[s.id], nights, days) for s in sensors
    ]
    found = [
        *continuous_flows(usages, names, prices),
        *standby_electricity(usages, names, prices),
        *hot_cold_ratios(usages, names, building_wide=building_wide),
    ]
    if building_wide:
        found += units_above_median(usages, names)
        # One bucket of whole hours: the hourly rollups answer, as the figures above.
        period = await balances(source, organization_id, meterings(sensors), [(start, end)], Rollups.HOURLY)
        found += building_balances(period, names)
    order = list(Severity)
    found.sort(key=lambda i: (order.index(i.severity), str(i.building_id), i.kind.value, i.title))
    return InsightReport(start, end, building_id, prices, found)


def whole_hours(start: datetime | None, end: datetime | None) -> Bucket:
    """The period in whole UTC hours: `end` (default now) floored, `start` (default 30 days before) raised."""
    given = start
    start, end = resolve_period(start, end, DEFAULT_SPAN)
    end = bucket_floor(end, _HOUR)
    floor = bucket_floor(start, _HOUR)
    start = end - DEFAULT_SPAN if given is None else floor if floor == start else floor + _HOUR
    if end <= start:
        raise InvalidValue("the period must hold at least one whole hour")
    return start, end


def local_windows(start: datetime, end: datetime, hours: tuple[time, time], zone: str = DEFAULT_ZONE) -> list[Bucket]:
    """The daily windows [from, to) in local time lying wholly inside [start, end), as UTC instants.

    On DST days a window lasts an hour less or more: `_per_hour` divides by its real length.
    """
    tz = ZoneInfo(zone)
    day = start.astimezone(tz).date()
    windows: list[Bucket] = []
    while (opening := datetime.combine(day, hours[0], tz).astimezone(UTC)) < end:
        closing = datetime.combine(day, hours[1], tz).astimezone(UTC)
        if opening >= start and closing <= end:
            windows.append((opening, closing))
        day += timedelta(days=1)
    return windows


def continuous_flows(usages: Iterable[_Usage], names: _Names, prices: Prices) -> list[Insight]:
    """Water counters whose night flow never stopped over their last measured nights: probable leaks."""
    found = []
    for usage in usages:
        sensor = usage.sensor
        if sensor.sensor_type not in _WATER or usage.base_unit != "m³":
            continue
        nights = usage.nights[-LEAK_NIGHTS:]
        flows = [_per_hour(m3, night) * 1000 for night, m3 in nights]  # L/h
        if len(flows) < MIN_NIGHTS or min(flows) < LEAK_FLOW_L_PER_H:
            continue
        lowest, middle = min(flows), statistics.median(flows)
        # The flow that never stopped is at least the lowest night's: a conservative estimate of the leak.
        waste_m3 = lowest * HOURS_PER_YEAR / 1000
        water = "hot water" if sensor.sensor_type is SensorType.HOT_WATER else "cold water"
        first, last = nights[0][0][0], nights[-1][0][0]
        found.append(
            Insight(
                kind=InsightKind.CONTINUOUS_FLOW,
                severity=Severity.CRITICAL if lowest >= LEAK_CRITICAL_FLOW_L_PER_H else Severity.WARNING,
                building_id=sensor.building_id,
                sensor_id=sensor.id,
                unit_id=sensor.unit_id,
                title=f"Probable leak: {water} never stops at night ({names.place(sensor)})",
                message=(
                    f"On each of the {len(flows)} nights from {_local_date(first)} to {_local_date(last)}, the "
                    f"{water} meter kept running between 02:00 and 05:00: at least {lowest:.1f} L/h "
                    f"(median night: {middle:.1f} L/h). Water that never stops usually means a leak: a running "
                    f"toilet, a dripping tap or a leaking pipe. At this rate about {waste_m3:.0f} m³ "
                    f"(EUR {waste_m3 * prices.water_eur_per_m3:.0f}) are lost a year."
                ),
                figures={
                    "nights_examined": Figure(len(flows), "nights"),
                    "min_night_flow": Figure(_round(lowest), "L/h"),
                    "median_night_flow": Figure(_round(middle), "L/h"),
                    "threshold": Figure(LEAK_FLOW_L_PER_H, "L/h"),
                    "yearly_waste": Figure(_round(waste_m3), "m³"),
                    "yearly_cost": Figure(round(waste_m3 * prices.water_eur_per_m3, 2), "EUR"),
                    "price": Figure(prices.water_eur_per_m3, "EUR/m³"),
                },
            )
        )
    return found


def standby_electricity(usages: Iterable[_Usage], names: _Names, prices: Prices) -> list[Insight]:
    """Common electricity counters drawing at night a large share of their daytime power."""
    found = []
    for usage in usages:
        sensor = usage.sensor
        if sensor.sensor_type is not SensorType.ELECTRICITY or sensor.unit_id is not None or usage.base_unit != "kWh":
            continue
        if len(usage.nights) < MIN_NIGHTS or len(usage.days) < MIN_NIGHTS:
            continue
        night_kw, day_kw = _mean_power(usage.nights), _mean_power(usage.days)
        share = night_kw / day_kw if day_kw > 0 else math.inf
        if night_kw < MIN_STANDBY_KW or (share < STANDBY_SHARE and night_kw < STANDBY_NIGHT_KW):
            continue
        # The night draw runs around the clock: it is the floor under the daytime use too.
        yearly_kwh = night_kw * HOURS_PER_YEAR
        share_text = f", {share:.0%} of the {day_kw:.2f} kW drawn by day" if math.isfinite(share) else ""
        figures = {
            "nights_examined": Figure(len(usage.nights), "nights"),
            "days_examined": Figure(len(usage.days), "days"),
            "night_power": Figure(_round(night_kw), "kW"),
            "day_power": Figure(_round(day_kw), "kW"),
            **({"night_share": Figure(_round(share * 100), "%")} if math.isfinite(share) else {}),
            "yearly_standby": Figure(round(yearly_kwh, 1), "kWh"),
            "yearly_cost": Figure(round(yearly_kwh * prices.electricity_eur_per_kwh, 2), "EUR"),
            "price": Figure(prices.electricity_eur_per_kwh, "EUR/kWh"),
        }
        warning = share >= STANDBY_WARNING_SHARE or night_kw >= STANDBY_NIGHT_KW
        found.append(
            Insight(
                kind=InsightKind.STANDBY_ELECTRICITY,
                severity=Severity.WARNING if warning else Severity.INFO,
                building_id=sensor.building_id,
                sensor_id=sensor.id,
                title=f"High night-time electricity in the common areas ({sensor.location})",
                message=(
                    f"Between 02:00 and 05:00 the common areas draw {night_kw:.2f} kW on average{share_text}. "
                    f"Something runs around the clock: lighting left on, ventilation, a pump or a heater. This "
                    f"standby comes to about {yearly_kwh:,.0f} kWh "
                    f"(EUR {yearly_kwh * prices.electricity_eur_per_kwh:,.0f}) a year; timers or presence "
                    "detectors often cut it."
                ),
                figures=figures,
            )
        )
    return found


def hot_cold_ratios(usages: Sequence[_Usage], names: _Names, *, building_wide: bool) -> list[Insight]:
    """Units, and with `building_wide` buildings, whose hot water is an unusually large share of their water."""
    water = {t: _unit_totals(usages, t, "m³") for t in _WATER}
    hot, cold = water[SensorType.HOT_WATER], water[SensorType.COLD_WATER]
    found = []
    per_building: dict[UUID, list[tuple[float, float]]] = {}
    for (building_id, unit_id), hot_m3 in sorted(hot.items(), key=lambda item: str(item[0])):
        if (cold_m3 := cold.get((building_id, unit_id))) is None:
            continue
        per_building.setdefault(building_id, []).append((hot_m3, cold_m3))
        place = names.names.get(unit_id, str(unit_id))
        found += _ratio_insight(building_id, unit_id, place, hot_m3, cold_m3)
    if building_wide:
        for building_id, pairs in per_building.items():
            if len(pairs) >= MIN_UNITS_FOR_BUILDING_RATIO:
                place = f"all units of {names.building(building_id)}"
                found += _ratio_insight(
                    building_id, None, place, math.fsum(h for h, _ in pairs), math.fsum(c for _, c in pairs)
                )
    return found


def _ratio_insight(building_id: UUID, unit_id: UUID | None, place: str, hot_m3: float, cold_m3: float) -> list[Insight]:
    total = hot_m3 + cold_m3
    if total < MIN_RATIO_WATER_M3 or hot_m3 / total <= HOT_SHARE:
        return []
    ratio = hot_m3 / total
    return [
        Insight(
            kind=InsightKind.HOT_COLD_RATIO,
            severity=Severity.WARNING if ratio > HOT_SHARE_WARNING else Severity.INFO,
            building_id=building_id,
            unit_id=unit_id,
            title=f"Hot water is {ratio:.0%} of the water used ({place})",
            message=(
                f"Over the period, {place} used {hot_m3:.2f} m³ of hot water and {cold_m3:.2f} m³ of cold water: "
                f"hot water is {ratio:.0%} of the total, where a third to two fifths is usual. Check for a dripping "
                "hot tap or a leak on the hot water pipes; a share this high can also mean the hot and cold meters "
                "were swapped at installation."
            ),
            figures={
                "hot_water": Figure(_round(hot_m3), "m³"),
                "cold_water": Figure(_round(cold_m3), "m³"),
                "hot_share": Figure(_round(ratio * 100), "%"),
                "threshold": Figure(HOT_SHARE * 100, "%"),
            },
        )
    ]


def units_above_median(usages: Sequence[_Usage], names: _Names) -> list[Insight]:
    """Units consuming far more than the median of their building's units, per sensor type and unit of measure."""
    groups: dict[tuple[UUID, SensorType, str], dict[UUID, float]] = {}
    for sensor_type in {u.sensor.sensor_type for u in usages}:
        for base_unit in {u.base_unit for u in usages if u.sensor.sensor_type is sensor_type}:
            for (building_id, unit_id), total in _unit_totals(usages, sensor_type, base_unit).items():
                groups.setdefault((building_id, sensor_type, base_unit), {})[unit_id] = total
    found = []
    for (building_id, sensor_type, base_unit), totals in sorted(groups.items(), key=lambda item: str(item[0])):
        middle = median(totals.values())
        if len(totals) < MIN_UNITS_FOR_MEDIAN or not middle:
            continue
        for unit_id, total in sorted(totals.items(), key=lambda item: str(item[0])):
            excess = relative_change(total, middle)
            if excess is None or excess <= MEDIAN_EXCESS:
                continue
            unit = names.names.get(unit_id, str(unit_id))
            what = sensor_type.value.replace("_", " ")
            found.append(
                Insight(
                    kind=InsightKind.UNIT_ABOVE_MEDIAN,
                    severity=Severity.WARNING if excess >= MEDIAN_EXCESS_WARNING else Severity.INFO,
                    building_id=building_id,
                    unit_id=unit_id,
                    title=f"{unit} uses {excess:.0%} more {what} than the building's median",
                    message=(
                        f"Over the period, {unit} used {total:.2f} {base_unit} of {what}, against a median of "
                        f"{middle:.2f} {base_unit} over the building's {len(totals)} units with readings. A larger "
                        "household can explain it; otherwise look for a leak or a faulty appliance, or ask the "
                        "occupants."
                    ),
                    figures={
                        "consumption": Figure(_round(total), base_unit),
                        "median": Figure(_round(middle), base_unit),
                        "deviation": Figure(_round(excess * 100), "%"),
                        "units_compared": Figure(len(totals), "units"),
                    },
                )
            )
    return found


def building_balances(found: Iterable[MediumBalance], names: _Names) -> list[Insight]:
    """Main meters counting notably more than their units' meters over the period."""
    insights = []
    for balance in found:
        total = balance.total
        if total is None or total.share is None or total.share <= BALANCE_SHARE:
            continue
        main, units, unexplained = total.main or 0.0, total.units or 0.0, total.unexplained or 0.0
        uom, what = balance.unit_of_measure, balance.sensor_type.value.replace("_", " ")
        caveat = (
            " The figures are estimated: a meter has a gap in its readings or none at all, which can itself explain "
            "part of the difference."
            if total.estimated
            else ""
        )
        place = names.building(balance.building_id)
        insights.append(
            Insight(
                kind=InsightKind.BUILDING_BALANCE,
                severity=Severity.WARNING if total.share >= BALANCE_SHARE_WARNING else Severity.INFO,
                building_id=balance.building_id,
                sensor_id=balance.main_sensor_id,
                title=f"{total.share:.1%} of the {what} of {place} goes through no unit's meter",
                message=(
                    f"Over the period the main {what} meter counted {main:.3f} {uom} and the "
                    f"{total.units_total} units' meters {units:.3f} {uom}: {unexplained:.3f} {uom} "
                    f"({total.share:.1%}) is unexplained, more than the meters' own tolerance. Look for a leak on "
                    f"the common pipes, a unit meter missing, stopped or bypassed.{caveat}"
                ),
                figures={
                    "main_consumption": Figure(_round(main), uom),
                    "units_consumption": Figure(_round(units), uom),
                    "unexplained": Figure(_round(unexplained), uom),
                    "unexplained_share": Figure(_round(total.share * 100), "%"),
                    "threshold": Figure(BALANCE_SHARE * 100, "%"),
                    "units_measured": Figure(total.units_measured, "meters"),
                },
            )
        )
    return insights


def _usage(
    sensor: IoTSensor,
    pieces: list[tuple[Bucket, list[Point]]],
    hourly: list[Point],
    nights: list[Bucket],
    days: list[Bucket],
) -> _Usage:
    """The sensor's period total from the pieces of the period and their points; its nights and days from `hourly`."""
    base_unit, factor = _base_unit(sensor.unit_of_measure)
    known = [r.consumption for piece, points in pieces for _, r in consumption_by_bucket(points, [piece])]
    span = pieces[-1][0][1] - pieces[0][0][0]
    coverage = math.fsum(_coverage(points, piece) * ((piece[1] - piece[0]) / span) for piece, points in pieces)
    covered = None not in known and coverage >= MIN_COVERAGE
    windows = [r for _, r in consumption_by_bucket(hourly, [*nights, *days])]
    return _Usage(
        sensor,
        base_unit,
        math.fsum(c for c in known if c is not None) * factor if covered else None,
        _measured(nights, windows[: len(nights)], factor),
        _measured(days, windows[len(nights) :], factor),
    )


def _measured(windows: list[Bucket], results: list[CounterResult], factor: float) -> list[tuple[Bucket, float]]:
    """The windows with readings on both sides, and their consumption in the base unit."""
    return [
        (window, r.consumption * factor)
        for window, r in zip(windows, results, strict=True)
        if r.complete and r.consumption is not None
    ]


def _unit_totals(usages: Iterable[_Usage], sensor_type: SensorType, base_unit: str) -> dict[tuple[UUID, UUID], float]:
    """Per (building, unit), the sum of its counters of that type; a unit with any counter lacking a total has none."""
    sums: dict[tuple[UUID, UUID], list[float | None]] = {}
    for usage in usages:
        sensor = usage.sensor
        if sensor.unit_id is not None and sensor.sensor_type is sensor_type and usage.base_unit == base_unit:
            sums.setdefault((sensor.building_id, sensor.unit_id), []).append(usage.total)
    return {key: math.fsum(v for v in values if v is not None) for key, values in sums.items() if None not in values}


def _base_unit(unit_of_measure: str) -> tuple[str, float]:
    """The unit figures are given in (m³ for volumes, kWh for energies) and the factor to it; other units stay."""
    if unit_of_measure.strip():
        for base in ("m³", "kWh"):
            if (factor := conversion_factor(unit_of_measure, base)) is not None:
                return base, factor
    return canonical(unit_of_measure), 1.0


def _coverage(points: list[Point], period: Bucket) -> float:
    """The share of the period between the sensor's first and last reading around it."""
    if not points:
        return 0.0
    start, end = period
    covered = min(end, points[-1][0]) - max(start, points[0][0])
    return max(covered / (end - start), 0.0)


def _midnight_on_or_after(instant: datetime) -> datetime:
    day = local_day(instant, _ZONE)
    return day[0] if day[0] == instant else day[1]


def _per_hour(amount: float, window: Bucket) -> float:
    return amount / ((window[1] - window[0]) / _HOUR)


def _mean_power(windows: list[tuple[Bucket, float]]) -> float:
    """Average kW over the windows: their kWh over their hours."""
    hours = math.fsum((w[1] - w[0]) / _HOUR for w, _ in windows)
    return math.fsum(kwh for _, kwh in windows) / hours


def _local_date(instant: datetime) -> str:
    return instant.astimezone(_ZONE).date().isoformat()


def _round(value: float) -> float:
    return round(value, 3)
