"""The reading source (`ReadingSource`) on both databases: rollup-served consumption equals raw-served consumption
on hour, local-day and local-month grids."""

from datetime import UTC, datetime, timedelta

import pytest

from koprogo_iot.domain.consumption import calendar_buckets, consumption_by_bucket, fixed_buckets
from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.domain.rollups import Rollups, rollup_results
from koprogo_iot.storage.ports import Ingested, Storage
from tests.conftest import make_tenant

START = datetime(2026, 3, 28, 0, 0, tzinfo=UTC)  # spans the 2026-03-29 change to summer time in Brussels


async def test_rollups_give_the_raw_answer(storage: Storage) -> None:
    t = await make_tenant(storage)
    sensor = t.unit_sensor
    readings, index = [], 500.0
    for i in range(3 * 24 * 6):  # every 10 minutes for three days
        index = 2.0 if i == 200 else index + 0.01 * (1 + i % 7)  # a meter replacement (reset) on day two
        readings.append(Ingested(IoTReading.measured(sensor, START + timedelta(minutes=10 * i, seconds=17), index)))
    await storage.readings.ingest(readings)
    org, end = t.organization.id, START + timedelta(days=3)
    hours = fixed_buckets(START + timedelta(hours=5), end - timedelta(hours=7), timedelta(hours=1))
    # Rollups answer only grids on their bounds: local midnights (here 2026-03-28T23:00Z, then 22:00Z after DST).
    days = calendar_buckets(datetime(2026, 3, 28, 23, tzinfo=UTC), end, "day", "Europe/Brussels")
    source = storage.source
    for grid, rollup in ((hours, Rollups.HOURLY), (days, Rollups.DAILY)):
        span = (grid[0][0], grid[-1][1])
        via_rollups = (await source.points(org, [sensor.id], *span, rollup))[sensor.id]
        via_raw = (await source.points(org, [sensor.id], *span))[sensor.id]
        assert len(via_rollups) < len(via_raw)
        expected = [r.consumption for _, r in consumption_by_bucket(via_raw, grid)]
        got = [r.consumption for _, r in consumption_by_bucket(via_rollups, grid)]
        assert got == pytest.approx(expected, abs=1e-9)
        # The rows themselves, summed bucket by bucket, give the same figures, and the raw answer's flags.
        rows = (await source.counter_rows(org, [sensor.id], *span, rollup))[sensor.id]
        raw = [r for _, r in consumption_by_bucket(via_raw, grid)]
        assert rollup_results(rows, grid) == raw


async def test_rollup_results_leave_uncovered_buckets_unknown(storage: Storage) -> None:
    t = await make_tenant(storage)
    sensor = t.unit_sensor
    readings = [(START + timedelta(hours=1), 10.0), (START + timedelta(hours=3), 14.0)]
    await storage.readings.ingest([Ingested(IoTReading.measured(sensor, ts, value)) for ts, value in readings])
    grid = [(START + timedelta(hours=h), START + timedelta(hours=h + 1)) for h in range(5)]
    rows = await storage.source.counter_rows(t.organization.id, [sensor.id], START, grid[-1][1], Rollups.HOURLY)
    got = rollup_results(rows[sensor.id], grid)
    assert [r.consumption for r in got] == [None, 2.0, 2.0, None, None]
    assert [r.complete for r in got] == [False, True, True, False, False]
    assert got == [r for _, r in consumption_by_bucket(readings, grid)]
    one = [r for _, r in consumption_by_bucket(readings[:1], grid)]
    assert rollup_results(rows[sensor.id][:1], grid) == one and all(r.consumption is None for r in one)
    assert rollup_results([], grid) == [got[0]] * 5


