"""Consumption math: the increase of a cumulative meter over a period, and statistics of a gauge.

This module is the reference every query path (SQLite, PostgreSQL, rollup tables) uses or is checked against.

Conventions
-----------
- A *point* is `(timestamp, value)`. Timestamps must be aware; they are converted to UTC. Points may come in any
  order and may repeat a timestamp: they are sorted, and for a repeated timestamp the first one given wins, as in
  storage, where `ON CONFLICT (sensor_id, ts) DO NOTHING` keeps the first delivery.
- A *period* or *bucket* is half-open, `[start, end)`. Buckets partition `[start, end)` exactly: a bucket grid is
  aligned to `start` and the last bucket is cut at `end` (use `bucket_floor` to align `start` first).

Counters (meter indexes: m³, kWh)
---------------------------------
Consecutive readings form *steps*. Each step gets an increase >= 0 by these rules, where the *baseline* is the
highest index seen since the last reset (it starts at the first reading):
- value >= baseline: the increase is `value - baseline` (NORMAL); the baseline becomes the value.
- value below the baseline by less than `reset_threshold` (default 1 %) of the baseline: noise (JITTER), e.g.
  Tasmota's `Total`, saved only at midnight, stepping back after a power cut. The increase is 0 and the baseline
  stays at the higher value until the index exceeds it again. This can under-count by at most the size of the
  drop; treating it as a reset would instead over-count the whole index.
- a larger drop with `rollover` given, the old baseline within the top of the range and the new value near 0, such
  that the wrapped increase `(rollover - baseline) + value` is at most `ROLLOVER_WINDOW` (10 %) of `rollover`:
  the counter wrapped (ROLLOVER). `rollover` is the value at which the counter returns to 0 (its modulus: pass
  100000 for a display reading up to 99999.999). Any other larger drop is a RESET: reboot, meter replacement or
  manual reset; the counter is assumed to have restarted at 0, so the increase is the new value (0 if negative).
  Why 10 %: between two readings a meter advances far less than a tenth of its range (a flat uses ~50 m³ a year on
  a 100000 m³ register), whereas a reset lands near 0 from anywhere in the range. A reset from within the top 10 %
  cannot be told apart from a wrap by the values alone; it is counted as a wrap, over-counting by at most 10 %.
- The increase of a step is spread *linearly* over its time span, so a period gets the share of each step it
  overlaps. A bucket boundary between two readings is thus interpolated, a bucket with no reading inside gets its
  share of the step spanning it, and the consumption of consecutive periods adds up exactly (to rounding) to the
  consumption of their union. This also holds for resets and rollovers, which are spread like any other step.
- Gaps: a step longer than `max_gap` is still counted (the meter did measure it) and spread linearly like any
  step; the result lists such steps in `gaps` and says `estimated`, so callers can flag the figure.
- Coverage: nothing is extrapolated before the first or after the last reading. `consumption` is None when no step
  overlaps the period (no data, a single reading, or readings only on one side): unknown, which is not 0. When
  steps cover only part of the period the figure counts that part and `complete` is False.
- The baseline rule needs running state (the highest index since the last reset), which `LAG()` alone cannot
  give: SQL paths run `counter_steps` over the raw rows to fill rollups, or are checked against this module.

Gauges (instantaneous: W, °C, %, L/h)
-------------------------------------
`GaugeStats.avg` is the plain mean of the readings in the bucket (what SQL `AVG` gives), not a time-weighted
mean. A bucket without readings has no statistics: `gauge_stats` returns None and `bucketed_gauge_stats` omits it,
as SQL `GROUP BY` does.

Calendar buckets
----------------
Days, weeks (from Monday), months and years start at local midnight in the given zone (Europe/Brussels by
default), so a daily bucket lasts 23 or 25 hours on DST days. Bucket bounds are returned as aware UTC datetimes.
"""

from __future__ import annotations

import bisect
import itertools
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from koprogo_iot.domain.clock import require_aware
from koprogo_iot.domain.errors import InvalidValue

Point = tuple[datetime, float]
Bucket = tuple[datetime, datetime]  # [start, end)

RESET_THRESHOLD = 0.01  # a drop under 1 % of the index is jitter, not a reset
ROLLOVER_WINDOW = 0.10  # a wrap advances the counter by at most 10 % of its range between two readings
DEFAULT_ZONE = "Europe/Brussels"  # the zone our buildings' calendar days and months are counted in
# A guard against a mistyped step (1 µs over a year), not a product limit: the API applies its own, smaller cap.
MAX_BUCKETS = 1_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # the grid origin of `bucket_floor`, as `epoch // step * step` in SQLite


