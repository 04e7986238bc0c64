"""The asyncio MQTT ingest worker: its frame parser, then ingestion through a real Mosquitto, restarts included."""

import array
import asyncio
import fcntl
import json
import termios
import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from koprogo_iot.bench.services import MosquittoServer
from koprogo_iot.domain.alerts import AlertSeverity, AlertStatus, IoTAlert
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.errors import StorageUnavailable
from koprogo_iot.ingest import mqtt_worker
from koprogo_iot.ingest.mqtt_worker import MqttIngestWorker, PacketParser, puback_packets
from koprogo_iot.ingest.pipeline import IngestLimits, Message, Pipeline
from koprogo_iot.ingest.rejections import Reason
from koprogo_iot.mqtt_url import MqttEndpoint
from koprogo_iot.storage.ports import Storage
from tests.conftest import (
    Mosquitto,
    Tenant,
    device_endpoint,
    eventually,
    login_args,
    make_tenant,
    mosquitto_pub,
    running,
)

pytestmark = pytest.mark.mosquitto
# Several hundred readings of one sensor within a second: beyond the default per-sensor rate limit.
LIMITS = IngestLimits(rate_per_sensor=10_000, burst_per_sensor=10_000)


def native(value: float, seconds_ago: float = 0.0, **extra: object) -> str:
    timestamp = (utcnow() - timedelta(seconds=seconds_ago)).isoformat()
    return json.dumps({"timestamp": timestamp, "value": value} | extra)


# --- the frame parser, without a broker


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | 0x80 if n else digit)
        if not n:
            return bytes(out)


def publish(topic: str, payload: bytes, qos: int, packet_id: int = 0) -> bytes:
    body = len(topic.encode()).to_bytes(2, "big") + topic.encode()
    body += packet_id.to_bytes(2, "big") if qos else b""
    return bytes([0x30 | qos << 1]) + varint(len(body) + len(payload)) + body + payload


FRAMES = [
    (b"\x20\x02\x01\x00", None),  # CONNACK, session present
    (publish("koprogo/a", b"{}", 1, 7), ("koprogo/a", b"{}", 0x40020007)),
    (publish("koprogo/b", b"x" * 200, 1, 65_535), ("koprogo/b", b"x" * 200, 0x4002FFFF)),  # 2-byte length
    (publish("koprogo/c", b"", 0), ("koprogo/c", b"", 0)),  # QoS 0: nothing to acknowledge
    (b"\xd0\x00", None),  # PINGRESP
    (publish("koprogo/é", b"y" * 20_000, 1, 300), ("koprogo/é", b"y" * 20_000, 0x4002012C)),  # 3-byte length
    (b"\x90\x03\x00\x01\x01", None),  # SUBACK, QoS 1 granted
    (publish("koprogo/q2", b"z", 2, 9), ("koprogo/q2", b"z", 0x50020009)),  # QoS 2: PUBREC once stored
    (b"\x62\x02\x00\x09", None),  # PUBREL of it: PUBCOMP at once
    (publish("koprogo/d", b"{}", 1, 8), ("koprogo/d", b"{}", 0x40020008)),
]
STREAM = b"".join(frame for frame, _ in FRAMES)
EXPECTED_MESSAGES = [m for _, m in FRAMES if m is not None]
EXPECTED_CONTROL = [(0x20, b"\x01\x00"), (0xD0, b""), (0x90, b"\x00\x01\x01"), (0x62, b"\x00\x09")]


def parse_in_pieces(pieces: Sequence[bytes]) -> tuple[list[tuple[str, bytes, int]], list[tuple[int, bytes]]]:
    parser, now = PacketParser(), utcnow()
    messages: list[tuple[str, bytes, int]] = []
    control: list[tuple[int, bytes]] = []
    for piece in pieces:
        got, acks, other = parser.feed(piece, now)
        assert all(m.received_at is now for m in got)
        messages += [(m.topic, m.payload, ack) for m, ack in zip(got, acks, strict=True)]
        control += other
    return messages, control


