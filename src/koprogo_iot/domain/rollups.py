"""Hourly, daily and monthly rollups of the readings, refreshed incrementally from the dirty marks ingestion leaves.

Tables (migrations 0002, 0005): `iot_rollups_hourly` (UTC hours), `iot_rollups_daily` (local days in
Europe/Brussels, `bucket` = the UTC instant of local midnight: 23 or 25 hours on DST days) and `iot_rollups_monthly`
(local months). One row per sensor and bucket that holds at least one reading, with count, sum, min, max of the
values, the first and last reading, and for counters:
- `increase`: the sum of `counter_steps` increases of the steps *between the bucket's own readings* (its first to
  its last one), the counter rules starting afresh at the bucket's first reading; NULL for gauges.
- `resets`, `rollovers`: how many of those steps were resets or rollovers.
A daily row is built from its hourly rows: their increases plus the steps between consecutive hours' last and first
readings (`boundary_step`), so a daily row is exactly what an hourly row would be over the whole day; a monthly row
is built from its daily rows the same way.

Combining rows into interpolated consumption (what `domain.consumption` gives on the raw readings)
------------------------------------------------------------------------------------------------------
The step from one row's last reading to the next row's first reading (the next row of the same sensor, with
any number of empty buckets between) is in neither row. For a bucket [start, end) of a grid aligned to the rows'
buckets (hourly rows for hours; daily rows for days, weeks, months, years in Brussels):
    consumption = sum of `increase` of the rows whose bucket lies in [start, end)
                + for each pair of consecutive rows (a, b): boundary_step(a, b).increase
                  * overlap([a.last_ts, b.first_ts], [start, end)) / (b.first_ts - a.last_ts)
Read one row before the range and one after it too, so the steps across the range's edges are interpolated.
None (unknown) when no inner step and no boundary step overlaps the bucket. This equals `domain.consumption` on
the raw readings, except after a jitter (a drop under 1 %) just before a bucket starts: the domain keeps the
higher baseline across it, the rollup restarts at the bucket's first reading and counts the climb back (at most
the drop) again. Grids not aligned to hours (15 minutes) must use the raw readings.

Refreshing (`storage.sql.rollups`) claims dirty (sensor, hour) marks, recomputes those hours from the raw readings
with `summarize`, the local days holding them from the hourly rows and those days' months from the daily rows with
`combine`. Rollover moduli are not known per sensor yet: counters are computed without one, so a wrap counts as a
reset.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from uuid import UUID
from zoneinfo import ZoneInfo

from koprogo_iot.domain.consumption import (
    Bucket,
    CounterResult,
    CounterStep,
    Point,
    StepKind,
    counter_steps,
    step_increase,
)


class Rollups(StrEnum):
    HOURLY = "hourly"  # UTC hours
    DAILY = "daily"  # local days (Europe/Brussels)
    MONTHLY = "monthly"  # local months, with daily rows for the partial months at the period's edges


@dataclass(frozen=True, slots=True)
class Rollup:
    """One sensor's readings in one bucket, summarized (a row of `iot_rollups_hourly` or `iot_rollups_daily`)."""

    sensor_id: UUID
    bucket: datetime
    organization_id: UUID
    building_id: UUID
    unit_id: UUID | None
    count: int
    sum: float
    min: float
    max: float
    first_ts: datetime
    first_value: float
    last_ts: datetime
    last_value: float
    increase: float | None  # None for gauges
    resets: int
    rollovers: int

    @property
    def first(self) -> Point:
        return self.first_ts, self.first_value

    @property
    def last(self) -> Point:
        return self.last_ts, self.last_value


def boundary_step(previous: Rollup, following: Rollup) -> CounterStep:
    """The step from `previous`'s last reading to `following`'s first one, which neither row's increase covers."""
    increase, kind, _ = step_increase(previous.last_value, following.first_value)
    return CounterStep(previous.last_ts, following.first_ts, increase, kind)


def local_month(instant: datetime, zone: ZoneInfo) -> Bucket:
    """The local month in `zone` holding `instant`, as UTC instants of its first and the next month's midnight."""
    day = instant.astimezone(zone).date().replace(day=1)
    following = (day + timedelta(days=32)).replace(day=1)
    return (
        datetime(day.year, day.month, 1, tzinfo=zone).astimezone(UTC),
        datetime(following.year, following.month, 1, tzinfo=zone).astimezone(UTC),
    )


def local_day(instant: datetime, zone: ZoneInfo) -> Bucket:
    """The local day in `zone` holding `instant`, as UTC instants of its two midnights (23 to 25 hours apart)."""
    day = instant.astimezone(zone).date()
    following = day + timedelta(days=1)
    return (
        datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC),
        datetime(following.year, following.month, following.day, tzinfo=zone).astimezone(UTC),
    )


@dataclass(frozen=True, slots=True)
class Observation:
    """One raw reading as a rollup sees it."""

    ts: datetime
    value: float
    tenancy: tuple[UUID, UUID, UUID | None]  # organization, building, unit of the reading


