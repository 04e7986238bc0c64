"""Rollups (`RollupMaintenance`): hourly, daily and monthly rows on SQLite and PostgreSQL, against values computed
by hand."""

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import pytest

from koprogo_iot.domain.consumption import consumption
from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.domain.rollups import Rollup, Rollups, boundary_step
from koprogo_iot.domain.sensors import IoTSensor
from koprogo_iot.storage.ports import Ingested, Storage
from koprogo_iot.storage.sql import rollups as rollups_module
from koprogo_iot.storage.sql.database import Database
from koprogo_iot.storage.sql.rollups import DAILY, HOURLY, MONTHLY
from koprogo_iot.storage.sql.rows import Table
from tests.conftest import make_tenant


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def ingest(storage: Storage, sensor: IoTSensor, readings: list[tuple[str, float]]) -> None:
    await storage.readings.ingest([Ingested(IoTReading.measured(sensor, at(ts), value)) for ts, value in readings])


async def rollups(db: Database, table: Table[Rollup], sensor: IoTSensor) -> list[Rollup]:
    rows = await db.fetch(table.select("sensor_id = $1") + " ORDER BY bucket", sensor.id)
    return [table.decode(row) for row in rows]


def interpolated(rows: list[Rollup], start: datetime, end: datetime) -> float:
    """The consumption over [start, end) by the combination rule the rollups module documents."""
    total = sum(r.increase or 0.0 for r in rows if start <= r.bucket < end)
    for a, b in itertools.pairwise(rows):
        overlap = min(b.first_ts, end) - max(a.last_ts, start)
        if overlap > timedelta(0):
            total += boundary_step(a, b).increase * (overlap / (b.first_ts - a.last_ts))
    return total


# A counter with a jitter and a reset in one hour, then a second hour: figures worked out by hand.
COUNTER = [
    ("2026-03-10T10:00", 100.0),
    ("2026-03-10T10:15", 100.5),  # +0.5
    ("2026-03-10T10:30", 100.2),  # jitter (0.3 under 1 % of 100.5): 0, the baseline stays 100.5
    ("2026-03-10T10:45", 101.0),  # +0.5 over the baseline
    ("2026-03-10T10:50", 0.4),  # reset: +0.4
    ("2026-03-10T10:55", 0.9),  # +0.5
    ("2026-03-10T11:10", 1.5),  # the step from 10:55 (+0.6) is in neither hour
    ("2026-03-10T11:40", 2.5),  # +1.0
]
GAUGE = [("2026-03-10T10:05", 10.0), ("2026-03-10T10:20", 30.0), ("2026-03-10T10:50", 20.0)]


async def test_hourly_and_daily_rows_match_hand_computed_values(storage: Storage, db: Database) -> None:
    t = await make_tenant(storage)
    await ingest(storage, t.unit_sensor, COUNTER)
    await ingest(storage, t.common_sensor, GAUGE)
    assert await storage.rollups.refresh() == 3  # (counter, 10h), (counter, 11h), (gauge, 10h)

    first, second = await rollups(db, HOURLY, t.unit_sensor)
    assert first.bucket == at("2026-03-10T10:00") and second.bucket == at("2026-03-10T11:00")
    assert (first.count, first.sum, first.min, first.max) == (6, pytest.approx(403.0), 0.4, 101.0)
    assert (first.first, first.last) == ((at("2026-03-10T10:00"), 100.0), (at("2026-03-10T10:55"), 0.9))
    assert (first.increase, first.resets, first.rollovers) == (pytest.approx(1.9), 1, 0)
    assert (second.count, second.increase, second.resets) == (2, pytest.approx(1.0), 0)
    assert first.organization_id == t.organization.id and first.unit_id == t.units[0].id

    [day] = await rollups(db, DAILY, t.unit_sensor)
    assert day.bucket == at("2026-03-09T23:00")  # local midnight in Brussels (UTC+1 in March before DST)
    assert (day.count, day.min, day.max) == (8, 0.4, 101.0)
    assert (day.increase, day.resets) == (pytest.approx(1.9 + 1.0 + 0.6), 1)
    points = [(at(ts), value) for ts, value in COUNTER]
    assert day.increase == pytest.approx(
        consumption(points, at("2026-03-10T10:00"), at("2026-03-10T11:41")).consumption
    )

    [gauge] = await rollups(db, HOURLY, t.common_sensor)
    assert (gauge.count, gauge.sum, gauge.min, gauge.max, gauge.last_value) == (3, 60.0, 10.0, 30.0, 20.0)
    assert (gauge.increase, gauge.resets) == (None, 0)
    [gauge_day] = await rollups(db, DAILY, t.common_sensor)
    assert (gauge_day.count, gauge_day.increase) == (3, None)


