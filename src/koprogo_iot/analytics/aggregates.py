"""Consumption of counters summed by sensor, unit, building or type, per hour, day or month, and its comparisons.

Only cumulative sensors are counted, only those the caller may see (the analytics service narrows them to the
owner's scope), and a sum only adds sensors measuring in the same unit: every group is split by unit of measure.
Days and months are calendar buckets in Europe/Brussels; a bucket's figure is `None` when no sensor of the group
has readings around any part of it, and it is not `complete` when some sensor's readings cover only part of it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from uuid import UUID
from zoneinfo import ZoneInfo

from koprogo_iot.analytics.series import MAX_POINTS, aligned_buckets, bucket_count, resolve_period
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.consumption import (
    DEFAULT_ZONE,
    Bucket,
    CounterResult,
    bucket_floor,
    calendar_buckets,
    consumption_by_bucket,
    median,
    relative_change,
)
from koprogo_iot.domain.errors import InvalidValue
from koprogo_iot.domain.rollups import Rollups, local_day, rollup_results
from koprogo_iot.domain.sensors import IoTSensor, MeasurementKind, SensorType
from koprogo_iot.offload import off_loop
from koprogo_iot.storage.ports import ReadingSource

UNIT_NOTE = "sums only add sensors with the same unit of measure: each group is split by unit_of_measure"
COMPARISON_SPAN = timedelta(days=30)  # default period of the comparisons: the last 30 days


class GroupBy(StrEnum):
    SENSOR = "sensor"
    UNIT = "unit"  # a building's common meters form one group of their own
    BUILDING = "building"
    SENSOR_TYPE = "sensor_type"


class Period(StrEnum):
    HOUR = "hour"
    DAY = "day"  # local calendar day in Europe/Brussels: 23 or 25 hours on DST days
    MONTH = "month"

    @property
    def default_span(self) -> timedelta:
        """How far back a query without a start looks: a day of hours, a month of days, a year of months."""
        return _DEFAULT_SPANS[self]


_DEFAULT_SPANS = {Period.HOUR: timedelta(hours=24), Period.DAY: timedelta(days=30), Period.MONTH: timedelta(days=365)}


@dataclass(frozen=True, slots=True)
class SensorScope:
    """Which counters to count, among those the caller may see."""

    building_id: UUID | None = None
    unit_id: UUID | None = None
    sensor_type: SensorType | None = None


@dataclass(frozen=True, slots=True)
class Counters:
    """What a report counts: counters of one organization the caller may see, and their places' names by id."""

    organization_id: UUID
    sensors: Sequence[IoTSensor]
    names: Mapping[UUID, str]

    def __post_init__(self) -> None:
        foreign = [s.id for s in self.sensors if s.organization_id != self.organization_id]
        if foreign or any(s.measurement_kind is not MeasurementKind.CUMULATIVE for s in self.sensors):
            raise ValueError("counters of one organization only")


@dataclass(frozen=True, slots=True)
class BucketTotal:
    """A group's consumption over one bucket."""

    start: datetime
    end: datetime
    consumption: float | None  # None: no sensor of the group has readings around any part of the bucket
    sensors: int  # sensors of the group with a figure for the bucket
    complete: bool  # every sensor of the group has readings on or before the start and on or after the end


@dataclass(frozen=True, slots=True)
class GroupTotals:
    """The consumption of one group of sensors sharing a unit of measure."""

    key: str  # the sensor, unit or building id; "common:<building id>" for common meters by unit; the type
    label: str
    unit_of_measure: str
    sensor_ids: tuple[UUID, ...]
    buckets: list[BucketTotal]
    total: float | None = field(init=False)
    complete: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "total", _sum(b.consumption for b in self.buckets))
        object.__setattr__(self, "complete", all(b.complete for b in self.buckets))


@dataclass(frozen=True, slots=True)
class ConsumptionReport:
    group_by: GroupBy
    period: Period
    start: datetime
    end: datetime
    groups: list[GroupTotals]
    timezone: str = DEFAULT_ZONE
    note: str = UNIT_NOTE


@dataclass(frozen=True, slots=True)
class UnitVsMedian:
    """A unit's consumption against the median of the building's units measured in the same unit."""

    unit_id: UUID
    unit_name: str
    unit_of_measure: str
    consumption: float | None
    median: float | None
    deviation_percent: float | None  # (consumption - median) / median x 100; None without both or when median is 0
    complete: bool


@dataclass(frozen=True, slots=True)
class MedianReport:
    building_id: UUID
    sensor_type: SensorType
    start: datetime
    end: datetime
    units: list[UnitVsMedian]
    note: str = UNIT_NOTE


@dataclass(frozen=True, slots=True)
class PeriodChange:
    """A group's consumption over a period and over the previous period of the same length."""

    key: str
    label: str
    unit_of_measure: str
    current: float | None
    previous: float | None
    change_percent: float | None  # (current - previous) / previous x 100; None without both or when previous is 0
    complete: bool


