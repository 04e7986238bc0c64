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
- `entry_kind`: the kind of the `entry` step (a reset, a rollover...); `longest_step`: the longest step between the
  bucket's own readings, in seconds, so that readers can tell a gap longer than any `max_gap` (`estimated`).
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

Refreshing (`storage.sql.rollups`) claims dirty (sensor, hour) marks. Readings that all come after the sensor's
latest rows are folded into them with `extend` (and start the rows of later buckets with `summarize`), at every
level from the readings themselves (new readings all within one hour, the common case: summarized once, `joined` to
the hour, the day and the month); otherwise it recomputes the marked hours from the raw readings with
`summarize` (and the following hours whose `baseline_in` they move), the local days holding them from the hourly
rows and those days' months from the daily rows with `combine`. Both with the sensor's register size
(`IoTSensor.rollover`): a wrap counts what the meter measured; a sensor without one counts it as a reset.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import NamedTuple
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
    entry_kind: StepKind | None  # what the step from the previous reading was; None with `entry`
    longest_step: float | None  # seconds: the longest step between the bucket's own readings (0 for one); gauges None

    @property
    def first(self) -> Point:
        return self.first_ts, self.first_value

    @property
    def last(self) -> Point:
        return self.last_ts, self.last_value


def boundary_step(previous: Rollup, following: Rollup, rollover: float | None = None) -> CounterStep:
    """The step from `previous`'s last reading to `following`'s first one, which neither row's increase covers
    (`following.entry`, with its kind): the counter rules from `previous`'s closing baseline."""
    baseline = previous.last_value if previous.baseline is None else previous.baseline
    increase, kind, _ = step_increase(baseline, following.first_value, rollover)
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
    rollover: float | None = None,
) -> Rollup:
    """The rollup of one bucket's readings (sorted by time, at least one), a counter's rules starting from
    `baseline_in`, the baseline the previous reading left (None: these are the sensor's first readings), with the
    counter's register size `rollover` (None: unknown)."""
    values = [r.value for r in readings]
    increases: list[float] = []
    kinds: list[StepKind] = []
    entry = baseline = entry_kind = None
    if cumulative:
        if baseline_in is None:
            baseline = values[0]
        else:
            entry, entry_kind, baseline = step_increase(baseline_in, values[0], rollover)
        for value in values[1:]:
            increase, kind, baseline = step_increase(baseline, value, rollover)
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
        entry_kind=entry_kind,
        longest_step=max((_seconds(a.ts, b.ts) for a, b in itertools.pairwise(readings)), default=0.0)
        if cumulative
        else None,
    )


def extend(row: Rollup, readings: Sequence[Observation], cumulative: bool, rollover: float | None = None) -> Rollup:
    """`row` with `readings` (sorted, all after its last one) added (see `joined`)."""
    if not readings:
        return row
    return joined(row, summarize(row.sensor_id, row.bucket, readings, cumulative, row.baseline, rollover), cumulative)


def joined(row: Rollup, tail: Rollup, cumulative: bool) -> Rollup:
    """`row` followed by `tail`, the summary of readings after its last one made from its closing baseline
    (`summarize(..., row.baseline, ...)`), in `row`'s bucket: what `summarize` gives on the row's readings and the
    tail's, up to the rounding of `sum` and `increase` (summed on from the row's, not again from every reading), so
    that a refresh reads only the readings that arrived since, and one summary of an hour's new readings extends
    that hour, its day and its month. The counter rules go on from the row's closing baseline, which is all they
    need of the readings before."""
    first_step = _seconds(row.last_ts, tail.first_ts)
    return replace(
        tail,
        bucket=row.bucket,
        count=row.count + tail.count,
        sum=math.fsum((row.sum, tail.sum)),
        min=min(row.min, tail.min),
        max=max(row.max, tail.max),
        first_ts=row.first_ts,
        first_value=row.first_value,
        # The step into the tail's first reading is the row's own now: its increase and kind join the row's.
        increase=math.fsum((row.increase or 0.0, tail.entry or 0.0, tail.increase or 0.0)) if cumulative else None,
        resets=row.resets + tail.resets + (tail.entry_kind is StepKind.RESET),
        rollovers=row.rollovers + tail.rollovers + (tail.entry_kind is StepKind.ROLLOVER),
        baseline_in=row.baseline_in,
        entry=row.entry,
        entry_kind=row.entry_kind,
        longest_step=max(row.longest_step or 0.0, first_step, tail.longest_step or 0.0) if cumulative else None,
    )


def combine(bucket: datetime, rows: Sequence[Rollup], cumulative: bool, rollover: float | None = None) -> Rollup:
    """The rollup of a bucket from the rollups of its sub-buckets (sorted, at least one): a day from its hours."""
    boundaries = [boundary_step(a, b, rollover) for a, b in itertools.pairwise(rows)] if cumulative else []
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
        entry_kind=first.entry_kind,
        longest_step=max([r.longest_step or 0.0 for r in rows] + [_seconds(s.start, s.end) for s in boundaries])
        if cumulative
        else None,
    )


