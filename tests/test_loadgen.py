"""The load generator against a real Mosquitto (and, for failure modes, tiny brokers speaking MQTT over a socket)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from koprogo_iot.devices.native import decode
from koprogo_iot.loadgen import publisher as loadgen
from koprogo_iot.loadgen.publisher import SentBatch, published_keys, run_load
from koprogo_iot.mqtt_url import MqttEndpoint
from tests.conftest import Mosquitto, device_endpoint, eventually, free_port

RFC3339_UTC_MICROS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


class Collector:
    """A paho QoS 1 subscriber recording every message it receives."""

    def __init__(self, endpoint: MqttEndpoint, topic_filter: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-sub-{uuid.uuid4().hex[:10]}")
        self._client.on_connect = lambda client, *_: client.subscribe(topic_filter, qos=1)
        self._client.on_subscribe = lambda *_: self.subscribed.set()
        self._client.on_message = self._on_message
        self._client.username_pw_set(endpoint.username, endpoint.password)
        self._client.connect(endpoint.host, endpoint.port)
        self._client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.messages.append((message.topic, bytes(message.payload)))

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@pytest.fixture
def prefix() -> str:
    """An organization's topics: only its devices may publish there."""
    return f"koprogo/{uuid.uuid4()}/{uuid.uuid4()}"


@pytest.fixture
def collector(mosquitto: Mosquitto, prefix: str) -> Iterator[Collector]:
    subscriber = Collector(mosquitto.endpoint, f"{prefix}/#")  # the ingest workers' login reads every topic
    try:
        yield subscriber
    finally:
        subscriber.close()


