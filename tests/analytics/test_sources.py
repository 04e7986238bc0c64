"""Rollup-served consumption equals raw-served consumption on hour and local-day grids."""

from datetime import UTC, datetime, timedelta

import pytest

from koprogo_iot.analytics.sources import AnalyticsSource, RawReadings, Rollups, index_results
from koprogo_iot.domain.consumption import calendar_buckets, consumption_by_bucket, fixed_buckets
from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.storage.ports import Ingested
from koprogo_iot.storage.sql_store import SqlStore
from tests.conftest import make_tenant

START = datetime(2026, 3, 28, 0, 0, tzinfo=UTC)  # spans the 2026-03-29 change to summer time in Brussels


async def test_rollups_give_the_raw_answer(store: SqlStore) -> None:
    t = await make_tenant(store)
    sensor = t.unit_sensor
    readings, index = [], 500.0
    for i in range(3 * 24 * 6):  # every 10 minutes for three days
        index = 2.0 if i == 200 else index + 0.01 * (1 + i % 7)  # a meter replacement (reset) on day two
        readings.append(Ingested(IoTReading.measured(sensor, START + timedelta(minutes=10 * i, seconds=17), index)))
    await store.ingest(readings)
    org, end = t.organization.id, START + timedelta(days=3)
    hours = fixed_buckets(START + timedelta(hours=5), end - timedelta(hours=7), timedelta(hours=1))
    # Rollups answer only grids on their bounds: local midnights (here 2026-03-28T23:00Z, then 22:00Z after DST).
    days = calendar_buckets(datetime(2026, 3, 28, 23, tzinfo=UTC), end, "day", "Europe/Brussels")
    rolled, raw = AnalyticsSource(store.db), RawReadings(store.db)
    for grid, rollup in ((hours, Rollups.HOURLY), (days, Rollups.DAILY)):
        span = (grid[0][0], grid[-1][1])
        via_rollups = (await rolled.points(org, [sensor.id], *span, rollup))[sensor.id]
        via_raw = (await raw.points(org, [sensor.id], *span))[sensor.id]
        assert len(via_rollups) < len(via_raw)
        expected = [r.consumption for _, r in consumption_by_bucket(via_raw, grid)]
        got = [r.consumption for _, r in consumption_by_bucket(via_rollups, grid)]
        assert got == pytest.approx(expected, abs=1e-9)
        # The one-pass difference of the virtual index gives the same figures, and the same completeness.
        fast = index_results(via_rollups, grid)
        assert [r.consumption for r in fast] == pytest.approx(expected, abs=1e-9)
        assert [r.complete for r in fast] == [r.complete for _, r in consumption_by_bucket(via_rollups, grid)]


def test_index_results_leave_uncovered_buckets_unknown() -> None:
    points = [(START + timedelta(hours=1), 10.0), (START + timedelta(hours=3), 14.0)]
    grid = [(START + timedelta(hours=h), START + timedelta(hours=h + 1)) for h in range(5)]
    got = index_results(points, grid)
    assert [r.consumption for r in got] == [None, 2.0, 2.0, None, None]
    assert [r.complete for r in got] == [False, True, True, False, False]
    assert index_results(points[:1], grid) == [got[0]] * 5