def _seconds(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds()


GaugeRow = tuple[datetime, int, float, float, float, float]  # bucket, count, sum, min, max, last value


class CounterRow(NamedTuple):
    """What a counter's consumption needs of a rollup row (the columns `SqlReadingSource` selects)."""

    readings: int  # the row's `count` (a tuple has a `count` method)
    first_ts: datetime
    first_value: float
    last_ts: datetime
    last_value: float
    increase: float | None
    entry: float | None
    entry_kind: StepKind | None
    resets: int
    rollovers: int
    longest_step: float | None


def virtual_index(rows: Sequence[CounterRow]) -> list[Point]:
    """Points of a reset-free index rebuilt from rollup rows: consumption over them equals the raw readings'.

    Each row contributes its first and last reading; the index climbs by the row's own `increase` between them
    and by the next row's `entry` from one row to the next. Resets and jitter are thus already resolved (with the
    baseline carried across rows), which the domain math, seeing a monotonic index, keeps.
    """
    points: list[Point] = []
    index = rows[0][2] if rows else 0.0
    for position, row in enumerate(rows):
        if position:
            index += row.entry or 0.0
        points.append((row.first_ts, index))
        if row.readings > 1:  # (comparing the two aware datetimes instead cost a third of a year's query)
            index += row.increase or 0.0
            points.append((row.last_ts, index))
    return points


def rollup_results(
    rows: Sequence[CounterRow], grid: Sequence[Bucket], max_gap: timedelta | None = None
) -> list[CounterResult]:
    """Consumption per bucket from rollup rows, as `domain.consumption.consumption_by_bucket` computes it on the
    raw readings, flags included.

    `rows` are one sensor's rows in time order, with the row before the grid and the row after it; `grid` is sorted,
    its buckets do not overlap and each holds whole rows (hours, days or months of the rollups). A bucket gets the
    `increase` of the rows inside it whole and its share of each `entry` step overlapping it, summed term by term:
    no difference of large indexes, so a small figure on a large index keeps its precision. `gaps` lists the entry
    steps longer than `max_gap` as (reading, next reading) and, for a row whose own longest step is longer, the
    row's first and last reading: `estimated` is the reference's, the bounds of a gap inside a row are not kept.
    """
    if not rows:
        return [_UNKNOWN] * len(grid)
    # Times as integer microseconds: comparing and subtracting aware datetimes was most of a year's hourly query;
    # a ratio of two integers is the one the datetimes' timedeltas give, so the shares are bit for bit the same.
    starts = [_micros(start) for start, _ in grid]
    ends = [_micros(end) for _, end in grid]
    count = len(grid)
    shares: list[list[float] | None] = [None] * count
    readings, resets, rollovers = [0] * count, [0] * count, [0] * count
    firsts: list[Point | None] = [None] * count
    lasts: list[Point | None] = [None] * count
    gaps: dict[int, list[Bucket]] = {}
    longest = None if max_gap is None else max_gap.total_seconds()
    longest_micros = None if max_gap is None else max_gap // _MICROSECOND
    previous: tuple[int, datetime] | None = None  # the previous row's last reading
    for row in rows:
        first = _micros(row.first_ts)
        index = bisect.bisect_right(starts, first) - 1
        if index >= 0 and first < ends[index]:
            readings[index] += row.readings
            if firsts[index] is None:
                firsts[index] = (row.first_ts, row.first_value)
            lasts[index] = (row.last_ts, row.last_value)
            if row.readings > 1:
                _share(shares, index, row.increase or 0.0)
                resets[index] += row.resets
                rollovers[index] += row.rollovers
                if longest is not None and (row.longest_step or 0.0) > longest:
                    gaps.setdefault(index, []).append((row.first_ts, row.last_ts))
        if previous is not None and row.entry is not None:
            # The entry step spans the end of the previous row to this row's start: every bucket it overlaps.
            begin, span = previous[0], first - previous[0]
            index = bisect.bisect_right(ends, begin)
            while index < count and starts[index] < first:
                overlap = min(first, ends[index]) - max(begin, starts[index])
                _share(shares, index, row.entry * (overlap / span))
                resets[index] += row.entry_kind is StepKind.RESET
                rollovers[index] += row.entry_kind is StepKind.ROLLOVER
                if longest_micros is not None and span > longest_micros:
                    gaps.setdefault(index, []).append((previous[1], row.first_ts))
                index += 1
        previous = (_micros(row.last_ts), row.last_ts)
    first_ts, last_ts = _micros(rows[0].first_ts), _micros(rows[-1].last_ts)
    return [
        _UNKNOWN
        if bucket_shares is None and not readings[i]
        else CounterResult(
            consumption=math.fsum(bucket_shares) if bucket_shares else None,
            first=firsts[i],
            last=lasts[i],
            readings=readings[i],
            resets=resets[i],
            rollovers=rollovers[i],
            gaps=tuple(sorted(gaps[i])) if i in gaps else (),
            complete=bool(bucket_shares) and first_ts <= starts[i] and last_ts >= ends[i],
        )
        for i, bucket_shares in enumerate(shares)
    ]


_MICROSECOND = timedelta(microseconds=1)


def _micros(moment: datetime) -> int:
    """Microseconds since the epoch, exactly (a float's timestamp() rounded: 2**53 µs is 285 years)."""
    return round(moment.timestamp() * 1_000_000)


def _share(shares: list[list[float] | None], index: int, share: float) -> None:
    found = shares[index]
    if found is None:
        shares[index] = [share]
    else:
        found.append(share)


_UNKNOWN = CounterResult(None, None, None, 0, 0, 0, (), False)


def derive(
    sensor_id: UUID,
    by_hour: dict[datetime, list[Observation]],
    cumulative: bool,
    rollover: float | None,
    baseline: float | None,
    zone: ZoneInfo,
) -> dict[Rollups, list[Rollup]]:
    """Every hourly, daily and monthly row of a sensor's readings (by UTC hour, in time order), the counter rules
    starting from `baseline` (the state before the first hour; None: from the first reading): what the refresh
    leaves in the tables, computed from the raw readings alone."""
    hourly: list[Rollup] = []
    for hour, readings in by_hour.items():
        hourly.append(summarize(sensor_id, hour, readings, cumulative, baseline, rollover))
        baseline = hourly[-1].baseline
    daily = _group(hourly, lambda bucket: local_day(bucket, zone)[0], cumulative, rollover)
    monthly = _group(daily, lambda bucket: local_month(bucket, zone)[0], cumulative, rollover)
    return {Rollups.HOURLY: hourly, Rollups.DAILY: daily, Rollups.MONTHLY: monthly}


def _group(
    rows: list[Rollup], bucket_of: Callable[[datetime], datetime], cumulative: bool, rollover: float | None
) -> list[Rollup]:
    grouped: dict[datetime, list[Rollup]] = {}
    for row in rows:
        grouped.setdefault(bucket_of(row.bucket), []).append(row)
    return [combine(bucket, members, cumulative, rollover) for bucket, members in grouped.items()]


@dataclass(frozen=True, slots=True)
class Difference:
    """A stored rollup row that is not what the raw readings give."""

    table: Rollups
    bucket: datetime
    field: str  # the column that differs; "row" when the row is missing or should not exist
    stored: object
    expected: object


def differences(table: Rollups, stored: Sequence[Rollup], expected: Sequence[Rollup]) -> list[Difference]:
    """Every way `stored` rows differ from `expected` ones: missing, extra or changed rows. Values are compared
    exactly (both databases keep a float's 64 bits), except the two sums a refresh carries on from the stored row
    (`joined`): they may differ from one summed again from every reading by the rounding of each addition."""
    found: list[Difference] = []
    by_bucket = {row.bucket: row for row in stored}
    for row in expected:
        kept = by_bucket.pop(row.bucket, None)
        if kept is None:
            found.append(Difference(table, row.bucket, "row", None, "present"))
            continue
        for name in Rollup.__dataclass_fields__:
            have, want = getattr(kept, name), getattr(row, name)
            if have == want or (name in _SUMS and _rounded(have, want, row)):
                continue
            found.append(Difference(table, row.bucket, name, have, want))
    found += [Difference(table, bucket, "row", "present", None) for bucket in by_bucket]
    return sorted(found, key=lambda d: (d.bucket, d.field))


_SUMS = ("sum", "increase")


def _rounded(have: float | None, want: float | None, row: Rollup) -> bool:
    """Whether two sums of `row`'s readings differ by no more than their additions' rounding: a relative 1e-9, or
    1e-12 of the largest value per reading for a sum that cancels to about nothing."""
    if have is None or want is None:
        return False
    scale = max(abs(have), abs(want)) * 1e-9 + max(abs(row.min), abs(row.max)) * row.count * 1e-12
    return abs(have - want) <= scale


@dataclass(frozen=True, slots=True)
class Verification:
    """What a verification of the stored rollups compared, and every difference found, by sensor."""

    start: datetime | None  # the period, widened to whole local months; None: from the first reading
    end: datetime | None  # None: to the last reading
    sensors: int
    readings: int
    rows: int  # stored rows compared (hourly, daily and monthly)
    differences: list[tuple[UUID, Difference]]