@pytest.mark.parametrize(
    "pieces",
    [
        pytest.param([STREAM], id="all-at-once"),
        pytest.param([STREAM[i : i + 1] for i in range(len(STREAM))], id="byte-by-byte"),
        pytest.param([STREAM[i : i + 1000] for i in range(0, len(STREAM), 1000)], id="1000-byte-reads"),
    ],
)
def test_parser_splits_frames_however_the_bytes_arrive(pieces: list[bytes]) -> None:
    messages, control = parse_in_pieces(pieces)
    assert messages == EXPECTED_MESSAGES
    assert control == EXPECTED_CONTROL


def test_pubacks_are_written_in_order_and_skip_qos0() -> None:
    assert puback_packets([0x40020007, 0, 0x4002FFFF]) == b"\x40\x02\x00\x07\x40\x02\xff\xff"


def test_parser_refuses_a_remaining_length_longer_than_four_bytes() -> None:
    with pytest.raises(mqtt_worker.ProtocolError):
        PacketParser().feed(b"\x30\xff\xff\xff\xff\x01", utcnow())


# --- through a real broker


def new_worker(
    storage: Storage, endpoint: MqttEndpoint, client_id: str | None = None, pipeline: Pipeline | None = None
) -> MqttIngestWorker:
    client_id = client_id or f"test-{uuid.uuid4().hex[:10]}"
    return MqttIngestWorker(pipeline or Pipeline(storage, LIMITS), endpoint, client_id)


@pytest.fixture
async def tenant(storage: Storage) -> Tenant:
    return await make_tenant(storage)