@dataclass(frozen=True, slots=True)
class ComparisonReport:
    group_by: GroupBy
    start: datetime
    end: datetime
    previous_start: datetime
    previous_end: datetime
    groups: list[PeriodChange]
    note: str = UNIT_NOTE


async def consumption_report(
    source: ReadingSource,
    counters: Counters,
    group_by: GroupBy = GroupBy.BUILDING,
    period: Period = Period.DAY,
    start: datetime | None = None,
    end: datetime | None = None,
    use_rollups: bool = True,
) -> ConsumptionReport:
    """The counters' consumption per `period` bucket over [start, end), summed per group (`use_rollups` False:
    from the raw readings whatever the buckets)."""
    grid, rollup = report_grid(period, start, end)
    groups = await _totals(source, counters, group_by, grid, rollup if use_rollups else None)
    return ConsumptionReport(group_by, period, grid[0][0], grid[-1][1], groups)


def report_grid(period: Period, start: datetime | None, end: datetime | None) -> tuple[list[Bucket], Rollups | None]:
    """The `period` buckets of a report over [start, end) (defaults: the period's span up to now), and the rollup
    they are made of (None: none, read the raw readings)."""
    if start is None:
        start = period_floor((end or utcnow()) - period.default_span, period)
    start, end = resolve_period(start, end, period.default_span)
    # Whole hours, or whole local days for day and month buckets: every bucket is then made of rollup rows.
    start, end = whole(start, end, Period.HOUR if period is Period.HOUR else Period.DAY)
    grid = period_buckets(start, end, period)
    # Buckets that are whole hours, or whole local days and months, are made of rollup rows: read those.
    rollup = Rollups.HOURLY if period is Period.HOUR else Rollups.DAILY
    if not all(_on_rollup_bound(rollup, bound) for bucket in grid for bound in bucket):
        return grid, None
    # Whole months from monthly rows, the partial ones at the edges from daily rows.
    return grid, Rollups.MONTHLY if period is Period.MONTH else rollup


def _on_rollup_bound(rollup: Rollups, instant: datetime) -> bool:
    """Whether `instant` starts a rollup bucket: a whole UTC hour, or a local midnight."""
    if rollup is Rollups.HOURLY:
        return instant == bucket_floor(instant, _HOUR)
    return instant == local_day(instant, ZoneInfo(DEFAULT_ZONE))[0]


async def units_vs_median(
    source: ReadingSource,
    counters: Counters,
    building_id: UUID,
    sensor_type: SensorType,
    start: datetime | None = None,
    end: datetime | None = None,
) -> MedianReport:
    """Each unit's consumption of `sensor_type` (the building's counters of that type) against their median."""
    start, end = whole(*resolve_period(start, end, COMPARISON_SPAN), Period.HOUR)
    groups = await _totals(source, counters, GroupBy.UNIT, [(start, end)], Rollups.HOURLY)
    units = [g for g in groups if not g.key.startswith(_COMMON)]
    medians = {
        uom: median(g.total for g in units if g.unit_of_measure == uom) for uom in {g.unit_of_measure for g in units}
    }
    rows = [
        UnitVsMedian(
            unit_id=UUID(g.key),
            unit_name=g.label,
            unit_of_measure=g.unit_of_measure,
            consumption=g.total,
            median=(middle := medians[g.unit_of_measure]),
            deviation_percent=_percent(relative_change(g.total, middle)),
            complete=g.complete,
        )
        for g in units
    ]
    return MedianReport(building_id, sensor_type, start, end, rows)


async def period_comparison(
    source: ReadingSource,
    counters: Counters,
    group_by: GroupBy = GroupBy.BUILDING,
    start: datetime | None = None,
    end: datetime | None = None,
) -> ComparisonReport:
    """Each group's consumption over [start, end) against the period of the same length just before it."""
    start, end = whole(*resolve_period(start, end, COMPARISON_SPAN), Period.HOUR)
    previous = (start - (end - start), start)
    groups = await _totals(source, counters, group_by, [previous, (start, end)], Rollups.HOURLY)
    rows = [
        PeriodChange(
            key=g.key,
            label=g.label,
            unit_of_measure=g.unit_of_measure,
            current=g.buckets[1].consumption,
            previous=g.buckets[0].consumption,
            change_percent=_percent(relative_change(g.buckets[1].consumption, g.buckets[0].consumption)),
            complete=g.complete,
        )
        for g in groups
    ]
    return ComparisonReport(group_by, start, end, previous[0], previous[1], rows)


def period_buckets(start: datetime, end: datetime, period: Period, limit: int = MAX_POINTS) -> list[Bucket]:
    """Whole hours, or calendar days or months in Brussels, the first cut at `start` and the last at `end`."""
    if period is Period.HOUR:
        _check_count(bucket_count(start, end, _HOUR), period, limit)
        # Brussels is a whole number of hours from UTC: UTC hours are its local hours.
        return aligned_buckets(start, end, _HOUR, limit)
    grid = calendar_buckets(start, end, period.value, DEFAULT_ZONE)
    _check_count(len(grid), period, limit)
    return grid


