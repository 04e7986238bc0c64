"""The live bus, in-process and over a real Redis; Redis going away must not disturb ingestion."""

import asyncio
import contextlib
from datetime import timedelta

from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.ingest.pipeline import Message, Pipeline
from koprogo_iot.live.bus import LiveBus, LiveReading
from koprogo_iot.live.memory import MemoryBus
from koprogo_iot.live.redis_streams import RedisStreamBus
from koprogo_iot.storage.ports import Storage
from tests.conftest import RedisServer, Tenant, eventually, free_port, make_tenant


def readings(t: Tenant, count: int) -> list[IoTReading]:
    now = utcnow()
    return [IoTReading.measured(t.unit_sensor, now - timedelta(seconds=count - i), float(i)) for i in range(count)]


async def receive_while_publishing(bus: LiveBus, t: Tenant) -> list[LiveReading]:
    """Subscribe, then publish until something arrives (a subscription only sees what follows it)."""
    received: list[LiveReading] = []

    async def consume() -> None:
        async for batch in bus.subscribe(t.organization.id):
            received.extend(batch)
            return

    consumer = asyncio.create_task(consume())

    async def published() -> bool:
        # Checked before publishing again: `eventually` leaves the consumer its polling interval to receive.
        if not received:
            await bus.publish(t.organization.id, readings(t, 3))
        return bool(received)

    await eventually(published, timeout=10)
    with contextlib.suppress(asyncio.CancelledError):
        consumer.cancel()
        await consumer
    return received


async def test_memory_bus_delivers_to_the_organizations_subscribers_only(storage: Storage) -> None:
    a, b = await make_tenant(storage, "A"), await make_tenant(storage, "B")
    bus = MemoryBus()
    received = await receive_while_publishing(bus, a)
    assert [r.value for r in received] == [0.0, 1.0, 2.0]
    assert received[0].sensor_id == a.unit_sensor.id and received[0].unit_of_measure == "m³"
    # B's subscriber gets B's batch, and nothing of A's published just before it.
    heard_by_b: list[LiveReading] = []

    async def listen_b() -> None:
        async for batch in bus.subscribe(b.organization.id):
            heard_by_b.extend(batch)

    listener = asyncio.create_task(listen_b())

    async def b_heard_its_own() -> bool:
        if not heard_by_b:
            await bus.publish(a.organization.id, readings(a, 2))
            await bus.publish(b.organization.id, readings(b, 1))
        return bool(heard_by_b)

    await eventually(b_heard_its_own, timeout=10)
    listener.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await listener
    assert {r.sensor_id for r in heard_by_b} == {b.unit_sensor.id}


async def test_redis_stream_bus_round_trip(storage: Storage, redis_server: RedisServer) -> None:
    t = await make_tenant(storage)
    bus = RedisStreamBus(redis_server.url)
    try:
        received = await receive_while_publishing(bus, t)
    finally:
        await bus.close()
    assert [r.value for r in received[:3]] == [0.0, 1.0, 2.0]
    assert received[0].timestamp.tzinfo is not None


async def test_redis_down_pauses_the_live_view_and_ingestion_goes_on(storage: Storage) -> None:
    t = await make_tenant(storage)
    bus = RedisStreamBus(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    pipeline = Pipeline(storage, bus=bus)
    now = utcnow()
    messages = [
        Message(
            t.unit_sensor.mqtt_topic,
            f'{{"timestamp": "{(now - timedelta(seconds=i)).isoformat()}", "value": {i}}}'.encode(),
            now,
        )
        for i in range(3)
    ]
    assert await pipeline.handle(messages[:2]) == [None, None]
    assert await pipeline.handle(messages[2:]) == [None]  # the breaker is open: no second wait for Redis
    assert bus.failures == 1
    assert await storage.readings.count(t.organization.id, t.unit_sensor.id) == 3
    await bus.close()