class StepKind(StrEnum):
    NORMAL = "normal"  # the index rose or stayed
    JITTER = "jitter"  # a small step back, ignored
    RESET = "reset"  # the counter restarted at 0
    ROLLOVER = "rollover"  # the counter wrapped past its maximum


class CalendarUnit(StrEnum):
    DAY = "day"
    WEEK = "week"  # ISO weeks, from Monday
    MONTH = "month"
    YEAR = "year"


@dataclass(frozen=True, slots=True)
class CounterStep:
    """The increase of a counter between two consecutive readings."""

    start: datetime
    end: datetime
    increase: float
    kind: StepKind

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class CounterResult:
    """A counter's consumption over one period, with what the figure rests on."""

    consumption: float | None  # None: no pair of readings around any part of the period
    first: Point | None  # the first reading inside the period
    last: Point | None  # the last reading inside the period
    readings: int  # readings inside the period
    resets: int  # steps overlapping the period that were resets
    rollovers: int  # steps overlapping the period that were rollovers
    gaps: tuple[Bucket, ...]  # steps overlapping the period longer than max_gap, as (reading, next reading)
    complete: bool  # readings on or before start and on or after end: no part of the period is missing

    @property
    def estimated(self) -> bool:
        """Part of the figure is spread over a gap longer than max_gap."""
        return bool(self.gaps)


@dataclass(frozen=True, slots=True)
class GaugeStats:
    """Statistics of a gauge's readings in one bucket; avg is the plain mean of the readings."""

    avg: float
    min: float
    max: float
    last: float  # the value of the latest reading
    count: int


def normalize(points: Iterable[Point]) -> list[Point]:
    """Points in UTC, sorted by time, one per timestamp (the first given wins, as in storage)."""
    kept: dict[datetime, float] = {}
    for timestamp, value in points:
        if not math.isfinite(value):
            raise InvalidValue(f"reading value at {timestamp.isoformat()} must be a finite number")
        kept.setdefault(_utc(timestamp, "reading timestamp"), float(value))
    return sorted(kept.items())


def counter_steps(
    points: Iterable[Point], *, rollover: float | None = None, reset_threshold: float = RESET_THRESHOLD
) -> list[CounterStep]:
    """The increase between each pair of consecutive readings, by the rules of the module docstring."""
    _check_counter_options(rollover, reset_threshold, None)
    return _steps(normalize(points), rollover, reset_threshold)


def consumption(
    points: Iterable[Point],
    start: datetime,
    end: datetime,
    *,
    rollover: float | None = None,
    max_gap: timedelta | None = None,
    reset_threshold: float = RESET_THRESHOLD,
) -> CounterResult:
    """The counter's increase over [start, end)."""
    period = _period(start, end)
    _check_counter_options(rollover, reset_threshold, max_gap)
    return _CounterSeries(normalize(points), rollover, reset_threshold).result(period, max_gap)


def bucketed_consumption(
    points: Iterable[Point],
    start: datetime,
    end: datetime,
    step: timedelta | str,
    *,
    tz: tzinfo | str = DEFAULT_ZONE,
    rollover: float | None = None,
    max_gap: timedelta | None = None,
    reset_threshold: float = RESET_THRESHOLD,
) -> list[tuple[datetime, CounterResult]]:
    """The counter's increase per bucket: a fixed `timedelta` step, or a calendar unit ("day", "month") in `tz`."""
    grid = buckets(start, end, step, tz)
    _check_counter_options(rollover, reset_threshold, max_gap)
    series = _CounterSeries(normalize(points), rollover, reset_threshold)
    return [(bucket[0], series.result(bucket, max_gap)) for bucket in grid]


def consumption_by_bucket(
    points: Iterable[Point],
    grid: Sequence[Bucket],
    *,
    rollover: float | None = None,
    max_gap: timedelta | None = None,
    reset_threshold: float = RESET_THRESHOLD,
) -> list[tuple[datetime, CounterResult]]:
    """The counter's increase over each of the given periods (any periods, overlapping or not)."""
    periods = [_period(bucket_start, bucket_end) for bucket_start, bucket_end in grid]
    _check_counter_options(rollover, reset_threshold, max_gap)
    series = _CounterSeries(normalize(points), rollover, reset_threshold)
    return [(period[0], series.result(period, max_gap)) for period in periods]


def gauge_stats(points: Iterable[Point], start: datetime, end: datetime) -> GaugeStats | None:
    """Avg, min, max, last and count of the readings in [start, end); None when there is none."""
    period = _period(start, end)
    return _GaugeSeries(normalize(points)).stats(period)


