"""A real ingest worker against a fake broker (tests/support/fake_broker.py) that sends what no real broker would:
malformed and oversized packets, QoS 2, and connections dropped as soon as they are made (issue 14).

The worker must survive each, count it, drop the connection and make it again (backing off), never acknowledge a
packet id it did not receive, and store every well-formed message once. These tests are about the connection, not
the database: they run on SQLite only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from koprogo_iot.domain.clock import utcnow
from koprogo_iot.ingest import mqtt_worker
from koprogo_iot.ingest.mqtt_worker import MqttIngestWorker, _Chunk, reconnect_delay
from koprogo_iot.ingest.pipeline import IngestLimits, Message, Pipeline
from koprogo_iot.ingest.rejections import Reason
from koprogo_iot.mqtt_codec import encode_varint
from koprogo_iot.mqtt_url import MqttEndpoint
from koprogo_iot.storage.ports import Storage
from tests.conftest import Tenant, eventually, make_tenant
from tests.support.fake_broker import PUBACK, PUBCOMP, PUBREC, FakeBroker, Session, packet, publish

LIMITS = IngestLimits(rate_per_sensor=10_000, burst_per_sensor=10_000)
MAX_PACKET = 64 * 1024


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only (overrides the fixture that runs each test on both databases)."""
    return f"sqlite:///{tmp_path / 'koprogo.db'}"


@pytest.fixture
def fast_reconnects(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mqtt_worker, "RECONNECT_MIN", 0.01)
    monkeypatch.setattr(mqtt_worker, "RECONNECT_MAX", 0.05)


def native(value: float, seconds_ago: float) -> bytes:
    return json.dumps({"timestamp": (utcnow() - timedelta(seconds=seconds_ago)).isoformat(), "value": value}).encode()


