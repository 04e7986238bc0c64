"""Issue 13, property-based: random counter and gauge series ingested through the real store, in shuffled batches
with refreshes between them, give through the rollups what `domain.consumption` gives on the raw points.

Sized for CI: `EXAMPLES` examples per database (derandomized, so a run is reproducible), each checking the hour,
day and month consumption answers over random periods and their CSV, a unit against the building's median, a period
against the one before it, an hourly time series (rollups) and quarter-hour ones (raw readings) with their flags, a
gauge's hourly statistics, and that `verify-rollups` finds the stored rows equal to the raw readings' (series are
delivered shuffled, or in time order, which the refresh folds into the latest rows). The ISTA report needs no
property of its own: it computes its periods with `consumption_by_bucket` on the raw readings, the reference itself.
It found no failure of the code once written; the cases its mutants failed on (the issue's jitter, a gap inside one
hour, a wrap, a jitter before a raw period) are regular tests in test_metering_truth.py."""

import csv
import io
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from koprogo_iot.analytics.aggregates import (
    Counters,
    GroupBy,
    Period,
    consumption_report,
    period_comparison,
    units_vs_median,
)
from koprogo_iot.analytics.export import to_csv
from koprogo_iot.analytics.series import GAP_FACTOR, time_series
from koprogo_iot.domain.consumption import Point, consumption_by_bucket, gauge_stats
from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.domain.sensors import IoTSensor, SensorType
from koprogo_iot.storage.ports import Ingested, Storage
from tests.conftest import Tenant, make_tenant