def bucketed_gauge_stats(
    points: Iterable[Point], start: datetime, end: datetime, step: timedelta | str, *, tz: tzinfo | str = DEFAULT_ZONE
) -> list[tuple[datetime, GaugeStats]]:
    """Gauge statistics per bucket; buckets without readings are left out."""
    grid = buckets(start, end, step, tz)
    series = _GaugeSeries(normalize(points))
    return [(bucket[0], stats) for bucket in grid if (stats := series.stats(bucket)) is not None]


def buckets(start: datetime, end: datetime, step: timedelta | str, tz: tzinfo | str = DEFAULT_ZONE) -> list[Bucket]:
    """Fixed buckets for a `timedelta` step, calendar buckets in `tz` for a unit name."""
    if isinstance(step, timedelta):
        return fixed_buckets(start, end, step)
    return calendar_buckets(start, end, step, tz)


def fixed_buckets(start: datetime, end: datetime, step: timedelta) -> list[Bucket]:
    """[start, start + step), [start + step, ...) up to `end`, the last one cut at `end`."""
    start, end = _period(start, end)
    if step <= timedelta(0):
        raise InvalidValue("bucket step must be positive")
    count = -((start - end) // step)  # ceiling division
    if count > MAX_BUCKETS:
        raise InvalidValue(f"{count} buckets of {step} is more than {MAX_BUCKETS}: choose a larger step")
    bounds = [start + i * step for i in range(count)] + [end]
    return list(itertools.pairwise(bounds))


def calendar_buckets(start: datetime, end: datetime, unit: str, tz: tzinfo | str = DEFAULT_ZONE) -> list[Bucket]:
    """Buckets that start at local midnight of each day, week, month or year in `tz`, cut at `start` and `end`."""
    start, end = _period(start, end)
    try:
        calendar_unit = CalendarUnit(unit)
    except ValueError:
        allowed = ", ".join(u.value for u in CalendarUnit)
        raise InvalidValue(f"calendar unit must be one of {allowed}, not {unit!r}") from None
    local_zone = zone(tz)
    day = _unit_start(start.astimezone(local_zone).date(), calendar_unit)
    bounds = [start]
    while True:
        day = _next_unit(day, calendar_unit)
        # fold=0 picks the first of two ambiguous local midnights; Brussels changes hour at 02:00/03:00 anyway.
        boundary = datetime(day.year, day.month, day.day, tzinfo=local_zone).astimezone(UTC)
        if boundary >= end:
            break
        if boundary > start:
            bounds.append(boundary)
        if len(bounds) > MAX_BUCKETS:
            raise InvalidValue(f"more than {MAX_BUCKETS} buckets: choose a larger unit")
    bounds.append(end)
    return list(itertools.pairwise(bounds))


def bucket_floor(timestamp: datetime, step: timedelta, origin: datetime = EPOCH) -> datetime:
    """The start of the `step` bucket holding `timestamp` on a grid from `origin`, like PostgreSQL's `date_bin`."""
    if step <= timedelta(0):
        raise InvalidValue("bucket step must be positive")
    timestamp, origin = _utc(timestamp, "timestamp"), _utc(origin, "origin")
    return origin + ((timestamp - origin) // step) * step


def relative_change(current: float | None, previous: float | None) -> float | None:
    """(current - previous) / |previous| as a fraction (0.07 is +7 %); None when either is missing or previous is 0."""
    if current is None or previous is None or previous == 0:
        return None
    return (current - previous) / abs(previous)


def median(values: Iterable[float | None]) -> float | None:
    """The median of the known values (None ones skipped), as PostgreSQL's `percentile_cont(0.5)`; None if none."""
    known = [value for value in values if value is not None]
    if any(math.isnan(value) for value in known):
        raise InvalidValue("cannot take the median of NaN")
    return statistics.median(known) if known else None


class _CounterSeries:
    """Normalized readings and their steps, indexed for answering many periods in one pass each."""

    def __init__(self, points: list[Point], rollover: float | None, reset_threshold: float) -> None:
        self.points = points
        self.times = [timestamp for timestamp, _ in points]
        self.steps = _steps(points, rollover, reset_threshold)
        self.step_ends = [step.end for step in self.steps]

    def result(self, period: Bucket, max_gap: timedelta | None) -> CounterResult:
        start, end = period
        shares: list[float] = []
        resets = rollovers = 0
        gaps: list[Bucket] = []
        # Steps are contiguous and sorted: the first one ending after `start` is the first that overlaps.
        # (Indexing, not islice: islice walks the skipped steps, which made a year of buckets quadratic.)
        for index in range(bisect.bisect_right(self.step_ends, start), len(self.steps)):
            step = self.steps[index]
            if step.start >= end:
                break
            overlap = min(step.end, end) - max(step.start, start)
            shares.append(step.increase * (overlap / step.duration))
            resets += step.kind is StepKind.RESET
            rollovers += step.kind is StepKind.ROLLOVER
            if max_gap is not None and step.duration > max_gap:
                gaps.append((step.start, step.end))
        low, high = bisect.bisect_left(self.times, start), bisect.bisect_left(self.times, end)
        return CounterResult(
            consumption=math.fsum(shares) if shares else None,
            first=self.points[low] if low < high else None,
            last=self.points[high - 1] if low < high else None,
            readings=high - low,
            resets=resets,
            rollovers=rollovers,
            gaps=tuple(gaps),
            complete=bool(shares) and self.times[0] <= start and self.times[-1] >= end,
        )


class _GaugeSeries:
    """Normalized gauge readings, indexed by time."""

    def __init__(self, points: list[Point]) -> None:
        self.times = [timestamp for timestamp, _ in points]
        self.values = [value for _, value in points]

    def stats(self, period: Bucket) -> GaugeStats | None:
        low, high = bisect.bisect_left(self.times, period[0]), bisect.bisect_left(self.times, period[1])
        if low == high:
            return None
        values = self.values[low:high]
        return GaugeStats(
            avg=math.fsum(values) / len(values), min=min(values), max=max(values), last=values[-1], count=len(values)
        )


def _steps(points: list[Point], rollover: float | None, reset_threshold: float) -> list[CounterStep]:
    steps: list[CounterStep] = []
    if not points:
        return steps
    baseline = points[0][1]  # the highest index since the last reset
    for (previous_time, _), (time, value) in itertools.pairwise(points):
        increase, kind, baseline = step_increase(baseline, value, rollover, reset_threshold)
        steps.append(CounterStep(previous_time, time, increase, kind))
    return steps


def step_increase(
    baseline: float, value: float, rollover: float | None = None, reset_threshold: float = RESET_THRESHOLD
) -> tuple[float, StepKind, float]:
    """One step's (increase, kind, new baseline) from the baseline (highest index since the last reset) to `value`."""
    if value >= baseline:
        return value - baseline, StepKind.NORMAL, value
    if baseline - value < reset_threshold * abs(baseline):
        return 0.0, StepKind.JITTER, baseline
    if rollover is not None and _wraps(baseline, value, rollover):
        return (rollover - baseline) + value, StepKind.ROLLOVER, value
    return max(value, 0.0), StepKind.RESET, value


def _wraps(baseline: float, value: float, rollover: float) -> bool:
    # An index above the maximum or below 0 cannot come from a counter wrapping at `rollover`.
    return baseline <= rollover and value >= 0 and (rollover - baseline) + value <= ROLLOVER_WINDOW * rollover


def _check_counter_options(rollover: float | None, reset_threshold: float, max_gap: timedelta | None) -> None:
    if rollover is not None and not (math.isfinite(rollover) and rollover > 0):
        raise InvalidValue("rollover must be a positive number")
    if not 0 <= reset_threshold < 1:
        raise InvalidValue("reset threshold must be a fraction of the index, from 0 up to 1 excluded")
    if max_gap is not None and max_gap <= timedelta(0):
        raise InvalidValue("maximum gap must be positive")


def _period(start: datetime, end: datetime) -> Bucket:
    start, end = _utc(start, "start"), _utc(end, "end")
    if end <= start:
        raise InvalidValue(f"period end {end.isoformat()} must be after its start {start.isoformat()}")
    return start, end


def _utc(timestamp: datetime, name: str) -> datetime:
    # Most timestamps already come in UTC from storage: skip the conversion for them.
    return timestamp if timestamp.tzinfo is UTC else require_aware(timestamp, name)


def zone(tz: tzinfo | str) -> tzinfo:
    """A time zone from its name (or itself); an unknown name is an `InvalidValue`."""
    if not isinstance(tz, str):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidValue(f"unknown time zone {tz!r}") from None


def _unit_start(day: date, unit: CalendarUnit) -> date:
    if unit is CalendarUnit.WEEK:
        return day - timedelta(days=day.weekday())
    if unit is CalendarUnit.MONTH:
        return day.replace(day=1)
    if unit is CalendarUnit.YEAR:
        return day.replace(month=1, day=1)
    return day


def _next_unit(day: date, unit: CalendarUnit) -> date:
    if unit is CalendarUnit.DAY:
        return day + timedelta(days=1)
    if unit is CalendarUnit.WEEK:
        return day + timedelta(days=7)
    if unit is CalendarUnit.MONTH:
        return date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return date(day.year + 1, 1, 1)