@contextlib.asynccontextmanager
async def started(worker: MqttIngestWorker) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(worker.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def conflicts() -> float:
    return REGISTRY.get_sample_value("koprogo_ingest_client_id_conflicts_total") or 0.0


def refused(kind: str) -> float:
    return REGISTRY.get_sample_value("koprogo_ingest_mqtt_protocol_errors_total", {"kind": kind}) or 0.0


async def _true(value: bool) -> bool:
    return value


async def stored(storage: Storage, tenant: Tenant) -> int:
    return await storage.readings.count(tenant.organization.id, tenant.unit_sensor.id)


# What issue 14 found, and what else a broker (or whoever sits in the middle) could send. Each is followed, in the
# same write, by a well-formed PUBLISH that must not be read as part of it nor acknowledged on that connection.
MALFORMED = {
    "topic beyond its packet": (bytes([0x32, 4, 0x00, 0x06, 0x00, 0x01]), "malformed"),
    "no packet id": (packet(0x32, b"\x00\x03a/b"), "malformed"),
    "packet id 0": (packet(0x32, b"\x00\x03a/b\x00\x00{}"), "malformed"),
    "QoS 3": (packet(0x36, b"\x00\x03a/b\x00\x05{}"), "malformed"),
    "reserved packet type": (packet(0xF0, b"garbage"), "malformed"),
    "CONNACK of the wrong length": (packet(0x20, b"\x00\x00\x00"), "malformed"),
    "remaining length of five bytes": (b"\x30\xff\xff\xff\xff\x01", "malformed"),
    "oversized": (bytes([0x32]) + encode_varint(201 * 1024 * 1024) + b"\x00\x03a/b", "too_large"),
}


async def test_the_worker_survives_malformed_packets_counts_them_reconnects_and_stores_the_good_ones(
    storage: Storage, fast_reconnects: None
) -> None:
    tenant = await make_tenant(storage)
    topic = tenant.unit_sensor.mqtt_topic
    pipeline = Pipeline(storage, LIMITS)
    conflicts_before = conflicts()
    async with FakeBroker() as broker:
        worker = MqttIngestWorker(pipeline, broker.endpoint, "fake-broker-test", max_packet=MAX_PACKET)
        async with started(worker) as task:
            for number, (case, (bad, kind)) in enumerate(MALFORMED.items(), start=1):
                session = await broker.next_session()
                await session.send(publish(topic, native(number, 1000 - number), qos=1, packet_id=number))
                await eventually(lambda s=session, n=number: _true(s.ids(PUBACK) == [n]))  # type: ignore[misc]
                counted = refused(kind)
                await session.send(bad + publish(topic, native(-1, 1), qos=1, packet_id=999))
                await asyncio.wait_for(session.closed.wait(), 5)  # the worker dropped the connection
                assert session.ids(PUBACK) == [number], case  # nothing acknowledged past the malformed packet
                assert refused(kind) == counted + 1, case
                assert not task.done()
            last = await broker.next_session()  # it connected again after each, the last one too
            await last.send(publish(topic, native(0, 2000), qos=1, packet_id=1))
            await eventually(lambda: _true(last.ids(PUBACK) == [1]))
            assert not task.done()
    assert len(broker.opened) == len(MALFORMED) + 1
    assert await stored(storage, tenant) == len(MALFORMED) + 1
    assert pipeline.stats.received == len(MALFORMED) + 1  # what followed each malformed packet was never read
    assert conflicts() == conflicts_before  # connections the worker dropped itself: no client id conflict


async def test_qos2_is_answered_pubrec_once_stored_then_pubcomp_and_stored_once(
    storage: Storage, fast_reconnects: None
) -> None:
    tenant = await make_tenant(storage)
    topic = tenant.unit_sensor.mqtt_topic
    pipeline = Pipeline(storage, LIMITS)
    body = native(2.5, 30)
    async with FakeBroker() as broker:
        worker = MqttIngestWorker(pipeline, broker.endpoint, "fake-broker-qos2")
        async with started(worker):
            session = await broker.next_session()
            await session.send(publish(topic, body, qos=2, packet_id=77))
            await eventually(lambda: _true(session.ids(PUBREC) == [77]))
            assert await stored(storage, tenant) == 1  # PUBREC only once stored
            await session.send(packet(0x62, (77).to_bytes(2, "big")))  # PUBREL
            await eventually(lambda: _true(session.ids(PUBCOMP) == [77]))
            # The broker sends it again (its PUBREC was lost, say): answered again, stored once.
            await session.send(publish(topic, body, qos=2, packet_id=78, dup=True))
            await eventually(lambda: _true(session.ids(PUBREC) == [77, 78]))
    assert session.ids(PUBACK) == []
    assert await stored(storage, tenant) == 1 and pipeline.stats.duplicates == 1


async def test_reconnects_back_off_exponentially_after_established_connections_drop(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14: only failed connection attempts backed off; a broker that accepts then drops (or another worker
    with the same client id) was reconnected to in a tight loop. Measured with the jitter at its ceiling."""
    monkeypatch.setattr(mqtt_worker, "RECONNECT_MIN", 0.05)
    monkeypatch.setattr(mqtt_worker, "RECONNECT_MAX", 0.4)
    monkeypatch.setattr(mqtt_worker, "_jitter", lambda ceiling: ceiling)
    conflicts_before = conflicts()
    async with FakeBroker() as broker:
        worker = MqttIngestWorker(Pipeline(storage, LIMITS), broker.endpoint, "fake-broker-backoff")
        async with started(worker):
            sessions: list[Session] = []
            for _ in range(6):
                session = await broker.next_session()  # subscribed (its SUBACK sent)...
                session.close()  # ...and dropped at once by the broker
                sessions.append(session)
    gaps = [b.opened_at - a.opened_at for a, b in zip(sessions, sessions[1:], strict=False)]
    ceilings = [0.05, 0.1, 0.2, 0.4, 0.4]  # doubling, then capped
    for gap, ceiling in zip(gaps, ceilings, strict=True):
        assert ceiling <= gap < ceiling + 0.3, (gaps, ceilings)
    # Young connections closed by the broker, again and again: what a shared client id looks like, reported.
    assert conflicts() > conflicts_before


def test_reconnect_delays_are_fully_jittered_below_a_doubling_capped_ceiling() -> None:
    for failures, ceiling in ((1, 0.1), (3, 0.4), (7, 6.4), (8, 10.0), (1_000, 10.0)):
        delays = [reconnect_delay(failures) for _ in range(2_000)]
        assert all(0 <= d <= ceiling for d in delays), failures
        # Uniform over [0, ceiling]: mean ceiling / 2 (standard error ~0.006 x ceiling), spread over the whole range.
        assert 0.45 * ceiling < statistics.fmean(delays) < 0.55 * ceiling
        assert min(delays) < 0.05 * ceiling and max(delays) > 0.95 * ceiling


class _StubConnection:
    """What the worker's queue asks of a connection: pause, resume, write acknowledgements."""

    def __init__(self) -> None:
        self.suback: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.suback.set_result(1)
        self.reading = True
        self.written = b""

    def pause(self) -> None:
        self.reading = False

    def resume(self) -> None:
        self.reading = True

    def write(self, data: bytes) -> bool:
        self.written += data
        return True


async def test_reading_stays_paused_until_the_queued_bytes_fall_below_the_low_water_mark(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six 30 KB messages: far below the 20,000-message high-water mark, beyond the (lowered) byte one. Reading
    stays paused, batch after batch, until the queue holds fewer than LOW_WATER_BYTES."""
    monkeypatch.setattr(mqtt_worker, "HIGH_WATER_BYTES", 100_000)
    monkeypatch.setattr(mqtt_worker, "LOW_WATER_BYTES", 50_000)
    monkeypatch.setattr(mqtt_worker, "MAX_BATCH", 1)
    tenant = await make_tenant(storage)
    permits = asyncio.Semaphore(0)
    done: list[int] = []

    class Gated(Pipeline):
        async def handle(self, messages: Sequence[Message]) -> list[Reason | None]:
            await permits.acquire()
            outcomes = await super().handle(messages)
            done.append(len(messages))
            return outcomes

    worker = MqttIngestWorker(Gated(storage, LIMITS), MqttEndpoint("127.0.0.1"), "bytes-bound")
    connection = _StubConnection()
    worker._connection = connection  # type: ignore[assignment]
    big = Message(tenant.unit_sensor.mqtt_topic, b" " * 30_000, utcnow())  # payload_too_large, once handled
    chunk = _Chunk(connection, [big] * 6, [0x4002_0000 | i for i in range(1, 7)], 6 * 30_000)  # type: ignore[arg-type]
    consumer = asyncio.create_task(worker._consume())
    try:
        worker._enqueue(chunk)
        assert not connection.reading and worker._queued == 6
        reading_after = []
        for stored_batches in range(1, 7):
            permits.release()
            await eventually(lambda n=stored_batches: _true(len(done) == n))  # type: ignore[misc]
            await asyncio.sleep(0)  # the consumer decides whether to resume right after acknowledging
            reading_after.append(connection.reading)
        # 5, 4, 3, 2 messages left (150 to 60 KB): still paused; 1 left (30 KB < 50 KB): reading again.
        assert reading_after == [False, False, False, False, True, True]
        assert connection.written == b"".join(b"\x40\x02" + i.to_bytes(2, "big") for i in range(1, 7))
        assert worker._queued == 0 and worker._queued_bytes == 0
    finally:
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer
