"""Monthly partitions of iot_readings on PostgreSQL; no-ops on SQLite."""

from datetime import UTC, datetime

import pytest

from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.domain.sensors import IoTSensor
from koprogo_iot.storage.ports import Ingested, Storage
from koprogo_iot.storage.sql.database import Database
from koprogo_iot.storage.sql.partitions import drop_partitions_before, ensure_partitions
from tests.conftest import make_tenant

MARCH, APRIL, MAY, JULY = (datetime(2026, month, 1, tzinfo=UTC) for month in (3, 4, 5, 7))


async def ingest(storage: Storage, sensor: IoTSensor, *times: datetime) -> None:
    await storage.readings.ingest([Ingested(IoTReading.measured(sensor, ts, 1.0)) for ts in times])


async def partitions_of(db: Database, sensor: IoTSensor) -> dict[datetime, str]:
    rows = await db.fetch(
        "SELECT ts, tableoid::regclass::text AS part FROM iot_readings WHERE sensor_id = $1", sensor.id
    )
    return {row["ts"]: row["part"] for row in rows}


async def test_sqlite_has_no_partitions(storage: Storage, db: Database) -> None:
    if db.dialect != "sqlite":
        pytest.skip("the PostgreSQL behaviour is tested below")
    assert await ensure_partitions(db, MARCH, MAY) == []
    assert await drop_partitions_before(db, MAY) == []


async def test_partitions_are_created_once_filled_moved_and_dropped(storage: Storage, db: Database) -> None:
    if db.dialect != "postgres":
        pytest.skip("SQLite has no partitions")
    t = await make_tenant(storage)
    sensor = t.unit_sensor
    july_reading, april_reading = datetime(2026, 7, 15, tzinfo=UTC), datetime(2026, 4, 15, tzinfo=UTC)
    await ingest(storage, sensor, july_reading)  # no partition for July yet: the default one takes it
    assert await ensure_partitions(db, MARCH, MAY) == ["iot_readings_p202603", "iot_readings_p202604"]
    assert await ensure_partitions(db, MARCH, MAY) == []
    await ingest(storage, sensor, april_reading, datetime(2026, 3, 31, 23, 59, tzinfo=UTC))
    assert await partitions_of(db, sensor) == {
        july_reading: "iot_readings_default",
        april_reading: "iot_readings_p202604",
        datetime(2026, 3, 31, 23, 59, tzinfo=UTC): "iot_readings_p202603",
    }

    assert await ensure_partitions(db, JULY, datetime(2026, 7, 2, tzinfo=UTC)) == ["iot_readings_p202607"]
    assert (await partitions_of(db, sensor))[july_reading] == "iot_readings_p202607"
    await ingest(storage, sensor, july_reading)  # a redelivery: the key still holds across the move
    assert await storage.readings.count(t.organization.id, sensor.id) == 3

    old = datetime(2026, 1, 10, tzinfo=UTC)
    await ingest(storage, sensor, old)  # in the default partition, older than the cutoff
    assert await drop_partitions_before(db, MAY) == ["iot_readings_p202603", "iot_readings_p202604"]
    # Whole partitions only: the default partition's old rows are the retention's batched deletes (test_retention).
    assert sorted(await partitions_of(db, sensor)) == [old, july_reading]