async def test_monthly_rollups_give_the_raw_answer_with_partial_months_at_the_edges(storage: Storage) -> None:
    t = await make_tenant(storage)
    sensor = t.unit_sensor
    origin = datetime(2026, 1, 20, 5, tzinfo=UTC)
    readings, index = [], 100.0
    for i in range(75 * 4):  # every 6 hours for 75 days, a meter replacement (reset) in February
        index = 1.0 if i == 110 else index + 0.5 + (i % 3) * 0.1
        readings.append(Ingested(IoTReading.measured(sensor, origin + timedelta(hours=6 * i, minutes=7), index)))
    # Two ingestions, so that the second refresh recomputes only some days of a month and reads the others back.
    await storage.readings.ingest(readings[:150])
    source = storage.source
    org = t.organization.id
    await source.points(org, [sensor.id], origin, origin + timedelta(days=1), Rollups.DAILY)  # refreshes
    await storage.readings.ingest(readings[150:])
    # 25 January to 25 March, local days: a partial January, whole February, a partial March (and DST on 29 March).
    start, end = datetime(2026, 1, 24, 23, tzinfo=UTC), datetime(2026, 3, 30, 22, tzinfo=UTC)
    grid = calendar_buckets(start, end, "month", "Europe/Brussels")
    assert len(grid) == 3
    via_months = (await source.points(org, [sensor.id], start, end, Rollups.MONTHLY))[sensor.id]
    via_days = (await source.points(org, [sensor.id], start, end, Rollups.DAILY))[sensor.id]
    via_raw = (await source.points(org, [sensor.id], start, end))[sensor.id]
    assert len(via_months) < len(via_days) < len(via_raw)
    expected = [r.consumption for _, r in consumption_by_bucket(via_raw, grid)]
    for rollup in (Rollups.MONTHLY, Rollups.DAILY):
        rows = (await source.counter_rows(org, [sensor.id], start, end, rollup))[sensor.id]
        assert [r.consumption for r in rollup_results(rows, grid)] == pytest.approx(expected, rel=1e-12)


async def test_thinned_points_keep_four_readings_a_bucket_however_fast_the_sensor_reports(storage: Storage) -> None:
    t = await make_tenant(storage)
    gauge = t.common_sensor
    start, step = START + timedelta(hours=3), timedelta(minutes=1)
    end = start + 10 * step
    # Ten readings a second, 50 ms off the buckets' bounds; 101 values in a scrambled order, so ties are common.
    moments = [start - timedelta(seconds=30) + timedelta(milliseconds=50 + 100 * i) for i in range(10 * 660)]
    readings = [(ts, float(i * 37 % 101)) for i, ts in enumerate(moments)]
    await storage.readings.ingest([Ingested(IoTReading.measured(gauge, ts, value)) for ts, value in readings])
    org = t.organization.id
    thinned = (await storage.source.thinned_points(org, [gauge.id, t.unit_sensor.id], start, end, step))[gauge.id]
    raw = (await storage.source.points(org, [gauge.id], start, end))[gauge.id]
    assert len(raw) == 6002  # ten minutes of readings and the two edge ones
    assert len(thinned) <= 4 * 10 + 2
    # The reference: per bucket the first, the last, the lowest (earliest on a tie), the highest (latest on a tie).
    kept = {raw[0], raw[-1]}  # the edge readings
    for b in range(10):
        bucket = [p for p in raw[1:-1] if start + b * step <= p[0] < start + (b + 1) * step]
        low = min(bucket, key=lambda p: (p[1], p[0]))
        high = max(bucket, key=lambda p: (p[1], p[0]))
        kept |= {bucket[0], bucket[-1], low, high}
    assert thinned == sorted(kept)
    # Another organization, or a sensor without readings: empty lists, never another tenant's readings.
    other = await make_tenant(storage, "Other")
    assert await storage.source.thinned_points(other.organization.id, [gauge.id], start, end, step) == {gauge.id: []}
    assert (await storage.source.thinned_points(org, [t.unit_sensor.id], start, end, step))[t.unit_sensor.id] == []
    with pytest.raises(ValueError, match="resolution must be positive"):
        await storage.source.thinned_points(org, [gauge.id], start, end, timedelta(0))
