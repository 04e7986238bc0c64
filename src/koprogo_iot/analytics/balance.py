"""The building balance from stored readings: each main meter against its building's unit meters of its medium.

A main meter (`IoTSensor.main_meter`) is a building's common counter of one sensor type; its unit meters are the
counters of that type with a unit in that building. Figures come from `aggregates.counter_results`, the same
consumption every report gives (rollups when the buckets are made of them), with gaps flagged as the time series
flags them (a step longer than `series.GAP_FACTOR` sampling intervals); `domain.balance` takes their difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from koprogo_iot.analytics.aggregates import Counters, Period, counter_results, report_grid
from koprogo_iot.analytics.series import GAP_FACTOR
from koprogo_iot.domain.balance import BalanceBucket, UnitMeter, balance_buckets, balance_total
from koprogo_iot.domain.consumption import DEFAULT_ZONE, Bucket
from koprogo_iot.domain.rollups import Rollups
from koprogo_iot.domain.sensors import IoTSensor, MeasurementKind, SensorType
from koprogo_iot.domain.units import conversion_factor
from koprogo_iot.storage.ports import ReadingSource


@dataclass(frozen=True, slots=True)
class Metering:
    """A main meter and the unit meters balanced against it."""

    main: IoTSensor
    units: tuple[IoTSensor, ...]


@dataclass(frozen=True, slots=True)
class MediumBalance:
    """One main meter's balance per bucket and over the whole period, in its unit of measure."""

    building_id: UUID
    sensor_type: SensorType
    main_sensor_id: UUID
    label: str
    unit_of_measure: str
    unit_sensor_ids: tuple[UUID, ...]
    buckets: list[BalanceBucket]
    total: BalanceBucket | None


@dataclass(frozen=True, slots=True)
class BalanceReport:
    building_id: UUID
    period: Period
    start: datetime
    end: datetime
    balances: list[MediumBalance]  # one per main meter of the building (of the requested type)
    timezone: str = DEFAULT_ZONE


def meterings(sensors: Sequence[IoTSensor], building_id: UUID | None = None) -> list[Metering]:
    """The main meters among `sensors` (of one building, or all), each with its unit meters among `sensors`."""
    counters = [s for s in sensors if s.measurement_kind is MeasurementKind.CUMULATIVE]
    mains = [s for s in counters if s.main_meter and building_id in (None, s.building_id)]
    found = [
        Metering(
            main,
            tuple(
                s
                for s in counters
                if s.unit_id is not None and s.building_id == main.building_id and s.sensor_type is main.sensor_type
            ),
        )
        for main in mains
    ]
    return sorted(found, key=lambda m: (m.main.sensor_type.value, m.main.location, str(m.main.id)))


async def balances(
    source: ReadingSource,
    organization_id: UUID,
    meterings: Sequence[Metering],
    grid: Sequence[Bucket],
    rollup: Rollups | None,
) -> list[MediumBalance]:
    """Each main meter's balance over the buckets of `grid`, read from `rollup` rows (None: the raw readings)."""
    sensors = list({s.id: s for m in meterings for s in (m.main, *m.units)}.values())
    if not sensors:
        return []
    results = await counter_results(source, organization_id, sensors, grid, rollup, GAP_FACTOR)
    found = []
    for metering in meterings:
        main = metering.main
        units = [
            UnitMeter(results[u.id], conversion_factor(u.unit_of_measure, main.unit_of_measure)) for u in metering.units
        ]
        buckets = balance_buckets(grid, results[main.id], units)
        found.append(
            MediumBalance(
                building_id=main.building_id,
                sensor_type=main.sensor_type,
                main_sensor_id=main.id,
                label=f"{main.location} ({main.sensor_id})",
                unit_of_measure=main.unit_of_measure,
                unit_sensor_ids=tuple(sorted(u.id for u in metering.units)),
                buckets=buckets,
                total=balance_total(buckets),
            )
        )
    return found


async def building_balance(
    source: ReadingSource,
    counters: Counters,
    building_id: UUID,
    sensor_type: SensorType | None = None,
    period: Period = Period.DAY,
    start: datetime | None = None,
    end: datetime | None = None,
) -> BalanceReport:
    """The building's main meters (of `sensor_type`, or all) against their unit meters, per `period` bucket;
    `counters` must hold every counter of the building (a manager's view)."""
    grid, rollup = report_grid(period, start, end)
    chosen = [m for m in meterings(counters.sensors, building_id) if sensor_type in (None, m.main.sensor_type)]
    found = await balances(source, counters.organization_id, chosen, grid, rollup)
    return BalanceReport(building_id, period, grid[0][0], grid[-1][1], found)