async def publish_lines(broker: Mosquitto | MosquittoServer, topic: str, bodies: Sequence[str]) -> None:
    """Many QoS 1 messages from one mosquitto_pub, which exits once the broker has acknowledged them all."""
    proc = await asyncio.create_subprocess_exec(
        "mosquitto_pub",
        *login_args(await device_endpoint(broker, topic)),
        "-q",
        "1",
        "-t",
        topic,
        "-l",
        stdin=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate("\n".join(bodies).encode())
    assert proc.returncode == 0, err.decode()


async def _true(value: bool) -> bool:
    return value


async def _count_is(storage: Storage, tenant: Tenant, count: int) -> bool:
    return await storage.readings.count(tenant.organization.id, tenant.unit_sensor.id) == count


async def test_published_reading_is_stored_with_its_metadata(
    storage: Storage, mosquitto: Mosquitto, tenant: Tenant
) -> None:
    org, sensor = tenant.organization.id, tenant.unit_sensor
    async with running(new_worker(storage, mosquitto.endpoint)):
        await mosquitto_pub(mosquitto, sensor.mqtt_topic, native(12.5, battery_level=80, signal_strength=-70))
        [reading] = await eventually(lambda: storage.readings.recent(org, sensor.id))
    assert reading.value == 12.5 and reading.battery_level == 80 and reading.signal_strength == -70
    assert reading.quality == "good"
    refreshed = await storage.sensors.get(org, sensor.id)
    assert refreshed.last_value == 12.5 and refreshed.last_battery_level == 80


async def test_value_above_maximum_raises_one_critical_alert_and_clears(
    storage: Storage, mosquitto: Mosquitto, tenant: Tenant
) -> None:
    org, flow = tenant.organization.id, tenant.common_sensor  # max 50 L/h
    async with running(new_worker(storage, mosquitto.endpoint)):
        for i in range(3):
            await mosquitto_pub(mosquitto, flow.mqtt_topic, native(75.0, seconds_ago=30 - i))
        [alert] = await eventually(lambda: _alerts_with(storage, org, occurrences=3))
        assert alert.severity is AlertSeverity.CRITICAL and alert.status is AlertStatus.ACTIVE
        assert not alert.acknowledged and alert.reading_value == 75.0 and alert.threshold_value == 50.0
        await mosquitto_pub(mosquitto, flow.mqtt_topic, native(10.0, seconds_ago=1))
        [cleared] = await eventually(lambda: _alerts_with(storage, org, status=AlertStatus.CLEARED))
    assert cleared.id == alert.id


async def _alerts_with(storage: Storage, org: uuid.UUID, **expected: object) -> list[IoTAlert]:
    alerts = await storage.alerts.select(org)
    return [a for a in alerts if all(getattr(a, k) == v for k, v in expected.items())]


async def test_bad_messages_are_rejected_and_ingestion_goes_on(
    storage: Storage, mosquitto: Mosquitto, tenant: Tenant
) -> None:
    other = await make_tenant(storage, "Other")
    sensor = tenant.unit_sensor
    async with running(new_worker(storage, mosquitto.endpoint)) as worker:
        bad = [
            (f"koprogo/{tenant.organization.id}/{tenant.building.id}/unregistered/readings", native(1.0)),
            # Org A's sensor published under org B's id: never stored for either.
            (f"koprogo/{other.organization.id}/{other.building.id}/{sensor.sensor_id}/readings", native(1.0)),
            (sensor.mqtt_topic, "{this is not json"),
        ]
        for topic, body in bad:
            await mosquitto_pub(mosquitto, topic, body)
        await mosquitto_pub(mosquitto, sensor.mqtt_topic, native(7.0))
        await eventually(lambda: storage.readings.recent(tenant.organization.id, sensor.id))
        await eventually(lambda: _true(sum(worker.pipeline.stats.rejected.values()) == 3))
        assert worker.pipeline.stats.rejected == {"unknown_sensor": 2, "invalid_json": 1}
    assert [r.value for r in await storage.readings.recent(tenant.organization.id, sensor.id)] == [7.0]
    for s in (other.unit_sensor, other.common_sensor, other.other_unit_sensor):
        assert await storage.readings.count(other.organization.id, s.id) == 0


async def test_redelivered_messages_are_stored_once(storage: Storage, mosquitto: Mosquitto, tenant: Tenant) -> None:
    org, sensor = tenant.organization.id, tenant.unit_sensor
    body = native(3.25, seconds_ago=5)
    async with running(new_worker(storage, mosquitto.endpoint)) as worker:
        for _ in range(3):
            await mosquitto_pub(mosquitto, sensor.mqtt_topic, body)
        await eventually(lambda: _true(worker.pipeline.stats.received == 3))
    assert await storage.readings.count(org, sensor.id) == 1
    assert worker.pipeline.stats.duplicates == 2


async def test_readings_published_while_the_worker_is_down_are_ingested_when_it_returns(
    storage: Storage, mosquitto: Mosquitto, tenant: Tenant
) -> None:
    client_id = f"test-{uuid.uuid4().hex[:10]}"
    async with running(new_worker(storage, mosquitto.endpoint, client_id)):
        pass  # the broker now keeps a persistent session for this client id
    await publish_lines(mosquitto, tenant.unit_sensor.mqtt_topic, [native(i, 100 - i) for i in range(50)])
    async with running(new_worker(storage, mosquitto.endpoint, client_id)):
        await eventually(lambda: _count_is(storage, tenant, 50))
    assert await _count_is(storage, tenant, 50)


class FlakyPipeline(Pipeline):
    """The real pipeline behind a database that refuses the first `failures` batches."""

    def __init__(self, storage: Storage, failures: int) -> None:
        super().__init__(storage, LIMITS)
        self.failures = failures

    async def handle(self, messages: Sequence[Message]) -> list[Reason | None]:
        if self.failures > 0:
            self.failures -= 1
            raise StorageUnavailable("database restarting")
        return await super().handle(messages)


async def test_a_batch_the_database_refused_is_retried_until_stored(
    storage: Storage, mosquitto: Mosquitto, tenant: Tenant
) -> None:
    pipeline = FlakyPipeline(storage, failures=2)
    async with running(new_worker(storage, mosquitto.endpoint, pipeline=pipeline)):
        await mosquitto_pub(mosquitto, tenant.unit_sensor.mqtt_topic, native(1.5))
        await eventually(lambda: _count_is(storage, tenant, 1))
    assert pipeline.failures == 0 and pipeline.stats.received == 1


def unread_bytes(connection: mqtt_worker._Connection) -> int:
    """Bytes the kernel has received on the worker's socket that the worker has not read (FIONREAD)."""
    assert connection.transport is not None
    count = array.array("i", [0])
    fcntl.ioctl(connection.transport.get_extra_info("socket").fileno(), termios.FIONREAD, count)
    return count[0]


class GatedPipeline(Pipeline):
    """The real pipeline, holding every batch until the test opens the gate."""

    def __init__(self, storage: Storage) -> None:
        super().__init__(storage, LIMITS)
        self.gate = asyncio.Event()
        self.entered = 0  # messages handed to `handle`, stored or not

    async def handle(self, messages: Sequence[Message]) -> list[Reason | None]:
        self.entered += len(messages)
        await self.gate.wait()
        return await super().handle(messages)


async def test_reading_pauses_while_the_database_is_slow_and_nothing_is_lost(
    storage: Storage, mosquitto: Mosquitto, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mqtt_worker, "MAX_BATCH", 5)
    pipeline = GatedPipeline(storage)
    topic = tenant.unit_sensor.mqtt_topic
    async with running(new_worker(storage, mosquitto.endpoint, pipeline=pipeline)) as worker:
        connection = worker._connection
        assert connection is not None
        await publish_lines(mosquitto, topic, [native(i, 200 - i) for i in range(10)])
        await eventually(lambda: _true(pipeline.entered > 0))  # a batch is held: the database is "slow"
        await publish_lines(mosquitto, topic, [native(i, 200 - i) for i in range(10, 20)])
        await eventually(lambda: _true(not connection.reading))  # what came meanwhile paused reading
        held = worker._queued + pipeline.entered
        await publish_lines(mosquitto, topic, [native(i, 200 - i) for i in range(20, 100)])
        # Forwarded by the broker to the worker's socket (the kernel holds them: more than 80 messages of 100 bytes
        # each, waiting to be read), and not read: nothing more reached the queue or the pipeline.
        await eventually(lambda: _true(unread_bytes(connection) > 80 * 100))
        assert worker._queued + pipeline.entered == held <= 20 and not connection.reading
        pipeline.gate.set()
        await eventually(lambda: _count_is(storage, tenant, 100))
        assert connection.reading and pipeline.entered == 100


async def test_worker_survives_a_broker_restart_and_loses_nothing(
    storage: Storage, tenant: Tenant, tmp_path: Path
) -> None:
    topic = tenant.unit_sensor.mqtt_topic
    pipeline = GatedPipeline(storage)
    server = MosquittoServer(tmp_path / "mq")  # our own broker: the session one is shared by other tests
    with server:
        async with running(new_worker(storage, server.endpoint, pipeline=pipeline)) as worker:
            await publish_lines(server, topic, [native(i, 500 - i) for i in range(200)])
            # A batch received and not stored, so not acknowledged when the broker goes: it must come again.
            await eventually(lambda: _true(pipeline.entered > 0))
            await asyncio.to_thread(server.restart)
            pipeline.gate.set()
            await publish_lines(server, topic, [native(i, 300 - i) for i in range(200, 400)])
            await eventually(lambda: _count_is(storage, tenant, 400), timeout=20)
            assert worker.subscribed.is_set()
    # What the old connection delivered was stored but acknowledged on no connection: delivered again, stored once.
    assert 0 < pipeline.stats.duplicates <= 200