EXAMPLES = 50
# Two days before the change to summer time in Brussels (29 March) and a few before a month's end.
ORIGIN = datetime(2026, 3, 27, 20, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Series:
    deliveries: list[list[Point]]  # the batches, in the order they are ingested
    refresh_between: list[bool]  # refresh the rollups after each batch (but the last)
    rollover: float | None  # the counter's register size, when known

    @property
    def points(self) -> list[Point]:
        """In delivery order: for a repeated timestamp the first delivery is the one stored."""
        return [point for batch in self.deliveries for point in batch]


@st.composite
def counter_series(draw: st.DrawFn) -> Series:
    """Monotone runs, jitter under and drops over the 1 % threshold, resets, wraps of a register whose size may be
    known, gaps of days, repeated timestamps."""
    rollover = draw(st.sampled_from([1000.0, None, 100_000.0]))
    moment = ORIGIN + draw(st.integers(0, 12 * 60)) * MINUTE
    value = draw(st.floats(0, rollover or 100_000, allow_nan=False))
    points: list[Point] = [(moment, value)]
    for _ in range(draw(st.integers(1, 30))):
        step = draw(st.sampled_from(["up", "up", "up", "flat", "jitter", "drop", "reset", "wrap", "repeat"]))
        if step == "repeat":  # a redelivery with another value: the first one stays
            points.append((moment, value + draw(st.floats(-5, 5, allow_nan=False))))
            continue
        gap = draw(st.integers(0, 9)) == 0  # longer than any max_gap, one step in ten
        moment += draw(st.integers(6 * 60, 4 * 24 * 60) if gap else st.integers(1, 14) | st.integers(16, 59)) * MINUTE
        if step == "up":
            value += draw(st.floats(0, 50, allow_nan=False))
        elif step == "jitter":
            value *= 1 - draw(st.floats(0, 0.0099))
        elif step == "drop":
            value *= 1 - draw(st.floats(0.011, 0.9))
        elif step == "reset":
            value = draw(st.floats(0, 5, allow_nan=False))
        elif step == "wrap":  # near the top of the register, then past 0: a rollover when its size is known
            size = rollover or 100_000
            points.append((moment, size * (1 - draw(st.floats(0, 0.05)))))
            moment += draw(st.integers(1, 59)) * MINUTE
            value = size * draw(st.floats(0, 0.04))
        points.append((moment, value))
    # Shuffled (late readings: hours recomputed), or in time order as most meters send (new readings folded into
    # the latest rows).
    shuffled = draw(st.permutations(points) | st.just(sorted(points, key=lambda point: point[0])))
    cuts = sorted(draw(st.lists(st.integers(1, max(1, len(points) - 1)), max_size=3, unique=True)))
    batches = [shuffled[a:b] for a, b in zip([0, *cuts], [*cuts, len(shuffled)], strict=True) if shuffled[a:b]]
    return Series(batches, draw(st.lists(st.booleans(), min_size=len(batches), max_size=len(batches))), rollover)


def same(found: float | None, expected: float | None) -> bool:
    """Equal to 1e-9 relative (and to 1e-12 near 0, where a relative error means nothing); None only for None."""
    if found is None or expected is None:
        return found is expected
    return math.isclose(found, expected, rel_tol=1e-9, abs_tol=1e-12)


async def new_sensor(storage: Storage, t: Tenant, kind: str, rollover: float | None = None) -> IoTSensor:
    sensor = IoTSensor(
        organization_id=t.organization.id,
        building_id=t.building.id,
        unit_id=t.units[0].id,
        sensor_id=f"prop-{uuid.uuid4().hex[:12]}",
        sensor_type=SensorType.ELECTRICITY,
        manufacturer="Tasmota",
        model="POW",
        location="board",
        unit_of_measure="kWh" if kind == "cumulative" else "W",
        kind=kind,  # type: ignore[arg-type]
        rollover=rollover,
    )
    await storage.sensors.add(sensor)
    return sensor


async def ingest(storage: Storage, sensors: list[IoTSensor], series: Series) -> None:
    for batch, refresh in zip(series.deliveries, series.refresh_between, strict=True):
        await storage.readings.ingest(
            [Ingested(IoTReading.measured(sensor, ts, value)) for sensor in sensors for ts, value in batch]
        )
        if refresh:
            await storage.rollups.refresh()


@pytest.fixture
async def tenant(storage: Storage) -> Tenant:
    return await make_tenant(storage)


PERIODS = st.tuples(
    st.sampled_from(list(Period)),
    st.integers(-2 * 24, 10 * 24),  # start, hours from ORIGIN
    st.integers(1, 12 * 24),  # length in hours
)


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(series=counter_series(), periods=st.lists(PERIODS, min_size=3, max_size=3))
async def test_rollups_answer_as_the_reference(
    storage: Storage, tenant: Tenant, series: Series, periods: list[tuple[Period, int, int]]
) -> None:
    counter = await new_sensor(storage, tenant, "cumulative", series.rollover)
    gauge = await new_sensor(storage, tenant, "instantaneous")
    await ingest(storage, [counter, gauge], series)
    await check(storage, tenant, counter, gauge, series.points, periods)
    verification = await storage.rollups.verify(tenant.organization.id)
    assert verification.differences == []


async def check(
    storage: Storage,
    t: Tenant,
    counter: IoTSensor,
    gauge: IoTSensor,
    points: list[Point],
    periods: list[tuple[Period, int, int]],
) -> None:
    counters = Counters(t.organization.id, [counter], {})
    for period in Period:  # every period at least once, on the random spans given for it or the first one
        spans = [(s, n) for p, s, n in periods if p is period] or [periods[0][1:]]
        for start_hours, hours in spans:
            start = ORIGIN + timedelta(hours=start_hours)
            report = await consumption_report(
                storage.source, counters, GroupBy.SENSOR, period, start, start + timedelta(hours=hours)
            )
            [group] = report.groups
            grid = [(b.start, b.end) for b in group.buckets]
            expected = [r for _, r in consumption_by_bucket(points, grid, rollover=counter.rollover)]
            for bucket, result in zip(group.buckets, expected, strict=True):
                assert same(bucket.consumption, result.consumption), (period, bucket, result)
                assert bucket.complete == result.complete, (period, bucket, result)
                assert bucket.sensors == (result.consumption is not None)
            # The CSV download of the same answer: the same figures, to its 9 decimals.
            rows = list(csv.DictReader(io.StringIO(to_csv(report))))
            for row, result in zip(rows, expected, strict=True):
                written = None if row["consumption"] == "" else float(row["consumption"])
                assert (written is None) == (result.consumption is None), (row, result)
                assert written is None or abs(written - (result.consumption or 0.0)) <= 1e-9 * max(1.0, written)
                assert row["complete"] == str(result.complete).lower()
    # The unit against the building's median (its unit alone here: the median is its own figure).
    _, start_hours, hours = periods[0]
    start = ORIGIN + timedelta(hours=start_hours)
    median = await units_vs_median(
        storage.source, counters, t.building.id, counter.sensor_type, start, start + timedelta(hours=hours)
    )
    [unit] = median.units
    [(_, result)] = consumption_by_bucket(points, [(median.start, median.end)], rollover=counter.rollover)
    assert same(unit.consumption, result.consumption) and same(unit.median, result.consumption), (unit, result)
    assert unit.complete == result.complete
    # A period against the one before it, from the hourly rollups.
    current = ORIGIN + timedelta(hours=start_hours)
    compared = await period_comparison(
        storage.source, counters, GroupBy.SENSOR, current, current + timedelta(hours=hours)
    )
    [change] = compared.groups
    before, now = consumption_by_bucket(
        points,
        [(compared.previous_start, compared.previous_end), (compared.start, compared.end)],
        rollover=counter.rollover,
    )
    assert same(change.previous, before[1].consumption) and same(change.current, now[1].consumption)
    assert change.complete == (before[1].complete and now[1].complete)
    # The counter's hourly time series, from the hourly rollups: figures and every flag, gaps (`estimated`) included.
    start, end = min(ts for ts, _ in points) - timedelta(hours=3), max(ts for ts, _ in points) + timedelta(hours=3)
    series = await time_series(storage.source, counter, start, end, interval=3600)
    max_gap = timedelta(seconds=GAP_FACTOR * counter.sampling_interval)
    grid = [(p.start, p.end) for p in series.points]
    expected = [r for _, r in consumption_by_bucket(points, grid, max_gap=max_gap, rollover=counter.rollover)]
    for point, result in zip(series.points, expected, strict=True):
        assert same(point.consumption, result.consumption), (point, result)
        assert (point.complete, point.estimated, point.readings, point.resets) == (
            result.complete,
            result.estimated,
            result.readings,
            result.resets,
        ), (point, result)
        if result.rollovers:
            event("an hour holds a wrap of a known register")
        assert point.last_index == (result.last[1] if result.last else None)
    # Quarters of an hour from the raw readings, from just after a reading (the edge one): they start from the
    # state the counter rules had before it.
    for _, start_hours, hours in periods:
        first = points[start_hours % len(points)][0] + timedelta(minutes=1 + start_hours % 40)
        series = await time_series(storage.source, counter, first, first + timedelta(hours=hours), interval=900)
        grid = [(p.start, p.end) for p in series.points]
        expected = [r for _, r in consumption_by_bucket(points, grid, max_gap=max_gap, rollover=counter.rollover)]
        for point, result in zip(series.points, expected, strict=True):
            assert same(point.consumption, result.consumption), (point, result)
            assert (point.complete, point.estimated, point.readings, point.resets) == (
                result.complete,
                result.estimated,
                result.readings,
                result.resets,
            ), (point, result)
    # The gauge's hourly statistics, from the hourly rollups, against the raw rows' over the whole series.
    found = await time_series(storage.source, gauge, start, end, interval=3600)
    stored = dict(reversed(points))  # the first delivery of a timestamp wins
    stats = {
        bucket[0]: s
        for bucket in ((p.start, p.end) for p in found.points)
        if (s := gauge_stats(list(stored.items()), *bucket)) is not None
    }
    assert len(found.points) == len({ts.replace(minute=0, second=0, microsecond=0) for ts in stored}), (
        "one bucket per hour holding readings"
    )
    for point in found.points:
        expected_stats = stats[point.start]
        assert (point.min, point.max, point.last, point.count) == (
            expected_stats.min,
            expected_stats.max,
            expected_stats.last,
            expected_stats.count,
        )
        assert math.isclose(point.avg, expected_stats.avg, rel_tol=1e-9, abs_tol=1e-9)