def _check_count(count: int, period: Period, limit: int) -> None:
    if count > limit:
        raise InvalidValue(f"{count} {period.value} buckets is more than {limit}: choose a coarser period or less time")


def whole(start: datetime, end: datetime, unit: Period) -> Bucket:
    """[start, end) widened to whole hours or whole local days, the bounds the rollups are kept on."""
    floor = period_floor(end, unit)
    if floor != end:  # the next bound: a local day lasts 23 to 25 hours, 26 h later is always the next day
        floor = period_floor(floor + (timedelta(hours=1) if unit is Period.HOUR else timedelta(hours=26)), unit)
    return period_floor(start, unit), floor


def period_floor(moment: datetime, period: Period) -> datetime:
    """The start of the hour, Brussels day or Brussels month holding `moment`, in UTC."""
    if period is Period.HOUR:
        return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    local = moment.astimezone(ZoneInfo(DEFAULT_ZONE))
    day = local.date().replace(day=1) if period is Period.MONTH else local.date()
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(DEFAULT_ZONE)).astimezone(UTC)


_COMMON = "common:"
_HOUR = timedelta(hours=1)


async def _totals(
    source: ReadingSource,
    counters: Counters,
    group_by: GroupBy,
    grid: Sequence[Bucket],
    rollup: Rollups | None = None,
) -> list[GroupTotals]:
    sensors = counters.sensors
    results = await counter_results(source, counters.organization_id, sensors, grid, rollup)
    return await off_loop(_grouped, counters, group_by, grid, results)


def _grouped(
    counters: Counters, group_by: GroupBy, grid: Sequence[Bucket], results: Mapping[UUID, list[CounterResult]]
) -> list[GroupTotals]:
    """The counters' results summed per group and unit of measure, sorted by label."""
    sensors = counters.sensors
    members: dict[tuple[str, str], list[IoTSensor]] = {}
    for sensor in sensors:
        members.setdefault((_group_key(sensor, group_by), sensor.unit_of_measure), []).append(sensor)
    groups = [
        GroupTotals(
            key=key,
            label=_label(key, group, group_by, counters.names),
            unit_of_measure=uom,
            sensor_ids=tuple(sorted(s.id for s in group)),
            buckets=[_bucket_total(bucket, [results[s.id][i] for s in group]) for i, bucket in enumerate(grid)],
        )
        for (key, uom), group in members.items()
    ]
    return sorted(groups, key=lambda g: (g.label, g.unit_of_measure, g.key))


async def counter_results(
    source: ReadingSource,
    organization_id: UUID,
    sensors: Sequence[IoTSensor],
    grid: Sequence[Bucket],
    rollup: Rollups | None = None,
    gap_factor: float | None = None,
) -> dict[UUID, list[CounterResult]]:
    """Each counter's consumption per bucket of `grid`, from `rollup` rows (each bucket made of whole rows) or from
    the raw readings (None). `gap_factor`: a step longer than this many of the sensor's sampling intervals makes
    the figure `estimated`; None: not looked for."""
    start, end = min(b[0] for b in grid), max(b[1] for b in grid)
    ids = [s.id for s in sensors]

    def max_gap(sensor: IoTSensor) -> timedelta | None:
        return None if gap_factor is None else timedelta(seconds=gap_factor * sensor.sampling_interval)

    if rollup is not None:
        rows = await source.counter_rows(organization_id, ids, start, end, rollup)
        return await off_loop(lambda: {s.id: rollup_results(rows[s.id], grid, max_gap(s)) for s in sensors})
    points = await source.points(organization_id, ids, start, end)
    return await off_loop(
        lambda: {
            s.id: [r for _, r in consumption_by_bucket(points[s.id], grid, rollover=s.rollover, max_gap=max_gap(s))]
            for s in sensors
        }
    )


def _group_key(sensor: IoTSensor, group_by: GroupBy) -> str:
    if group_by is GroupBy.SENSOR:
        return str(sensor.id)
    if group_by is GroupBy.UNIT:
        return str(sensor.unit_id) if sensor.unit_id is not None else f"{_COMMON}{sensor.building_id}"
    if group_by is GroupBy.BUILDING:
        return str(sensor.building_id)
    return sensor.sensor_type.value


def _label(key: str, group: list[IoTSensor], group_by: GroupBy, names: Mapping[UUID, str]) -> str:
    first = group[0]
    if group_by is GroupBy.SENSOR:
        return f"{first.location} ({first.sensor_id})"
    if group_by is GroupBy.UNIT and key.startswith(_COMMON):
        return f"{names.get(first.building_id, str(first.building_id))} common meters"
    if group_by in (GroupBy.UNIT, GroupBy.BUILDING):
        return names.get(UUID(key), key)
    return key


def _bucket_total(bucket: Bucket, results: list[CounterResult]) -> BucketTotal:
    known = [r.consumption for r in results if r.consumption is not None]
    return BucketTotal(bucket[0], bucket[1], _sum(known), len(known), all(r.complete for r in results))


def _sum(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return math.fsum(known) if known else None


def _percent(fraction: float | None) -> float | None:
    return None if fraction is None else fraction * 100
