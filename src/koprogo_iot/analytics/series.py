"""One sensor's time series in fixed buckets: gauge statistics, or a counter's consumption per bucket."""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from koprogo_iot.domain.clock import require_aware, utcnow
from koprogo_iot.domain.consumption import (
    Bucket,
    CounterResult,
    Point,
    bucket_floor,
    bucketed_gauge_stats,
    consumption_by_bucket,
    fixed_buckets,
)
from koprogo_iot.domain.errors import InvalidValue
from koprogo_iot.domain.rollups import CounterRow, GaugeRow, Rollups, rollup_results
from koprogo_iot.domain.sensors import IoTSensor, MeasurementKind
from koprogo_iot.offload import off_loop
from koprogo_iot.storage.ports import ReadingSource

DEFAULT_INTERVAL = 300  # seconds: the usual sampling interval, so a day shows every reading's bucket
DEFAULT_SPAN = timedelta(hours=24)
MAX_POINTS = 10_000  # a chart has no use for more, and it keeps one response well under a few MB
# A counter step longer than this many sampling intervals means readings were lost: its share is flagged estimated.
GAP_FACTOR = 3
_HOUR = timedelta(hours=1)
Source = Literal["raw", "rollups"]


@dataclass(frozen=True, slots=True)
class GaugePoint:
    """A gauge's readings in one bucket."""

    start: datetime
    end: datetime
    avg: float
    min: float
    max: float
    last: float
    count: int


@dataclass(frozen=True, slots=True)
class CounterPoint:
    """A counter's consumption in one bucket, interpolated at the bucket's bounds."""

    start: datetime
    end: datetime
    consumption: float | None  # None: no reading on either side of any part of the bucket
    last_index: float | None  # the last index read in the bucket
    readings: int
    resets: int
    complete: bool  # readings on or before the start and on or after the end
    estimated: bool  # part of the figure spreads a gap of more than GAP_FACTOR sampling intervals


@dataclass(frozen=True, slots=True)
class TimeSeries:
    """A sensor's buckets over [start, end); gauges omit buckets without readings, counters list every bucket."""

    sensor: IoTSensor
    start: datetime
    end: datetime
    interval: int  # seconds
    points: list[GaugePoint] | list[CounterPoint]
    source: Source = "raw"  # what the buckets were computed from
    raw_kept_from: datetime | None = None  # the organization's raw readings before this are gone (retention)

    @property
    def raw_available(self) -> bool:
        """Whether every raw reading of the period is still kept."""
        return self.raw_kept_from is None or self.start >= self.raw_kept_from


def resolve_period(
    start: datetime | None, end: datetime | None, default_span: timedelta, now: datetime | None = None
) -> Bucket:
    """[start, end) with the defaults: end is now, start is `default_span` before end."""
    end = require_aware(end, "end") if end is not None else (now or utcnow())
    start = require_aware(start, "start") if start is not None else end - default_span
    if end <= start:
        raise InvalidValue(f"end {end.isoformat()} must be after start {start.isoformat()}")
    return start, end


def aligned_buckets(start: datetime, end: datetime, step: timedelta, limit: int = MAX_POINTS) -> list[Bucket]:
    """Buckets on the epoch grid of `step` (whole hours stay whole hours), the first cut at `start`, the last at `end`.

    More than `limit` buckets is refused, naming the smallest step that fits.
    """
    if step <= timedelta(0):
        raise InvalidValue("aggregation interval must be positive")
    if bucket_count(start, end, step) > limit:
        smallest = math.ceil((end - start) / timedelta(seconds=limit))
        while bucket_count(start, end, timedelta(seconds=smallest)) > limit:
            smallest += 1
        raise InvalidValue(
            f"{bucket_count(start, end, step)} buckets of {int(step.total_seconds())} s is more than {limit}: "
            f"use an aggregation interval of at least {smallest} s for this period"
        )
    floor = bucket_floor(start, step)
    regular = floor + step if floor < start else start  # where the grid's whole buckets begin
    if regular >= end:
        return [(start, end)]
    return ([(start, regular)] if floor < start else []) + fixed_buckets(regular, end, step)