async def test_every_message_arrives_well_formed_unique_and_paced(
    mosquitto: Mosquitto, prefix: str, collector: Collector
) -> None:
    async def subscribed() -> bool:
        return collector.subscribed.is_set()

    await eventually(subscribed)
    topics = [f"{prefix}/meter-{i:02d}/readings" for i in range(50)]
    progress: list[tuple[int, int]] = []

    def on_progress(published: int, acknowledged: int) -> None:
        progress.append((published, acknowledged))

    device = await device_endpoint(mosquitto, prefix)
    sent: list[SentBatch] = []
    result = await run_load(device, topics, rate=2000, duration=1.0, on_progress=on_progress, sent=sent)

    assert 1600 <= result.published <= 2400
    assert result.acknowledged == result.published
    assert 0 < result.elapsed < 5
    assert result.cpu_seconds > 0
    assert result.per_second() == pytest.approx(result.acknowledged / result.elapsed)

    async def all_received() -> bool:
        return len(collector.messages) >= result.published

    await eventually(all_received)
    assert len(collector.messages) == result.published

    seen: set[tuple[str, object]] = set()
    values: dict[str, list[tuple[object, float]]] = defaultdict(list)
    for topic, payload in collector.messages:
        assert RFC3339_UTC_MICROS.fullmatch(json.loads(payload)["timestamp"])
        reading = decode(payload)
        assert reading.timestamp.utcoffset() is not None and not reading.timestamp.utcoffset()
        assert reading.battery_level is not None and 0 <= reading.battery_level <= 100
        assert reading.signal_strength is not None and reading.signal_strength < 0
        assert (topic, reading.timestamp) not in seen
        seen.add((topic, reading.timestamp))
        values[topic].append((reading.timestamp, reading.value))

    # What the run recorded as sent is, key by key, what arrived (how a fault run counts what it published).
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert sorted(published_keys(topics, sent)) == sorted(
        (topic, (timestamp - epoch) // timedelta(microseconds=1)) for topic, timestamp in seen
    )

    counts = Counter(topic for topic, _ in collector.messages)
    assert set(counts) == set(topics)
    assert max(counts.values()) - min(counts.values()) <= 1  # round robin
    for series in values.values():
        in_time_order = [value for _, value in sorted(series)]
        assert all(a < b for a, b in zip(in_time_order, in_time_order[1:], strict=False))

    assert len(progress) >= 5
    assert progress == sorted(progress)
    assert progress[-1] == (result.published, result.acknowledged)


async def test_a_refused_connection_names_the_endpoint() -> None:
    endpoint = MqttEndpoint("127.0.0.1", free_port())
    with pytest.raises(ConnectionError, match=re.escape(str(endpoint))):
        await run_load(endpoint, ["t/1"], rate=10, duration=0.1)


@pytest.mark.parametrize(
    ("topics", "rate", "duration", "max_inflight"),
    [
        ([], 10, 1, 10),
        (["a/+/b"], 10, 1, 10),
        (["a/#"], 10, 1, 10),
        (["a"], 0, 1, 10),
        (["a"], 10, 0, 10),
        (["a"], 10, 1, 0),
        (["a"], 10, 1, 70_000),
        (["a"], float("nan"), 1, 10),
    ],
)
async def test_nonsensical_arguments_are_refused_before_connecting(
    topics: list[str], rate: float, duration: float, max_inflight: int
) -> None:
    with pytest.raises(ValueError):
        await run_load(MqttEndpoint("127.0.0.1", free_port()), topics, rate, duration, max_inflight=max_inflight)


# --- failure modes and protocol details, against minimal brokers speaking MQTT 3.1.1 over a real socket

CONNACK_OK = b"\x20\x02\x00\x00"
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first = (await reader.readexactly(1))[0]
    length, shift = 0, 0
    while True:
        digit = (await reader.readexactly(1))[0]
        length |= (digit & 0x7F) << shift
        shift += 7
        if not digit & 0x80:
            return first, await reader.readexactly(length)


@contextlib.asynccontextmanager
async def fake_broker(handle: Handler) -> AsyncIterator[MqttEndpoint]:
    handlers: set[asyncio.Task[Any]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await handle(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield MqttEndpoint("127.0.0.1", server.sockets[0].getsockname()[1], "alice", "s3cret")
    finally:
        server.close()
        # Handlers end when the client hangs up; wait for them so that none is cancelled half-way at loop shutdown.
        if handlers:
            await asyncio.wait(handlers, timeout=5)
        await server.wait_closed()


async def test_a_broker_closing_the_connection_mid_run_raises_connection_error() -> None:
    async def close_after_some_publishes(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_packet(reader)
        writer.write(CONNACK_OK)
        for _ in range(20):
            await read_packet(reader)

    async with fake_broker(close_after_some_publishes) as endpoint:
        with pytest.raises(ConnectionError, match=f"{re.escape(str(endpoint))} closed the connection"):
            await asyncio.wait_for(run_load(endpoint, ["t/1", "t/2"], rate=1000, duration=5), timeout=5)


async def test_a_refusing_connack_raises_connection_error_with_the_reason() -> None:
    connects: list[bytes] = []

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connects.append((await read_packet(reader))[1])
        writer.write(b"\x20\x02\x00\x05")
        await writer.drain()

    async with fake_broker(refuse) as endpoint:
        with pytest.raises(ConnectionError, match="not authorized"):
            await run_load(endpoint, ["t/1"], rate=10, duration=1, client_id="meter-loader")
    assert connects[0].startswith(b"\x00\x04MQTT\x04\xc2")  # MQTT 3.1.1, user name, password, clean session
    assert connects[0].endswith(b"\x00\x0cmeter-loader\x00\x05alice\x00\x06s3cret")


async def test_a_full_window_holds_publishing_back_and_missing_acks_end_the_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(loadgen, "ACK_TIMEOUT", 0.2)

    async def never_ack(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_packet(reader)
        writer.write(CONNACK_OK)
        while True:
            await read_packet(reader)

    async with fake_broker(never_ack) as endpoint:
        result = await run_load(endpoint, ["t/1"], rate=10_000, duration=0.3, max_inflight=50)
    assert (result.published, result.acknowledged) == (50, 0)
    assert result.elapsed >= 0.4  # to the end of the ack wait, since acks are missing


async def test_pubacks_split_across_reads_and_mixed_with_other_packets_are_all_counted() -> None:
    async def ack_in_awkward_pieces(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_packet(reader)
        writer.write(CONNACK_OK)
        received = 0
        while True:
            kind, body = await read_packet(reader)
            if kind & 0xF0 != 0x30:
                continue
            topic_length = int.from_bytes(body[:2], "big")
            ack = b"\x40\x02" + body[2 + topic_length : 4 + topic_length]
            received += 1
            if received % 7 == 0:
                ack += b"\xd0\x00"  # an unsolicited PINGRESP shifts the 4-byte alignment of the PUBACKs
            for start in range(0, len(ack), 3):
                writer.write(ack[start : start + 3])
                await writer.drain()

    async with fake_broker(ack_in_awkward_pieces) as endpoint:
        result = await run_load(endpoint, [f"t/{i}" for i in range(5)], rate=3000, duration=0.5)
    assert result.published == 1500
    assert result.acknowledged == result.published
