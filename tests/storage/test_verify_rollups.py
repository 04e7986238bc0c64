"""`RollupMaintenance.verify` (and `koprogo-iot verify-rollups`): the stored rollups recomputed from the raw
readings, every difference reported, on SQLite and PostgreSQL."""

from datetime import UTC, datetime

from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.domain.rollups import Rollups
from koprogo_iot.storage.ports import Ingested, Storage
from koprogo_iot.storage.sql.database import Database
from tests.conftest import Tenant, make_tenant


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# A jitter recovered in a later hour, across the end of February (a local month's edge at 23:00 UTC).
COUNTER = [
    ("2026-02-28T21:00", 100.0),
    ("2026-02-28T21:20", 101.0),
    ("2026-02-28T21:40", 100.5),
    ("2026-02-28T22:10", 100.8),
    ("2026-02-28T23:40", 101.5),
    ("2026-03-01T01:10", 102.0),
]


async def stored(storage: Storage, t: Tenant) -> None:
    readings = [IoTReading.measured(t.unit_sensor, at(ts), value) for ts, value in COUNTER]
    readings += [IoTReading.measured(t.common_sensor, at(ts), value) for ts, value in COUNTER[:3]]
    await storage.readings.ingest([Ingested(r) for r in readings])


async def test_rollups_kept_by_the_refresh_verify_clean_and_a_damaged_row_is_reported(
    storage: Storage, db: Database
) -> None:
    t = await make_tenant(storage)
    await stored(storage, t)
    seen: list[tuple[int, int]] = []
    clean = await storage.rollups.verify(t.organization.id, on_sensor=lambda done, total: seen.append((done, total)))
    assert clean.differences == []
    assert (clean.sensors, clean.readings) == (3, 9)
    assert clean.rows == 4 + 2 + 2 + 1 + 1 + 1  # the counter's hours, days, months; the gauge's
    assert seen == [(1, 3), (2, 3), (3, 3)]

    hour = at("2026-02-28T22:00")
    await db.execute(
        "UPDATE iot_rollups_hourly SET increase = increase + 0.5 WHERE sensor_id = $1 AND bucket = $2",
        t.unit_sensor.id,
        hour,
    )
    await db.execute("DELETE FROM iot_rollups_monthly WHERE sensor_id = $1", t.common_sensor.id)
    damaged = await storage.rollups.verify(t.organization.id)
    found = [(sensor_id, d.table, d.bucket, d.field) for sensor_id, d in damaged.differences]
    assert sorted(found, key=str) == sorted(
        [
            (t.common_sensor.id, Rollups.MONTHLY, at("2026-01-31T23:00"), "row"),
            (t.unit_sensor.id, Rollups.HOURLY, hour, "increase"),
        ],
        key=str,
    )
    [(_, increase)] = [d for d in damaged.differences if d[1].field == "increase"]
    assert increase.stored == increase.expected + 0.5

    assert await storage.rollups.rebuild(t.organization.id, [t.unit_sensor.id, t.common_sensor.id]) == 4 + 1
    assert (await storage.rollups.verify(t.organization.id)).differences == []


async def test_a_period_is_widened_to_whole_local_months_and_starts_from_the_stored_state(storage: Storage) -> None:
    t = await make_tenant(storage)
    await stored(storage, t)
    march = await storage.rollups.verify(
        t.organization.id, datetime.fromisoformat("2026-03-10T12:00:00+01:00"), at("2026-03-20T00:00")
    )
    assert (march.start, march.end) == (at("2026-02-28T23:00"), at("2026-03-31T22:00"))
    # March's one reading, checked from the baseline February's last hourly row left (101, not 101.5's jitter).
    assert (march.readings, march.differences) == (2, [])


async def test_an_installation_upgraded_to_0010_recomputes_its_rollups(storage: Storage, db: Database) -> None:
    """Rows computed before 0010 knew nothing of the counter's state: the migration drops them and marks their hours
    stale, and the refresh computes them again. (The state before 0010 is made by undoing 0010 by hand.)"""
    t = await make_tenant(storage)
    await stored(storage, t)
    assert (await storage.rollups.verify(t.organization.id)).differences == []
    expected = [await db.fetch(f"SELECT * FROM {table} ORDER BY sensor_id, bucket") for table in TABLES]
    for table in TABLES:
        for column in ("baseline_in", "entry", "baseline", "entry_kind", "longest_step"):
            await db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    await db.execute("ALTER TABLE iot_sensors DROP COLUMN rollover")
    await db.execute("DELETE FROM schema_migrations WHERE version = 10")

    assert await storage.maintenance.migrate() == ["0010_metering_state"]
    assert [await db.fetch(f"SELECT * FROM {table}") for table in TABLES] == [[], [], []]
    stale = await db.fetch("SELECT sensor_id, hour FROM iot_rollup_dirty")
    assert len(stale) == 4 + 1  # the counter's four hours, the gauge's one
    assert await storage.rollups.refresh() == 5
    assert [await db.fetch(f"SELECT * FROM {table} ORDER BY sensor_id, bucket") for table in TABLES] == expected


TABLES = ("iot_rollups_hourly", "iot_rollups_daily", "iot_rollups_monthly")