def summarize(sensor_id: UUID, bucket: datetime, readings: Sequence[Observation], cumulative: bool) -> Rollup:
    """The rollup of one bucket's readings (sorted by time, at least one)."""
    values = [r.value for r in readings]
    steps = counter_steps([(r.ts, r.value) for r in readings]) if cumulative else []
    return Rollup(
        sensor_id,
        bucket,
        *readings[-1].tenancy,
        count=len(values),
        sum=math.fsum(values),
        min=min(values),
        max=max(values),
        first_ts=readings[0].ts,
        first_value=values[0],
        last_ts=readings[-1].ts,
        last_value=values[-1],
        increase=math.fsum(s.increase for s in steps) if cumulative else None,
        resets=sum(s.kind is StepKind.RESET for s in steps),
        rollovers=sum(s.kind is StepKind.ROLLOVER for s in steps),
    )


def combine(bucket: datetime, rows: Sequence[Rollup], cumulative: bool) -> Rollup:
    """The rollup of a bucket from the rollups of its sub-buckets (sorted, at least one): a day from its hours."""
    boundaries = [boundary_step(a, b) for a, b in itertools.pairwise(rows)] if cumulative else []
    increases = [r.increase or 0.0 for r in rows] + [s.increase for s in boundaries]
    first, last = rows[0], rows[-1]
    return Rollup(
        last.sensor_id,
        bucket,
        last.organization_id,
        last.building_id,
        last.unit_id,
        count=sum(r.count for r in rows),
        sum=math.fsum(r.sum for r in rows),
        min=min(r.min for r in rows),
        max=max(r.max for r in rows),
        first_ts=first.first_ts,
        first_value=first.first_value,
        last_ts=last.last_ts,
        last_value=last.last_value,
        increase=math.fsum(increases) if cumulative else None,
        resets=sum(r.resets for r in rows) + sum(s.kind is StepKind.RESET for s in boundaries),
        rollovers=sum(r.rollovers for r in rows) + sum(s.kind is StepKind.ROLLOVER for s in boundaries),
    )


GaugeRow = tuple[datetime, int, float, float, float, float]  # bucket, count, sum, min, max, last value
# What a counter's consumption needs of a rollup row: its first and last readings and the increase between them.
# readings, first_ts, first_value, last_ts, last_value, increase
CounterRow = tuple[int, datetime, float, datetime, float, float | None]


def virtual_index(rows: Sequence[CounterRow]) -> list[Point]:
    """Points of a reset-free index rebuilt from rollup rows: consumption over them equals the raw readings'.

    Each row contributes its first and last reading; the index climbs by the row's own `increase` between them
    and by the boundary step (counter rules on the real values) from one row to the next. Resets and jitter are
    thus already resolved, which the domain math, seeing a monotonic index, keeps.
    """
    points: list[Point] = []
    index, previous_value = (rows[0][2] if rows else 0.0), None
    for count, first_ts, first_value, last_ts, last_value, increase in rows:
        if previous_value is not None:
            index += step_increase(previous_value, first_value)[0]
        points.append((first_ts, index))
        if count > 1:  # (comparing the two aware datetimes instead cost a third of a year's query)
            index += increase or 0.0
            points.append((last_ts, index))
        previous_value = last_value
    return points


def index_results(points: list[Point], grid: Sequence[Bucket]) -> list[CounterResult]:
    """Consumption per bucket of a reset-free (virtual) index: its interpolated value at the end minus at the start.

    For a monotonic index this is exactly what `domain.consumption.consumption_by_bucket` computes (each step's
    increase spread linearly over its span), in one cheap pass: a year of hourly buckets costs milliseconds.
    """
    if len(points) < 2:
        return [_UNKNOWN] * len(grid)
    times = [t.timestamp() for t, _ in points]
    values = [v for _, v in points]
    first, last, n = times[0], times[-1], len(times)

    def bound(moment: float, low: int) -> tuple[int, float]:
        """The first point at or after `moment` (searched from `low`), and the index interpolated there."""
        i = bisect.bisect_left(times, moment, low)
        if i < n and times[i] == moment:
            return i, values[i]
        if i == 0:
            return 0, values[0]
        if i == n:
            return n, values[-1]
        t0 = times[i - 1]
        return i, values[i - 1] + (values[i] - values[i - 1]) * (moment - t0) / (times[i] - t0)

    results = []
    # Grids are sorted and usually contiguous: each bucket's start is the previous one's end, found once.
    previous_end: datetime | None = None
    end_position, end_index = 0, values[0]
    for start, end in grid:
        s = start.timestamp()
        if start == previous_end:
            low_position, low_index = end_position, end_index
        else:
            low_position, low_index = bound(s, 0)
        e = end.timestamp()
        end_position, end_index = bound(e, low_position)
        previous_end = end
        if max(s, first) >= min(e, last):
            results.append(_UNKNOWN)
            continue
        # Before the first point or after the last, the index is flat: the bounds clamp to the covered part.
        any_inside = end_position > low_position
        results.append(
            CounterResult(
                consumption=end_index - low_index,
                first=points[low_position] if any_inside else None,
                last=points[end_position - 1] if any_inside else None,
                readings=end_position - low_position,
                resets=0,
                rollovers=0,
                gaps=(),
                complete=first <= s and last >= e,
            )
        )
    return results


_UNKNOWN = CounterResult(None, None, None, 0, 0, 0, (), False)