async def test_a_23_hour_dst_day_groups_by_brussels_midnights(storage: Storage, db: Database) -> None:
    t = await make_tenant(storage)
    readings = [
        ("2026-03-28T22:30", 10.0),  # 23:30 on the 28th in Brussels
        ("2026-03-28T23:30", 11.0),  # 00:30 on the 29th (CET)
        ("2026-03-29T12:00", 15.0),
        ("2026-03-29T21:30", 20.0),  # 23:30 on the 29th (CEST)
        ("2026-03-29T22:30", 21.0),  # 00:30 on the 30th
    ]
    await ingest(storage, t.other_unit_sensor, readings)
    await storage.rollups.refresh()

    days = await rollups(db, DAILY, t.other_unit_sensor)
    assert [d.bucket for d in days] == [at("2026-03-27T23:00"), at("2026-03-28T23:00"), at("2026-03-29T22:00")]
    dst_day = days[1]
    assert (dst_day.count, dst_day.first_value, dst_day.last_value, dst_day.increase) == (3, 11.0, 20.0, 9.0)
    # Interpolated over the 23-hour day: 9 inside, plus half of each step across its midnights.
    start, end = at("2026-03-28T23:00"), at("2026-03-29T22:00")
    points = [(at(ts), value) for ts, value in readings]
    assert interpolated(days, start, end) == pytest.approx(10.0)
    assert interpolated(days, start, end) == pytest.approx(consumption(points, start, end).consumption)
    hours = await rollups(db, HOURLY, t.other_unit_sensor)
    assert interpolated(hours, start, end) == pytest.approx(10.0)


async def test_refreshing_twice_changes_nothing_and_matches_a_rebuild(storage: Storage, db: Database) -> None:
    t = await make_tenant(storage)
    await ingest(storage, t.unit_sensor, COUNTER)
    await storage.rollups.refresh()
    before = [await rollups(db, table, t.unit_sensor) for table in (HOURLY, DAILY, MONTHLY)]
    assert await storage.rollups.refresh() == 0
    await storage.readings.ingest(
        [Ingested(IoTReading.measured(t.unit_sensor, at(COUNTER[0][0]), 1.0))]
    )  # a redelivery
    assert await storage.rollups.refresh() == 0
    assert await storage.rollups.rebuild(t.organization.id) == 2
    after = [await rollups(db, table, t.unit_sensor) for table in (HOURLY, DAILY, MONTHLY)]
    assert after == before


async def test_late_readings_redirty_and_fix_their_buckets(storage: Storage, db: Database) -> None:
    t = await make_tenant(storage)
    await ingest(storage, t.unit_sensor, COUNTER)
    await storage.rollups.refresh()
    # Out of order: an earlier hour, and a reading inside the already rolled-up second hour.
    await ingest(storage, t.unit_sensor, [("2026-03-10T09:30", 99.0), ("2026-03-10T11:20", 2.0)])
    assert await storage.rollups.refresh() == 2

    early, first, second = await rollups(db, HOURLY, t.unit_sensor)
    assert (early.bucket, early.count, early.increase) == (at("2026-03-10T09:00"), 1, 0.0)
    assert (first.count, first.increase) == (6, pytest.approx(1.9))
    assert (second.count, second.increase) == (3, pytest.approx(1.0))  # 1.5 -> 2.0 -> 2.5
    [day] = await rollups(db, DAILY, t.unit_sensor)
    assert (day.count, day.first_value) == (10, 99.0)
    assert day.increase == pytest.approx(1.0 + 1.9 + 0.6 + 1.0)  # 99 -> 100 joins the day


async def test_deleted_readings_remove_their_rows(storage: Storage, db: Database) -> None:
    t = await make_tenant(storage)
    await ingest(storage, t.unit_sensor, COUNTER)
    await storage.rollups.refresh()
    await db.execute(
        "DELETE FROM iot_readings WHERE sensor_id = $1 AND ts >= $2", t.unit_sensor.id, at("2026-03-10T11:00")
    )
    await db.execute(
        "INSERT INTO iot_rollup_dirty (sensor_id, hour) VALUES ($1, $2)", t.unit_sensor.id, at("2026-03-10T11:00")
    )
    assert await storage.rollups.refresh() == 1
    assert [r.bucket for r in await rollups(db, HOURLY, t.unit_sensor)] == [at("2026-03-10T10:00")]
    [day] = await rollups(db, DAILY, t.unit_sensor)
    assert (day.count, day.increase) == (6, pytest.approx(1.9))


