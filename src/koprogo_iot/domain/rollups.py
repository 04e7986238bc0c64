"""Hourly, daily and monthly rollups of the readings, refreshed incrementally from the dirty marks ingestion leaves.

Tables (migrations 0002, 0005, 0010): `iot_rollups_hourly` (UTC hours), `iot_rollups_daily` (local days in
Europe/Brussels, `bucket` = the UTC instant of local midnight: 23 or 25 hours on DST days) and `iot_rollups_monthly`
(local months). One row per sensor and bucket that holds at least one reading, with count, sum, min, max of the
values, the first and last reading, and for counters the state the counter rules carry from reading to reading
(`domain.consumption`: the baseline is the highest index since the last reset), so that a bucket's figures are
exactly the reference's on the sensor's whole history, not on the bucket's readings alone:
- `baseline_in`: the baseline the bucket's first reading was compared with, which the previous reading left
  (None for the sensor's first reading). A refresh recomputes a row whose `baseline_in` is no longer the previous
  row's `baseline`: a late reading moves the baselines after it until they agree again.
- `entry`: the increase of the step from the previous reading to the bucket's first one (None without one). It
  lies between two rows and belongs to neither row's `increase`: readers spread it over its span.
- `increase`: the increases of the steps between the bucket's own readings, the first one compared with the
  baseline after `entry`; `resets`, `rollovers`: how many of those steps were resets or rollovers.
- `baseline`: the baseline after the bucket's last reading, the next row's `baseline_in`.
A jitter (a drop under 1 %) just before a bucket thus keeps its higher baseline across the bucket edge, as in the
reference, instead of counting the climb back a second time. All counter columns are None for gauges.
A daily row is built from its hourly rows: their increases plus the entries of all but the first, so a daily row is
exactly what an hourly row would be over the whole day; a monthly row is built from its daily rows the same way.

Combining rows into interpolated consumption (what `domain.consumption` gives on the raw readings)
------------------------------------------------------------------------------------------------------
For a bucket [start, end) of a grid aligned to the rows' buckets (hourly rows for hours; daily rows for days,
weeks, months, years in Brussels):
    consumption = sum of `increase` of the rows whose bucket lies in [start, end)
                + for each pair of consecutive rows (a, b): b.entry
                  * overlap([a.last_ts, b.first_ts], [start, end)) / (b.first_ts - a.last_ts)
Read one row before the range and one after it too, so the steps across the range's edges are interpolated.
None (unknown) when no inner step and no entry step overlaps the bucket. Grids not aligned to hours (15 minutes)
must use the raw readings.

Refreshing (`storage.sql.rollups`) claims dirty (sensor, hour) marks, recomputes those hours from the raw readings
with `summarize` (and the following hours whose `baseline_in` they move), the local days holding them from the
hourly rows and those days' months from the daily rows with `combine`. Rollover moduli are not known per sensor
yet: counters are computed without one, so a wrap counts as a reset.
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
    baseline_in: float | None  # the baseline the first reading was compared with; None: first reading, or a gauge
    entry: float | None  # the increase of the step from the previous reading; None: first reading, or a gauge
    baseline: float | None  # the baseline after the last reading (highest index since the last reset)

    @property
    def first(self) -> Point:
        return self.first_ts, self.first_value

    @property
    def last(self) -> Point:
        return self.last_ts, self.last_value


def boundary_step(previous: Rollup, following: Rollup) -> CounterStep:
    """The step from `previous`'s last reading to `following`'s first one, which neither row's increase covers
    (`following.entry`, with its kind): the counter rules from `previous`'s closing baseline."""
    baseline = previous.last_value if previous.baseline is None else previous.baseline
    increase, kind, _ = step_increase(baseline, following.first_value)
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


def summarize(
    sensor_id: UUID,
    bucket: datetime,
    readings: Sequence[Observation],
    cumulative: bool,
    baseline_in: float | None = None,
) -> Rollup:
    """The rollup of one bucket's readings (sorted by time, at least one), a counter's rules starting from
    `baseline_in`, the baseline the previous reading left (None: these are the sensor's first readings)."""
    values = [r.value for r in readings]
    increases: list[float] = []
    kinds: list[StepKind] = []
    entry = baseline = None
    if cumulative:
        if baseline_in is None:
            baseline = values[0]
        else:
            entry, _, baseline = step_increase(baseline_in, values[0])
        for value in values[1:]:
            increase, kind, baseline = step_increase(baseline, value)
            increases.append(increase)
            kinds.append(kind)
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
        increase=math.fsum(increases) if cumulative else None,
        resets=kinds.count(StepKind.RESET),
        rollovers=kinds.count(StepKind.ROLLOVER),
        baseline_in=baseline_in if cumulative else None,
        entry=entry,
        baseline=baseline,
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
        baseline_in=first.baseline_in,
        entry=first.entry,
        baseline=last.baseline,
    )


GaugeRow = tuple[datetime, int, float, float, float, float]  # bucket, count, sum, min, max, last value
# What a counter's consumption needs of a rollup row: its first and last readings, the increase between them and
# the increase of the step into its first reading.
# readings, first_ts, first_value, last_ts, last_value, increase, entry
CounterRow = tuple[int, datetime, float, datetime, float, float | None, float | None]


def virtual_index(rows: Sequence[CounterRow]) -> list[Point]:
    """Points of a reset-free index rebuilt from rollup rows: consumption over them equals the raw readings'.

    Each row contributes its first and last reading; the index climbs by the row's own `increase` between them
    and by the next row's `entry` from one row to the next. Resets and jitter are thus already resolved (with the
    baseline carried across rows), which the domain math, seeing a monotonic index, keeps.
    """
    points: list[Point] = []
    index = rows[0][2] if rows else 0.0
    for position, (count, first_ts, _, last_ts, _, increase, entry) in enumerate(rows):
        if position:
            index += entry or 0.0
        points.append((first_ts, index))
        if count > 1:  # (comparing the two aware datetimes instead cost a third of a year's query)
            index += increase or 0.0
            points.append((last_ts, index))
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
