"""Ingestion through a real Mosquitto: publish like a device, then find the result in storage."""

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from koprogo_iot.domain.alerts import AlertSeverity, AlertStatus
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.ingest.mqtt_worker import MqttIngestWorker
from koprogo_iot.ingest.pipeline import Pipeline
from koprogo_iot.storage.sql_store import SqlStore
from tests.conftest import Mosquitto, Tenant, eventually, make_tenant, mosquitto_pub

pytestmark = pytest.mark.mosquitto


def native(value: float, seconds_ago: float = 0.0, **extra: object) -> str:
    timestamp = (utcnow() - timedelta(seconds=seconds_ago)).isoformat()
    return json.dumps({"timestamp": timestamp, "value": value} | extra)


@contextlib.asynccontextmanager
async def running(worker: MqttIngestWorker) -> AsyncIterator[MqttIngestWorker]:
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(worker.subscribed.wait(), timeout=10)
    try:
        yield worker
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def new_worker(store: SqlStore, mosquitto: Mosquitto, client_id: str | None = None) -> MqttIngestWorker:
    return MqttIngestWorker(Pipeline(store), mosquitto.endpoint, client_id or f"test-{uuid.uuid4().hex[:10]}")


@pytest.fixture
async def tenant(store: SqlStore) -> Tenant:
    return await make_tenant(store)


async def test_published_reading_is_stored_with_its_metadata(
    store: SqlStore, mosquitto: Mosquitto, tenant: Tenant
) -> None:
    org, sensor = tenant.organization.id, tenant.unit_sensor
    async with running(new_worker(store, mosquitto)):
        await mosquitto_pub(mosquitto.endpoint, sensor.mqtt_topic, native(12.5, battery_level=80, signal_strength=-70))
        [reading] = await eventually(lambda: store.list_readings(org, sensor.id))
    assert reading.value == 12.5 and reading.battery_level == 80 and reading.signal_strength == -70
    assert reading.quality == "good"
    refreshed = await store.get_sensor(org, sensor.id)
    assert refreshed.last_value == 12.5 and refreshed.last_battery_level == 80


async def test_value_above_maximum_raises_one_critical_alert_and_clears(
    store: SqlStore, mosquitto: Mosquitto, tenant: Tenant
) -> None:
    org, flow = tenant.organization.id, tenant.common_sensor  # max 50 L/h
    async with running(new_worker(store, mosquitto)):
        for i in range(3):
            await mosquitto_pub(mosquitto.endpoint, flow.mqtt_topic, native(75.0, seconds_ago=30 - i))
        [alert] = await eventually(lambda: _alerts_with(store, org, occurrences=3))
        assert alert.severity is AlertSeverity.CRITICAL and alert.status is AlertStatus.ACTIVE
        assert not alert.acknowledged and alert.reading_value == 75.0 and alert.threshold_value == 50.0
        await mosquitto_pub(mosquitto.endpoint, flow.mqtt_topic, native(10.0, seconds_ago=1))
        [cleared] = await eventually(lambda: _alerts_with(store, org, status=AlertStatus.CLEARED))
    assert cleared.id == alert.id


async def _alerts_with(store: SqlStore, org: uuid.UUID, **expected: object) -> list[object]:
    alerts = await store.list_alerts(org)
    return [a for a in alerts if all(getattr(a, k) == v for k, v in expected.items())]


async def test_bad_messages_are_rejected_and_ingestion_goes_on(
    store: SqlStore, mosquitto: Mosquitto, tenant: Tenant
) -> None:
    other = await make_tenant(store, "Other")
    sensor = tenant.unit_sensor
    async with running(new_worker(store, mosquitto)) as worker:
        bad = [
            (f"koprogo/{tenant.organization.id}/{tenant.building.id}/unregistered/readings", native(1.0)),
            # Org A's sensor published under org B's id: never stored for either.
            (f"koprogo/{other.organization.id}/{other.building.id}/{sensor.sensor_id}/readings", native(1.0)),
            (sensor.mqtt_topic, "{this is not json"),
        ]
        for topic, body in bad:
            await mosquitto_pub(mosquitto.endpoint, topic, body)
        await mosquitto_pub(mosquitto.endpoint, sensor.mqtt_topic, native(7.0))
        await eventually(lambda: store.list_readings(tenant.organization.id, sensor.id))
        await eventually(lambda: _true(sum(worker.pipeline.stats.rejected.values()) == 3))
        assert worker.pipeline.stats.rejected == {"unknown_sensor": 2, "invalid_json": 1}
    assert [r.value for r in await store.list_readings(tenant.organization.id, sensor.id)] == [7.0]
    for s in (other.unit_sensor, other.common_sensor, other.other_unit_sensor):
        assert await store.count_readings(other.organization.id, s.id) == 0


async def _true(value: bool) -> bool:
    return value


async def test_redelivered_messages_are_stored_once(store: SqlStore, mosquitto: Mosquitto, tenant: Tenant) -> None:
    org, sensor = tenant.organization.id, tenant.unit_sensor
    body = native(3.25, seconds_ago=5)
    async with running(new_worker(store, mosquitto)) as worker:
        for _ in range(3):
            await mosquitto_pub(mosquitto.endpoint, sensor.mqtt_topic, body)
        await eventually(lambda: _true(worker.pipeline.stats.received == 3))
    assert await store.count_readings(org, sensor.id) == 1
    assert worker.pipeline.stats.duplicates == 2


async def test_readings_published_while_the_worker_is_down_are_ingested_when_it_returns(
    store: SqlStore, mosquitto: Mosquitto, tenant: Tenant
) -> None:
    org, sensor = tenant.organization.id, tenant.unit_sensor
    client_id = f"test-{uuid.uuid4().hex[:10]}"
    async with running(new_worker(store, mosquitto, client_id)):
        pass  # the broker now keeps a persistent session for this client id
    lines = "\n".join(native(float(i), seconds_ago=100 - i) for i in range(50))
    proc = await asyncio.create_subprocess_exec(
        "mosquitto_pub", "-h", "127.0.0.1", "-p", str(mosquitto.endpoint.port), "-q", "1", "-t", sensor.mqtt_topic,
        "-l", stdin=asyncio.subprocess.PIPE,
    )  # fmt: skip
    await proc.communicate(lines.encode())
    assert proc.returncode == 0
    async with running(new_worker(store, mosquitto, client_id)):
        await eventually(lambda: _true_async(store, org, sensor.id, 50))
    assert await store.count_readings(org, sensor.id) == 50


async def _true_async(store: SqlStore, org: uuid.UUID, sensor_id: uuid.UUID, count: int) -> bool:
    return await store.count_readings(org, sensor_id) == count
