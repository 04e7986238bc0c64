"""Monthly partitions of iot_readings on PostgreSQL; no-ops on SQLite."""

from datetime import UTC, datetime

import pytest

from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.domain.sensors import IoTSensor
from koprogo_iot.storage.partitions import drop_partitions_before, ensure_partitions, timescale_available
from koprogo_iot.storage.ports import Ingested
from koprogo_iot.storage.sql_store import SqlStore
from tests.conftest import make_tenant

MARCH, APRIL, MAY, JULY = (datetime(2026, month, 1, tzinfo=UTC) for month in (3, 4, 5, 7))


async def ingest(store: SqlStore, sensor: IoTSensor, *times: datetime) -> None:
    await store.ingest([Ingested(IoTReading.measured(sensor, ts, 1.0)) for ts in times])


async def partitions_of(store: SqlStore, sensor: IoTSensor) -> dict[datetime, str]:
    rows = await store.db.fetch(
        "SELECT ts, tableoid::regclass::text AS part FROM iot_readings WHERE sensor_id = $1", sensor.id
    )
    return {row["ts"]: row["part"] for row in rows}


async def test_sqlite_has_no_partitions(store: SqlStore) -> None:
    if store.db.dialect != "sqlite":
        pytest.skip("the PostgreSQL behaviour is tested below")
    assert await ensure_partitions(store.db, MARCH, MAY) == []
    assert await drop_partitions_before(store.db, MAY) == []
    assert not await timescale_available(store.db)


async def test_partitions_are_created_once_filled_moved_and_dropped(store: SqlStore) -> None:
    if store.db.dialect != "postgres":
        pytest.skip("SQLite has no partitions")
    t = await make_tenant(store)
    sensor = t.unit_sensor
    july_reading, april_reading = datetime(2026, 7, 15, tzinfo=UTC), datetime(2026, 4, 15, tzinfo=UTC)
    await ingest(store, sensor, july_reading)  # no partition for July yet: the default one takes it
    assert await ensure_partitions(store.db, MARCH, MAY) == ["iot_readings_p202603", "iot_readings_p202604"]
    assert await ensure_partitions(store.db, MARCH, MAY) == []
    await ingest(store, sensor, april_reading, datetime(2026, 3, 31, 23, 59, tzinfo=UTC))
    assert await partitions_of(store, sensor) == {
        july_reading: "iot_readings_default",
        april_reading: "iot_readings_p202604",
        datetime(2026, 3, 31, 23, 59, tzinfo=UTC): "iot_readings_p202603",
    }

    assert await ensure_partitions(store.db, JULY, datetime(2026, 7, 2, tzinfo=UTC)) == ["iot_readings_p202607"]
    assert (await partitions_of(store, sensor))[july_reading] == "iot_readings_p202607"
    await ingest(store, sensor, july_reading)  # a redelivery: the key still holds across the move
    assert await store.count_readings(t.organization.id, sensor.id) == 3

    old = datetime(2026, 1, 10, tzinfo=UTC)
    await ingest(store, sensor, old)  # in the default partition, older than the cutoff
    assert await drop_partitions_before(store.db, MAY) == ["iot_readings_p202603", "iot_readings_p202604"]
    assert list(await partitions_of(store, sensor)) == [july_reading]
    assert not await timescale_available(store.db)  # this machine has none: the hypertable path is not tested