def bucket_count(start: datetime, end: datetime, step: timedelta) -> int:
    """How many buckets `aligned_buckets` makes of [start, end)."""
    return -((bucket_floor(start, step) - end) // step)  # ceiling division


async def time_series(
    source: ReadingSource,
    sensor: IoTSensor,
    start: datetime | None = None,
    end: datetime | None = None,
    interval: int = DEFAULT_INTERVAL,
    use_rollups: bool = True,
) -> TimeSeries:
    """The sensor's series (`use_rollups` False: from the raw readings whatever the buckets).

    A period starting before the organization's raw horizon (retention deleted its raw readings) is answered from
    the hourly rollups whatever `use_rollups` says: the interval is rounded up to whole hours, and the result says
    so (`source`, `raw_kept_from`).
    """
    if interval < 1:
        raise InvalidValue("aggregation interval must be at least 1 second")
    start, end = resolve_period(start, end, DEFAULT_SPAN)
    raw_kept_from = await source.raw_kept_from(sensor.organization_id)
    if raw_kept_from is not None and start < raw_kept_from:
        interval, use_rollups = -(-interval // 3600) * 3600, True
    if interval % 3600 == 0:  # whole hours: widen to whole hours so that the hourly rollups answer
        start = bucket_floor(start, _HOUR)
        end = end if end == bucket_floor(end, _HOUR) else bucket_floor(end, _HOUR) + _HOUR
    grid = aligned_buckets(start, end, timedelta(seconds=interval))
    # Whole hours from a whole hour to a whole hour: every bucket is made of hourly rollups, read those instead
    # of up to a year of raw readings.
    hourly = (
        use_rollups and interval % 3600 == 0 and start == bucket_floor(start, _HOUR) and end == bucket_floor(end, _HOUR)
    )
    org = sensor.organization_id
    series: list[GaugePoint] | list[CounterPoint]
    if sensor.measurement_kind is MeasurementKind.CUMULATIVE:
        max_gap = timedelta(seconds=GAP_FACTOR * sensor.sampling_interval)
        if hourly:
            rows = (await source.counter_rows(org, [sensor.id], start, end, Rollups.HOURLY))[sensor.id]
            series = await off_loop(_counter_series_of_rows, rows, grid, max_gap)
        else:
            points = (await source.points(org, [sensor.id], start, end))[sensor.id]
            series = await off_loop(_counter_series, points, grid, max_gap, sensor.rollover)
    elif hourly:
        gauge_rows = await source.gauge_rows(org, sensor.id, start, end, Rollups.HOURLY)
        series = await off_loop(gauge_points_from_rollups, gauge_rows, grid)
    else:
        series = await off_loop(gauge_points, (await source.points(org, [sensor.id], start, end))[sensor.id], grid)
    return TimeSeries(sensor, start, end, interval, series, "rollups" if hourly else "raw", raw_kept_from)


def _counter_series_of_rows(rows: list[CounterRow], grid: list[Bucket], max_gap: timedelta) -> list[CounterPoint]:
    return counter_points(rollup_results(rows, grid, max_gap), grid)


def _counter_series(
    points: list[Point], grid: list[Bucket], max_gap: timedelta, rollover: float | None
) -> list[CounterPoint]:
    results = [r for _, r in consumption_by_bucket(points, grid, max_gap=max_gap, rollover=rollover)]
    return counter_points(results, grid)


def counter_points(results: list[CounterResult], grid: list[Bucket]) -> list[CounterPoint]:
    """Every bucket of the grid with the counter's interpolated consumption and what the figure rests on."""
    return [
        CounterPoint(
            start=bucket_start,
            end=bucket_end,
            consumption=result.consumption,
            last_index=result.last[1] if result.last else None,
            readings=result.readings,
            resets=result.resets,
            complete=result.complete,
            estimated=result.estimated,
        )
        for (bucket_start, bucket_end), result in zip(grid, results, strict=True)
    ]


def gauge_points_from_rollups(rows: list[GaugeRow], grid: list[Bucket]) -> list[GaugePoint]:
    """The grid's buckets holding readings, their statistics combined from ordered hourly rollup rows."""
    starts = [bucket_start for bucket_start, _ in grid]
    out: list[GaugePoint] = []
    current: int | None = None
    count = total = low = high = last = 0.0
    for bucket, n, row_sum, row_min, row_max, row_last in rows:
        index = bisect.bisect_right(starts, bucket) - 1
        if index != current:
            if current is not None:
                out.append(GaugePoint(*grid[current], total / count, low, high, last, int(count)))
            current, count, total, low, high = index, 0.0, 0.0, row_min, row_max
        count, total = count + n, total + row_sum
        low, high, last = min(low, row_min), max(high, row_max), row_last  # rows are in time order
    if current is not None:
        out.append(GaugePoint(*grid[current], total / count, low, high, last, int(count)))
    return out


def gauge_points(points: list[Point], grid: list[Bucket]) -> list[GaugePoint]:
    """The buckets of the grid holding readings, with their statistics."""
    ends = dict(grid)
    # After its first bucket, which may be cut at the start, the grid is regular: two runs of fixed steps cover it.
    (head_start, head_end), rest = grid[0], grid[1:]
    runs = [(head_start, head_end, head_end - head_start)]
    if rest:
        runs.append((rest[0][0], rest[-1][1], rest[0][1] - rest[0][0]))
    return [
        GaugePoint(bucket_start, ends[bucket_start], stats.avg, stats.min, stats.max, stats.last, stats.count)
        for run_start, run_end, step in runs
        for bucket_start, stats in bucketed_gauge_stats(points, run_start, run_end, step)
    ]
