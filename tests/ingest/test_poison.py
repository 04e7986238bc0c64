"""Poison batches: a message the database refuses for good costs that message only (dead-lettered with its reason),
never the batch, the worker, or another reading; contention is retried, not dead-lettered."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any, cast

import pytest

from koprogo_iot.devices.registry import decoders
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.dead_letters import DeadLetter
from koprogo_iot.domain.devices import DeviceSighting
from koprogo_iot.domain.errors import StorageContention, StorageFault, StorageUnavailable
from koprogo_iot.domain.sensors import DeviceFormat, IoTSensor
from koprogo_iot.ingest.mqtt_worker import MqttIngestWorker
from koprogo_iot.ingest.pipeline import IngestLimits, Message, Pipeline
from koprogo_iot.ingest.rejections import Reason
from koprogo_iot.storage.ports import Ingested, ReadingRepository, Storage
from tests.conftest import Mosquitto, Tenant, eventually, make_tenant, mosquitto_pub, running

LIMITS = IngestLimits(rate_per_sensor=10_000, burst_per_sensor=10_000)


def native(value: float, seconds_ago: float) -> bytes:
    timestamp = (utcnow() - timedelta(seconds=seconds_ago)).isoformat()
    return json.dumps({"timestamp": timestamp, "value": value}).encode()


def message(sensor: IoTSensor, value: float, seconds_ago: float) -> Message:
    return Message(sensor.mqtt_topic, native(value, seconds_ago), utcnow())


@pytest.fixture
async def tenant(storage: Storage) -> Tenant:
    return await make_tenant(storage)


async def test_a_sensor_deleted_while_cached_loses_only_its_own_readings(storage: Storage, tenant: Tenant) -> None:
    pipeline = Pipeline(storage, LIMITS)
    deleted, kept = tenant.unit_sensor, [tenant.common_sensor, tenant.other_unit_sensor]
    assert await pipeline.handle([message(deleted, 1, 100)]) == [None]  # now cached for 30 s
    await storage.sensors.delete(tenant.organization.id, deleted.id)
    batch = [message(s, i, 50 - i) for i in range(20) for s in [*kept, deleted]]  # its messages spread in the batch

    outcomes = await pipeline.handle(batch)

    assert outcomes == [Reason.STORAGE_REFUSED if m.topic == deleted.mqtt_topic else None for m in batch]
    for sensor in kept:
        assert await storage.readings.count(tenant.organization.id, sensor.id) == 20
    letters = await storage.dead_letters.recent(tenant.organization.id, Reason.STORAGE_REFUSED.value)
    assert letters and {letter.topic for letter in letters} == {deleted.mqtt_topic}
    assert letters[0].detail.startswith("Conflict: ")  # the foreign key to the deleted sensor
    # Forgotten by the directory: its next message is an unknown sensor at once, without failing a batch.
    assert await pipeline.handle([message(deleted, 99, 1)]) == [Reason.UNKNOWN_SENSOR]
    assert pipeline.stats.rejected[Reason.STORAGE_REFUSED.value] == 20


class Refusing:
    """The real readings store behind a database that refuses, for good, every call `refuses` picks."""

    def __init__(
        self,
        inner: ReadingRepository,
        refuses: Callable[[Sequence[Ingested], Sequence[DeadLetter], Sequence[DeviceSighting]], bool],
    ) -> None:
        self.inner, self.refuses, self.calls = inner, refuses, 0

    async def ingest(
        self, batch: Sequence[Ingested], rejected: Sequence[DeadLetter] = (), sightings: Sequence[DeviceSighting] = ()
    ) -> list[Ingested]:
        self.calls += 1
        if self.refuses(batch, rejected, sightings):
            raise RuntimeError("refused by the test's database")
        return await self.inner.ingest(batch, rejected, sightings)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def refusing(storage: Storage, refuses: Callable[..., bool]) -> tuple[Storage, Refusing]:
    readings = Refusing(storage.readings, refuses)
    return replace(storage, readings=cast(ReadingRepository, readings)), readings


async def test_the_one_refused_message_of_a_large_batch_is_found_in_few_attempts(
    storage: Storage, tenant: Tenant
) -> None:
    poison = tenant.unit_sensor.id
    wrapped, readings = refusing(storage, lambda batch, *_: any(i.reading.sensor_id == poison for i in batch))
    pipeline = Pipeline(wrapped, LIMITS)
    batch = [message(tenant.common_sensor, i, 600 - i) for i in range(255)]
    batch.insert(100, message(tenant.unit_sensor, 1, 5))

    outcomes = await pipeline.handle(batch)

    assert [i for i, o in enumerate(outcomes) if o is not None] == [100]
    assert await storage.readings.count(tenant.organization.id, tenant.common_sensor.id) == 255
    assert readings.calls <= 2 * 9 + 2  # bisection: about two calls per halving of 256, not one per message


async def test_a_refused_sighting_or_dead_letter_is_logged_and_stops_nothing(
    storage: Storage, tenant: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    poison = tenant.unit_sensor.id

    def refuses(batch: Sequence[Ingested], letters: Sequence[DeadLetter], sightings: Sequence[DeviceSighting]) -> bool:
        refused_letter = any(letter.reason == Reason.STORAGE_REFUSED.value for letter in letters)
        return bool(sightings) or refused_letter or any(i.reading.sensor_id == poison for i in batch)

    wrapped, _ = refusing(storage, refuses)
    pipeline = Pipeline(wrapped, LIMITS, decoders={DeviceFormat(k): v for k, v in decoders().items()})
    unknown_shelly = {
        "src": "shellyplus1pm-nobody",
        "method": "NotifyStatus",
        "params": {"ts": utcnow().timestamp(), "switch:0": {"aenergy": {"total": 1.5}}},
    }
    org, building = tenant.organization.id, tenant.building.id
    batch = [
        message(tenant.common_sensor, 1, 30),
        Message(f"koprogo/{org}/{building}/shelly/nobody/events/rpc", json.dumps(unknown_shelly).encode(), utcnow()),
        message(tenant.unit_sensor, 2, 20),
        message(tenant.other_unit_sensor, 3, 10),
    ]
    with caplog.at_level(logging.ERROR, "koprogo_iot.ingest.pipeline"):
        outcomes = await pipeline.handle(batch)
    assert outcomes == [None, Reason.UNKNOWN_SENSOR, Reason.STORAGE_REFUSED, None]
    for sensor in (tenant.common_sensor, tenant.other_unit_sensor):
        assert await storage.readings.count(org, sensor.id) == 1
    logged = caplog.text
    assert "could not record 1 device sightings" in logged and "could not dead-letter a message" in logged
    assert "Traceback" not in logged


async def test_a_batch_of_only_the_deleted_sensor_is_dead_lettered(storage: Storage, tenant: Tenant) -> None:
    pipeline = Pipeline(storage, LIMITS)
    deleted = tenant.unit_sensor
    assert await pipeline.handle([message(deleted, 1, 100)]) == [None]
    await storage.sensors.delete(tenant.organization.id, deleted.id)
    outcomes = await pipeline.handle([message(deleted, i, 50 - i) for i in range(3)])
    assert outcomes == [Reason.STORAGE_REFUSED] * 3


async def test_a_batch_refused_message_by_message_is_a_fault_retried_not_poison(
    storage: Storage, tenant: Tenant
) -> None:
    """Every message of several sensors refused on its own (a migration missing, a bug): dead-lettering them would
    lose them; the batch is retried as a whole instead, and stored once the fault is gone."""
    broken = True
    wrapped, _ = refusing(storage, lambda batch, *_: broken and bool(batch))
    pipeline = Pipeline(wrapped, LIMITS)
    batch = [message(s, i, 50 - i) for i in range(5) for s in (tenant.common_sensor, tenant.other_unit_sensor)]
    with pytest.raises(StorageFault, match="refused each of the 10 messages of a batch, of 2 sensors"):
        await pipeline.handle(batch)
    assert await storage.dead_letters.recent(tenant.organization.id) == []
    broken = False  # the migration is applied: the worker's next attempt stores everything
    assert await pipeline.handle(batch) == [None] * 10
    assert pipeline.stats.rejected[Reason.STORAGE_REFUSED.value] == 0


async def test_unavailability_is_not_taken_for_poison(storage: Storage, tenant: Tenant) -> None:
    class Down:
        async def ingest(self, *_args: object) -> list[Ingested]:
            raise StorageUnavailable("PostgreSQL: connection refused")

    pipeline = Pipeline(replace(storage, readings=cast(ReadingRepository, Down())), LIMITS)
    with pytest.raises(StorageUnavailable):
        await pipeline.handle([message(tenant.common_sensor, 1, 1), message(tenant.unit_sensor, 2, 1)])
    assert pipeline.stats.rejected[Reason.STORAGE_REFUSED.value] == 0


# --- through a worker and a real Mosquitto


class Contended(Pipeline):
    """The real pipeline, losing a deadlock to another worker on its first `losses` batches."""

    def __init__(self, storage: Storage, losses: int) -> None:
        super().__init__(storage, LIMITS)
        self.losses = losses

    async def handle(self, messages: Sequence[Message]) -> list[Reason | None]:
        if self.losses > 0:
            self.losses -= 1
            raise StorageContention("PostgreSQL: deadlock detected")
        return await super().handle(messages)


async def _count(storage: Storage, tenant: Tenant, sensor: IoTSensor, expected: int) -> bool:
    return await storage.readings.count(tenant.organization.id, sensor.id) == expected


@pytest.mark.mosquitto
async def test_a_batch_lost_to_a_deadlock_is_retried_at_once(
    storage: Storage, mosquitto: Mosquitto, tenant: Tenant
) -> None:
    pipeline = Contended(storage, losses=3)
    worker = MqttIngestWorker(pipeline, mosquitto.endpoint, f"contended-{uuid.uuid4().hex[:8]}")
    async with running(worker):
        await mosquitto_pub(mosquitto, tenant.unit_sensor.mqtt_topic, native(1.5, 1))
        await eventually(lambda: _count(storage, tenant, tenant.unit_sensor, 1), timeout=3)
    assert pipeline.losses == 0 and pipeline.stats.rejected[Reason.STORAGE_REFUSED.value] == 0


@pytest.mark.mosquitto
async def test_a_sensor_deleted_while_a_worker_has_it_cached(
    storage: Storage, mosquitto: Mosquitto, tenant: Tenant
) -> None:
    """Through a worker: every other reading stored once, the deleted sensor's dead-lettered, the worker goes on."""
    pipeline = Pipeline(storage, LIMITS)
    worker = MqttIngestWorker(pipeline, mosquitto.endpoint, f"deleted-{uuid.uuid4().hex[:8]}")
    deleted, kept = tenant.unit_sensor, [tenant.common_sensor, tenant.other_unit_sensor]
    other = await make_tenant(storage, "Other")  # another organization's sensor in the same batches
    async with running(worker) as running_worker:
        await mosquitto_pub(mosquitto, deleted.mqtt_topic, native(1, 300))
        await eventually(lambda: _count(storage, tenant, deleted, 1))
        await storage.sensors.delete(tenant.organization.id, deleted.id)  # the worker still has it cached
        for i in range(30):
            for sensor in (*kept, deleted):
                await mosquitto_pub(mosquitto, sensor.mqtt_topic, native(i, 200 - i))
            await mosquitto_pub(mosquitto, other.unit_sensor.mqtt_topic, native(i, 200 - i))
        for sensor in kept:
            await eventually(lambda sensor=sensor: _count(storage, tenant, sensor, 30))
        await eventually(lambda: _count(storage, other, other.unit_sensor, 30))
        letters = await eventually(
            lambda: storage.dead_letters.recent(tenant.organization.id, Reason.STORAGE_REFUSED.value)
        )
        assert {letter.topic for letter in letters} == {deleted.mqtt_topic}
        await eventually(lambda: _settled(pipeline, 30 * 4 + 1))
        # Refused while cached, then forgotten: its later messages are unknown_sensor. Each one is counted once.
        refused = pipeline.stats.rejected[Reason.STORAGE_REFUSED.value]
        assert refused >= 1 and refused + pipeline.stats.rejected[Reason.UNKNOWN_SENSOR.value] == 30
        assert running_worker.subscribed.is_set()  # still running and subscribed
        await mosquitto_pub(mosquitto, kept[0].mqtt_topic, native(99, 1))
        await eventually(lambda: _count(storage, tenant, kept[0], 31))
    for sensor in kept:  # stored once each
        assert await storage.readings.count(tenant.organization.id, sensor.id) == 31 - (sensor is not kept[0])


async def _settled(pipeline: Pipeline, received: int) -> bool:
    return pipeline.stats.received >= received