async def test_concurrent_refreshers_claim_each_mark_once(storage: Storage, db: Database) -> None:
    if db.dialect != "postgres":
        pytest.skip("SQLite runs one transaction at a time")
    t = await make_tenant(storage)
    start = at("2026-03-10T00:00")
    for sensor in (t.unit_sensor, t.other_unit_sensor):
        await storage.readings.ingest(
            [Ingested(IoTReading.measured(sensor, start + timedelta(minutes=20 * i), float(i))) for i in range(150)]
        )
    marks = 2 * 50  # 150 readings every 20 minutes: 50 hours per sensor

    async def drain() -> int:
        claimed = 0
        while done := await storage.rollups.refresh(limit=7):
            claimed += done
        return claimed

    counts = await asyncio.gather(drain(), drain(), drain())
    assert sum(counts) == marks
    incremental = [await rollups(db, table, t.unit_sensor) for table in (HOURLY, DAILY)]
    await storage.rollups.rebuild()
    assert [await rollups(db, table, t.unit_sensor) for table in (HOURLY, DAILY)] == incremental
    assert sum(r.increase or 0 for r in incremental[1]) + sum(
        boundary_step(a, b).increase for a, b in itertools.pairwise(incremental[1])
    ) == pytest.approx(149.0)


async def test_ingestion_is_not_held_while_a_refresh_recomputes(
    storage: Storage, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refresher claimed its marks in the transaction that recomputed them: every ingest batch that marked the
    same hours waited for its commit (seconds at 10,000 readings/s). Now a reading of an hour being recomputed is
    stored at once, marks its hour again, and the next refresh takes it in."""
    if db.dialect != "postgres":
        pytest.skip("SQLite runs one transaction at a time")
    t = await make_tenant(storage)
    await ingest(storage, t.unit_sensor, [("2026-03-10T10:00", 100.0), ("2026-03-10T10:20", 101.0)])
    recomputing, release = asyncio.Event(), asyncio.Event()
    original = rollups_module._recompute

    async def slow(*args: object) -> None:
        recomputing.set()
        await release.wait()  # the recomputing transaction stays open
        await original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(rollups_module, "_recompute", slow)
    refreshing = asyncio.create_task(storage.rollups.refresh())
    await asyncio.wait_for(recomputing.wait(), 10)
    try:
        await asyncio.wait_for(ingest(storage, t.unit_sensor, [("2026-03-10T10:40", 102.0)]), 5)
    finally:
        release.set()
        assert await refreshing == 1
    monkeypatch.setattr(rollups_module, "_recompute", original)
    assert await storage.rollups.refresh() == 1  # the hour, marked again by the reading stored meanwhile
    [hour] = await rollups(db, HOURLY, t.unit_sensor)
    assert hour.count == 3


async def test_a_failed_refresh_puts_its_marks_back(
    storage: Storage, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = await make_tenant(storage)
    await ingest(storage, t.unit_sensor, [("2026-03-10T10:00", 100.0), ("2026-03-10T11:20", 101.0)])

    async def broken(*args: object) -> None:
        raise RuntimeError("a bug in the recomputation")

    monkeypatch.setattr(rollups_module, "_recompute", broken)
    with pytest.raises(RuntimeError):
        await storage.rollups.refresh()
    monkeypatch.undo()
    assert await storage.rollups.refresh() == 2  # both hours are still stale, and recomputed now
    assert [r.bucket for r in await rollups(db, HOURLY, t.unit_sensor)] == [
        at("2026-03-10T10:00"),
        at("2026-03-10T11:00"),
    ]


async def test_readings_in_time_order_are_folded_without_reading_the_hour_again(
    storage: Storage, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13, incremental refresh: a refresh re-read whole hours of raw readings (36 M rows a minute at 10,000
    readings/s near the end of an hour). New readings after the latest rollup are now folded into the hour, day and
    month; a reading already counted is not read again: changing one behind the store's back changes nothing."""
    monkeypatch.setattr(rollups_module, "_SLICE", 0.0)  # yield to the event loop between every two sensors
    t = await make_tenant(storage)
    await ingest(storage, t.unit_sensor, COUNTER[:4])
    await ingest(storage, t.other_unit_sensor, GAUGE)
    assert await storage.rollups.refresh() == 2
    await db.execute(
        "UPDATE iot_readings SET value = 50.0 WHERE sensor_id = $1 AND ts = $2", t.unit_sensor.id, at(COUNTER[0][0])
    )
    await ingest(storage, t.unit_sensor, COUNTER[4:])  # the rest of 10:00 and the next hour
    assert await storage.rollups.refresh() == 2
    hours = await rollups(db, HOURLY, t.unit_sensor)
    assert [(h.count, h.min, h.increase) for h in hours] == [
        (6, 0.4, pytest.approx(1.9)),  # the 100.0 it counted, not the 50.0 it would have read
        (2, 1.5, pytest.approx(1.0)),
    ]
    [day], [month] = await rollups(db, DAILY, t.unit_sensor), await rollups(db, MONTHLY, t.unit_sensor)
    assert (day.count, day.min, day.increase, day.last_ts) == (8, 0.4, pytest.approx(3.5), at("2026-03-10T11:40"))
    assert (month.count, month.increase, month.baseline) == (8, pytest.approx(3.5), 2.5)
    # A late reading cannot be folded: its hour is read again, with what it now holds.
    await ingest(storage, t.unit_sensor, [("2026-03-10T10:10", 100.3)])
    assert await storage.rollups.refresh() == 1
    assert (await rollups(db, HOURLY, t.unit_sensor))[0].min == 0.4
    assert (await rollups(db, HOURLY, t.unit_sensor))[0].count == 7
    assert (await storage.rollups.verify(t.organization.id)).differences == []


async def test_a_reading_stored_during_a_refresh_is_counted_once(
    storage: Storage, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reading committed after the refresh claimed its marks is folded in by that refresh, and its own mark (made
    after the claim) looks late at the next one: the count of the hour's readings shows it is in already. A late
    reading in the same situation is not: the hour is recomputed."""
    if db.dialect != "postgres":
        pytest.skip("SQLite runs one transaction at a time")
    t = await make_tenant(storage)
    await ingest(storage, t.unit_sensor, [("2026-03-10T10:00", 100.0)])
    await storage.rollups.refresh()
    await ingest(storage, t.unit_sensor, [("2026-03-10T10:10", 101.0)])
    original = rollups_module._recompute

    async def meanwhile(*args: object) -> None:
        await ingest(storage, t.unit_sensor, [("2026-03-10T10:20", 103.0)])
        await original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(rollups_module, "_recompute", meanwhile)
    assert await storage.rollups.refresh() == 1
    monkeypatch.undo()
    assert await storage.rollups.refresh() == 1  # the mark of 10:20
    [hour] = await rollups(db, HOURLY, t.unit_sensor)
    assert (hour.count, hour.increase) == (3, 3.0)
    await ingest(storage, t.unit_sensor, [("2026-03-10T10:15", 102.0), ("2026-03-10T10:30", 104.0)])
    assert await storage.rollups.refresh() == 1
    [hour] = await rollups(db, HOURLY, t.unit_sensor)
    assert (hour.count, hour.increase) == (5, 4.0)
    assert (await storage.rollups.verify(t.organization.id)).differences == []


async def test_a_query_catches_up_the_rollups_of_its_own_sensors_only(storage: Storage, db: Database) -> None:
    """A dashboard asking for one sensor's series does not first fold the whole fleet's new readings (issue 15: the
    API's loop and the live path paid for it at 10,000 readings/s); the sensor it asks for is current."""
    t = await make_tenant(storage)
    await ingest(storage, t.unit_sensor, COUNTER)
    await ingest(storage, t.other_unit_sensor, GAUGE)
    start, end = at("2026-03-10T10:00"), at("2026-03-10T12:00")
    found = await storage.source.counter_rows(t.organization.id, [t.unit_sensor.id], start, end, Rollups.HOURLY)
    assert [row.readings for row in found[t.unit_sensor.id]] == [6, 2]
    left = await db.fetch("SELECT DISTINCT sensor_id FROM iot_rollup_dirty")
    assert [str(row["sensor_id"]) for row in left] == [str(t.other_unit_sensor.id)]
    assert await rollups(db, HOURLY, t.other_unit_sensor) == []
    assert await storage.rollups.refresh() == 1  # the background refresher's share, as before
