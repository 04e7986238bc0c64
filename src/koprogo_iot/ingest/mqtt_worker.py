"""A minimal asyncio MQTT 3.1.1 subscriber for ingestion: parse in place, store in batches, ack per socket write.

It does what the ingest worker needs and nothing else: one persistent session, one QoS 1 subscription, PUBLISH
packets parsed straight out of each read, and the acknowledgements of a stored batch written together in one
`transport.write` (paho-mqtt runs a network thread, one callback and one PUBACK write per message).

What that saves, measured in one run (issue 14's comparison: `koprogo-iot bench ingest --rate 10000 --duration 60
--workers 2`, then the same with `--client paho`, back to back on the 2-vCPU VM, 2026-11-29; bench/paho_worker.py
puts the same pipeline, batching and acknowledgement after commit behind paho-mqtt 2 with manual acknowledgements,
driven from the asyncio loop as Home Assistant drives it): 89-90 µs of worker CPU per stored reading on this client
against 106-107 µs on paho (+18 %), p99 179 against 293 ms, both storing 650,000 of 650,000 once. The rule was to
switch to paho within 15 %: this client stays, at library grade: every length checked against its packet, a
maximum packet size (refused before buffering, counted, disconnected), memory bounded in messages and bytes,
reconnection with exponential backoff and full jitter after every kind of drop, QoS 2 answered (PUBREC once stored,
PUBCOMP on PUBREL), TLS, and a clear error when two workers share a client id.

Why not MQTT 5: what it would bring is either had otherwise or not this client's to give. Receive maximum is
Mosquitto's max_inflight_messages (set for the workers in the shipped configuration); session expiry would end a
gone worker's share, but Mosquitto deletes the expired session with its queue, messages already acknowledged to
the devices (Mosquitto 2.0.11, 3 s expiry: 50 of 200 lost; docs/operations.md), so a worker that is away comes back
(restarted under its client id) or, gone for longer than KOPROGO_INGEST_RELEASE_AFTER, has its session released
by a live one (`release`, `ingest/members.py`: resumed, unsubscribed, its queue stored) and nothing is lost;
a DISCONNECT reason would name a session takeover that the worker now infers from repeated closes. Against that,
every PUBLISH would carry a properties field to parse on the hot path, and every acknowledgement a reason code.
Receive maximum is the property worth adding one day (CONNECT only, nothing per message).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import ssl
import sys
import time
from array import array
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from koprogo_iot import mqtt_codec
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.errors import BrokerUnavailable, StorageContention, StorageUnavailable
from koprogo_iot.ingest import metrics
from koprogo_iot.ingest.pipeline import Message, Pipeline
from koprogo_iot.ingest.topics import SUBSCRIPTION
from koprogo_iot.mqtt_codec import DISCONNECT, PINGREQ, connack_reason, encode_string, encode_varint
from koprogo_iot.mqtt_url import MqttEndpoint

log = logging.getLogger(__name__)

MAX_BATCH = 2_000  # messages per pipeline call; COPY batches of this size cost ~1 ms on PostgreSQL
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)  # seconds between attempts to store a batch while the database is away
CONTENTION_PAUSE = 0.1  # at most, in seconds, before storing again a batch rolled back by a deadlock
# Seconds before reconnecting, after a failed attempt or a lost connection alike: a random delay below a ceiling
# that doubles from RECONNECT_MIN to RECONNECT_MAX ("full jitter": workers dropped together do not return
# together). Start fast: after a broker restart, Mosquitto 2.0 forgets shared subscriptions until the workers
# subscribe again, and drops what arrives for them meanwhile (unless it holds the devices until a worker lets them
# in: `admit_devices`, `broker config --hold-devices`). Only a connection that held for STABLE_AFTER seconds
# starts the ceiling again; one dropped sooner (a broker refusing what we send, another worker with our client id)
# backs off like a failed attempt rather than reconnecting in a tight loop.
RECONNECT_MIN, RECONNECT_MAX = 0.1, 10.0
STABLE_AFTER = 30.0
# Releasing a gone worker's session (`release`): once unsubscribed, its queue is empty when nothing more was read for
# this many seconds (Mosquitto sends a resumed session's queue at once, as fast as acknowledgements let it).
RELEASE_QUIET = 1.0
# Two workers with one client id take the broker session from each other, each connection closed by the broker when
# the other connects. MQTT 3.1.1 gives no reason for a close, but TAKEOVERS closes by the broker within
# TAKEOVER_WINDOW seconds, each of a connection younger than STABLE_AFTER, look like that and little else (a broker
# restarting refuses connections; one refusing what we send closes it before the SUBACK).
TAKEOVERS, TAKEOVER_WINDOW = 3, 60.0
KEEPALIVE = 30  # seconds, announced in CONNECT; a PINGREQ goes out when nothing was written for half of it
CONNECT_TIMEOUT = 10.0  # for the TCP connection, then again for CONNACK and SUBACK
CLOSE_TIMEOUT = 2.0
# Reading pauses beyond HIGH_WATER queued messages or HIGH_WATER_BYTES of them, and resumes below half of both:
# memory stays bounded while the database is slow (in bytes too: 20,000 messages of 16 KiB would be 320 MB), and
# the broker keeps the rest (max_inflight_messages, then its queue).
HIGH_WATER = 20_000
LOW_WATER = HIGH_WATER // 2
HIGH_WATER_BYTES = 32 * 1024 * 1024
LOW_WATER_BYTES = HIGH_WATER_BYTES // 2

# Our batches are ~200-byte readings; a device payload may reach the pipeline's 16 KiB. A bigger packet is refused
# (and the connection dropped) as soon as its header announces it, before any of it is buffered; the shipped
# Mosquitto configuration's message_size_limit keeps well below this (tests/ops/test_broker_config.py).
MAX_PACKET = 512 * 1024

_CONNACK, _PUBLISH, _PUBACK, _PUBREC, _PUBREL, _PUBCOMP = 0x20, 0x30, 0x40, 0x50, 0x62, 0x70
_SUBSCRIBE, _SUBACK, _UNSUBSCRIBE, _UNSUBACK, _PINGRESP = 0x80, 0x90, 0xA0, 0xB0, 0xD0
_SUBSCRIBE_ID = 1
# An acknowledgement as one big-endian 32-bit word: packet type, remaining length 2, packet id. QoS 1 is answered
# with PUBACK, QoS 2 with PUBREC (then PUBREL is answered with PUBCOMP): both once the message is stored.
_PUBACK_HEADER = 0x4002_0000
_PUBREC_HEADER = 0x5002_0000
# What a broker may send a client, by first byte (type and flags), with the body length each must have
# (-1: at least 3, SUBACK). Anything else is malformed (MQTT 3.1.1 section 2.2: the connection is closed).
_CONTROL_LENGTHS = {
    _CONNACK: 2,
    _PUBACK: 2,
    _PUBREC: 2,
    _PUBREL: 2,
    _PUBCOMP: 2,
    _SUBACK: -1,
    _UNSUBACK: 2,
    _PINGRESP: 0,
}


class ProtocolError(ConnectionError):
    """The broker sent something MQTT 3.1.1 does not allow here; the connection is dropped and made again."""

    kind = "malformed"  # the label it is counted under (metrics.MQTT_PROTOCOL_ERRORS)


class PacketTooLarge(ProtocolError):
    """A packet announcing more than the worker's maximum packet size: refused before it is buffered."""

    kind = "too_large"


class PacketParser:
    """Splits an MQTT byte stream into packets: PUBLISH becomes a `Message`, the rest is handed back as is.

    `feed` takes whatever one read returned, keeps an incomplete packet for the next read, and returns the messages,
    their acknowledgement words (0 for QoS 0) and the other packets as (first byte, body). Every field of a packet
    is checked against the packet's end, so a message is never made of another packet's bytes and no packet id is
    acknowledged that was not received; anything malformed raises `ProtocolError` (the connection must be dropped:
    the stream cannot be trusted past it). At most `max_packet` bytes are ever held.
    """

    def __init__(self, max_packet: int = MAX_PACKET) -> None:
        self.max_packet = max_packet
        self._pending: list[bytes] = []  # the start of a packet still incomplete
        self._pending_size = 0
        self._needed = 0  # bytes the incomplete packet needs in all, when its header is known (else 0)
        self.parsed = 0  # bytes of the packets the last `feed` completed (what its messages hold in memory)

    @property
    def buffered(self) -> int:
        """Bytes held for a packet not yet complete."""
        return self._pending_size

    def feed(self, data: bytes, received_at: datetime) -> tuple[list[Message], list[int], list[tuple[int, bytes]]]:
        """Packets completed by `data`; `received_at` (one clock read per read, not per message) goes into each."""
        if self._pending:
            self._pending.append(data)
            self._pending_size += len(data)
            if self._pending_size < self._needed:
                # A large packet arriving in many reads: joined once when complete, not once per read.
                self.parsed = 0
                return [], [], []
            data = b"".join(self._pending)
            self._pending, self._pending_size, self._needed = [], 0, 0
        messages: list[Message] = []
        acks: list[int] = []
        control: list[tuple[int, bytes]] = []
        position, size = 0, len(data)
        while size - position >= 2:
            first = data[position]
            length = data[position + 1]
            if length < 0x80:
                body = position + 2
            elif size - position > 2 and data[position + 2] < 0x80:  # two bytes: our ~200-byte messages
                length = (length & 0x7F) | (data[position + 2] << 7)
                body = position + 3
            else:
                decoded = _long_length(data, position + 1)
                if decoded is None:
                    break  # the remaining length itself is incomplete
                length, body = decoded
            end = body + length
            if end - position > self.max_packet:
                raise PacketTooLarge(f"a packet of {end - position} bytes announced, more than {self.max_packet}")
            if end > size:
                self._needed = end - position
                break
            if first & 0xF0 == _PUBLISH:
                if length < 2:
                    raise ProtocolError("PUBLISH without a topic length")
                topic_end = body + 2 + ((data[body] << 8) | data[body + 1])
                qos = first & 0x06
                if qos == 0:
                    if topic_end > end:
                        raise ProtocolError("PUBLISH topic longer than its packet")
                    acks.append(0)
                    messages.append(
                        Message(data[body + 2 : topic_end].decode(errors="replace"), data[topic_end:end], received_at)
                    )
                else:
                    if topic_end + 2 > end:
                        raise ProtocolError("PUBLISH topic and packet id longer than their packet")
                    packet_id = (data[topic_end] << 8) | data[topic_end + 1]
                    if packet_id == 0 or qos == 0x06:
                        raise ProtocolError("PUBLISH with packet id 0 or QoS 3")
                    acks.append((_PUBACK_HEADER if qos == 0x02 else _PUBREC_HEADER) | packet_id)
                    messages.append(
                        Message(
                            data[body + 2 : topic_end].decode(errors="replace"), data[topic_end + 2 : end], received_at
                        )
                    )
            else:
                expected = _CONTROL_LENGTHS.get(first)
                if expected is None or (length < 3 if expected < 0 else length != expected):
                    raise ProtocolError(f"unexpected packet: first byte {first:#04x}, {length} bytes")
                control.append((first, data[body:end]))
            position = end
        self.parsed = position
        if position < size:
            self._pending = [data[position:]]
            self._pending_size = size - position
        return messages, acks, control


def _long_length(data: bytes, start: int) -> tuple[int, int] | None:
    """A remaining length of up to 4 bytes from `start`: (length, where the body starts), None if incomplete."""
    length, shift = 0, 0
    for cursor in range(start, min(start + 4, len(data))):
        digit = data[cursor]
        length |= (digit & 0x7F) << shift
        if not digit & 0x80:
            return length, cursor + 1
        shift += 7
    if len(data) - start >= 4:
        raise ProtocolError("malformed remaining length (more than 4 bytes)")
    return None


def reconnect_delay(failures: int) -> float:
    """Seconds to wait after `failures` (1 or more) attempts failed or connections were lost in a row."""
    return _jitter(min(RECONNECT_MAX, RECONNECT_MIN * 2 ** min(failures - 1, 32)))


def _jitter(ceiling: float) -> float:
    """Full jitter: anywhere from 0 to the ceiling, uniformly (not a cryptographic use of `random`)."""
    return random.uniform(0.0, ceiling)


def connect_packet(client_id: str, username: str | None, password: str | None) -> bytes:
    """CONNECT for a persistent session (clean session off): what was not acknowledged comes again on reconnect."""
    return mqtt_codec.connect_packet(client_id, username, password, keepalive=KEEPALIVE, clean_session=False)


def subscribe_packet(topic_filter: str, packet_id: int = _SUBSCRIBE_ID) -> bytes:
    """SUBSCRIBE to one filter at QoS 1."""
    body = packet_id.to_bytes(2, "big") + encode_string(topic_filter) + b"\x01"
    return bytes([_SUBSCRIBE | 0x02]) + encode_varint(len(body)) + body


def unsubscribe_packet(topic_filter: str, packet_id: int = _SUBSCRIBE_ID) -> bytes:
    """UNSUBSCRIBE from one filter."""
    body = packet_id.to_bytes(2, "big") + encode_string(topic_filter)
    return bytes([_UNSUBSCRIBE | 0x02]) + encode_varint(len(body)) + body


def puback_packets(acks: list[int]) -> bytes:
    """The PUBACKs for these words (0 = QoS 0, nothing to send), in order, as one buffer built in C."""
    words = array("I", acks)
    if 0 in acks:
        words = array("I", [a for a in acks if a])
    if sys.byteorder == "little":
        words.byteswap()
    return words.tobytes()


@dataclass(slots=True)
class _Chunk:
    """The messages of one read, with the connection that must acknowledge them."""

    connection: _Connection
    messages: list[Message]
    acks: list[int]
    size: int  # bytes of the packets they came in (what they hold in memory, near enough)


class _Connection(asyncio.Protocol):
    """One TCP connection to the broker: parses reads, queues messages on the worker, writes what it is told."""

    def __init__(self, sink: Callable[[_Chunk], None], max_packet: int) -> None:
        loop = asyncio.get_running_loop()
        self._sink = sink
        self._parser = PacketParser(max_packet)
        self.transport: asyncio.Transport | None = None
        self.connack: asyncio.Future[tuple[bool, int]] = loop.create_future()  # (session present, return code)
        self.suback: asyncio.Future[int] = loop.create_future()
        self.unsuback: asyncio.Future[None] = loop.create_future()  # awaited only by `release`
        self.closed: asyncio.Future[Exception | None] = loop.create_future()
        self.last_read = self.last_write = time.monotonic()
        self.ping_sent_at: float | None = None
        self.reading = True
        self.dropped = False  # by us (protocol error, keep-alive, stopping), not by the broker
        self.discarding = False  # DISCONNECT sent: what still comes is delivered again to the session later

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.last_read = time.monotonic()
        if self.discarding:
            return
        try:
            messages, acks, control = self._parser.feed(data, utcnow())
            for first, body in control:
                self._control(first, body)
        except ProtocolError as exc:
            # Nothing of this read is queued or acknowledged: the broker delivers it again on the next connection.
            metrics.MQTT_PROTOCOL_ERRORS.labels(exc.kind).inc()
            log.error("protocol error from the MQTT broker (%s); dropping the connection", exc)
            self.abort()
            return
        if messages:
            self._sink(_Chunk(self, messages, acks, self._parser.parsed))

    def _control(self, first: int, body: bytes) -> None:
        if first == _CONNACK:
            if not self.connack.done():
                self.connack.set_result((bool(body[0] & 1), body[1]))
        elif first == _SUBACK:
            if not self.suback.done():
                self.suback.set_result(body[2])
        elif first == _UNSUBACK:
            if not self.unsuback.done():
                self.unsuback.set_result(None)
        elif first == _PINGRESP:
            self.ping_sent_at = None
        elif first == _PUBREL:  # the second half of a QoS 2 delivery, whose PUBREC went out once it was stored
            self.write(bytes([_PUBCOMP, 2]) + body)
        # PUBACK, PUBREC and PUBCOMP answer what we never send (well formed, checked by the parser): ignored

    def write(self, data: bytes) -> bool:
        """Write unless the connection is closing; False when it is (what it carried is lost with it)."""
        if self.transport is None or self.transport.is_closing():
            return False
        self.transport.write(data)
        self.last_write = time.monotonic()
        return True

    def pause(self) -> None:
        if self.reading and self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()
            self.reading = False

    def resume(self) -> None:
        if not self.reading and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()
            self.reading = True
            self.ping_sent_at = None  # a PINGRESP may be waiting unread: judge liveness afresh

    def abort(self) -> None:
        self.dropped = True
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        for future in (self.connack, self.suback, self.unsuback):
            if not future.done():
                future.set_exception(ConnectionError("the broker closed the connection"))
                future.exception()  # retrieved: nobody may be waiting for it any more
        if not self.closed.done():
            self.closed.set_result(exc)

    async def close(self, graceful: bool) -> None:
        """DISCONNECT (when `graceful`, so the broker drops no will and logs no error), close, wait for it."""
        if self.transport is None:
            return
        self.dropped = True
        if graceful and self.write(DISCONNECT):
            # The broker closes once it has read the DISCONNECT, after the PUBACKs before it. Until then read and
            # drop what it still sends: closing with unread data resets the connection, and a reset may discard
            # PUBACKs the broker had not read yet (seen: 25 stored readings delivered again after a SIGTERM).
            self.discarding = True
            self.resume()
        else:
            self.transport.close()
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), CLOSE_TIMEOUT)
        except TimeoutError:
            self.transport.abort()


class MqttIngestWorker:
    """Subscribes to every reading topic; a QoS 1 message is acknowledged after its batch is stored.

    The session is persistent (clean_session=False): what was not acknowledged before a crash or a disconnection is
    delivered again by the broker, and stored once thanks to the (sensor, timestamp) key.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        endpoint: MqttEndpoint,
        client_id: str,
        share_group: str | None = None,
        *,
        subscription: str = SUBSCRIPTION,
        tls: ssl.SSLContext | None = None,
        primary: bool = True,
        max_packet: int = MAX_PACKET,
        admit_devices: Callable[[], Awaitable[int]] | None = None,
    ) -> None:
        """`subscription`: the topic filter (another broker's, for an integration); `tls`: the context of an mqtts
        endpoint (default: the system's trusted CAs); `primary`: the worker the process's gauges describe;
        `max_packet`: the largest packet accepted from the broker, in bytes (beyond: refused, disconnected);
        `admit_devices`: lets in the devices the broker holds until a worker listens (`broker config
        --hold-devices`), called after each subscription, until it succeeds; how many were let in."""
        self.pipeline = pipeline
        self.endpoint = endpoint
        self.client_id = client_id
        # With a shared subscription the broker spreads messages over the workers of the group.
        self.subscription = f"$share/{share_group}/{subscription}" if share_group else subscription
        self.tls = tls if tls is not None or not endpoint.tls else ssl.create_default_context()
        self.primary = primary
        self.max_packet = max_packet
        self.last_error: str | None = None  # why the last connection attempt failed; None once connected
        self.subscribed = asyncio.Event()
        self.admit_devices = admit_devices
        self._admitting: asyncio.Task[None] | None = None
        self._chunks: deque[_Chunk] = deque()
        self._queued = 0  # messages in _chunks
        self._queued_bytes = 0  # bytes read for them
        self._ready = asyncio.Event()  # set when _chunks has something
        self._connection: _Connection | None = None
        self._paused = False  # beyond a high-water mark: reading stays paused until below both low-water marks
        self._busy = False  # a batch is being stored
        self._batch_size = 0  # messages in the batch being stored
        self._stopping = False  # `drain` was called: nothing more is read
        self._drained = asyncio.Event()  # set by the consumer once stopping and nothing is left to store
        self._closed_by_broker: deque[float] = deque()  # when the broker closed young connections, recently
        self._stored = 0  # messages handled and acknowledged (stored, or dead-lettered)

    async def run(self) -> None:
        """Ingest until cancelled."""
        consumer = asyncio.create_task(self._consume(), name=f"{self.client_id} store")
        log.info("ingest worker %s connecting to %s", self.client_id, self.endpoint)
        try:
            await self._connect_forever(consumer)
        finally:
            for task in (consumer, self._admitting):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            self._lost()
            if self._connection is not None:
                await self._connection.close(graceful=True)

    async def _connect_forever(self, consumer: asyncio.Task[None]) -> None:
        failures, failure = 0, ""  # attempts failed or connections lost since one last held; the last reason
        while True:
            if failures:
                await asyncio.sleep(reconnect_delay(failures))
            try:
                connection = await self._open()
            except (OSError, TimeoutError, ConnectionError) as exc:
                why = self.last_error = str(exc) or type(exc).__name__
                if why != failure:  # logged once per state change, not once per attempt
                    log.warning(
                        "cannot connect to %s (%s); retrying every %.0f-%.0f s",
                        self.endpoint,
                        why,
                        RECONNECT_MIN,
                        RECONNECT_MAX,
                    )
                    failure = why
                failures += 1
                continue
            failure, self.last_error = "", None
            connected_at = time.monotonic()
            await self._serve(connection, consumer)
            self._lost()
            if consumer.done():
                consumer.result()  # a bug in the consumer stops the worker rather than silently not storing
            now = time.monotonic()
            if now - connected_at >= STABLE_AFTER:
                failures = 1
            else:
                failures += 1
                if not connection.dropped:
                    self._check_takeovers(now)
            log.warning("lost the connection to %s; reconnecting", self.endpoint)

    def _check_takeovers(self, now: float) -> None:
        """Called when the broker closed a young connection: say so when it looks like a shared client id."""
        closes = self._closed_by_broker
        closes.append(now)
        while now - closes[0] > TAKEOVER_WINDOW:
            closes.popleft()
        if len(closes) >= TAKEOVERS:
            closes.clear()
            metrics.CLIENT_ID_CONFLICTS.inc()
            log.error(
                "the broker closed the connection of %s %d times within %.0f s, each soon after it was made: another "
                "client is probably using the same client id (two ingest workers sharing one take the session from "
                "each other). Give each worker its own KOPROGO_MQTT_CLIENT_ID, or leave it unset and give each its "
                "own KOPROGO_INGEST_WORKER_INDEX",
                self.client_id,
                TAKEOVERS,
                TAKEOVER_WINDOW,
            )

    async def _open(self, release: bool = False) -> _Connection:
        """Connect, start the session and subscribe (`release`: unsubscribe); the connection becomes current once
        the broker answered."""
        loop = asyncio.get_running_loop()
        opening = loop.create_connection(
            lambda: _Connection(self._enqueue, self.max_packet), self.endpoint.host, self.endpoint.port, ssl=self.tls
        )
        # asyncio.timeout, not wait_for: Python 3.11's wait_for swallows a cancellation that comes as the awaited
        # future completes (the SUBACK read as `run` is cancelled), and the worker then ran on, unstoppable.
        async with asyncio.timeout(CONNECT_TIMEOUT):
            _, connection = await opening
        try:
            connection.write(connect_packet(self.client_id, self.endpoint.username, self.endpoint.password))
            async with asyncio.timeout(CONNECT_TIMEOUT):
                session_present, code = await connection.connack
            if code != 0:
                raise ConnectionError(f"connection refused: {connack_reason(code)}")
            # Messages may arrive before the SUBACK (a resumed session): they are queued for this connection.
            self._connection = connection
            if release:
                connection.write(unsubscribe_packet(self.subscription))
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    await connection.unsuback
                log.info("resumed the session of %s and unsubscribed from %s", self.client_id, self.subscription)
                return connection
            # Subscribing again when the session was kept is harmless (idempotent) and covers a changed filter.
            connection.write(subscribe_packet(self.subscription))
            async with asyncio.timeout(CONNECT_TIMEOUT):
                granted = await connection.suback
            if granted == 0x80:
                raise ConnectionError(f"subscription to {self.subscription} refused")
        except BaseException:
            connection.abort()
            raise
        if self._paused or self._busy or self._stopping:  # the same rules as in _enqueue, which spared the SUBACK
            connection.pause()
        self.subscribed.set()
        if self.primary:
            metrics.SUBSCRIBED.set(1)
        log.info(
            "connected to %s (session %s), subscribed to %s",
            self.endpoint,
            "resumed" if session_present else "new",
            self.subscription,
        )
        if self.admit_devices is not None and (self._admitting is None or self._admitting.done()):
            self._admitting = asyncio.create_task(self._admit(self.admit_devices), name=f"{self.client_id} admit")
        return connection

    async def _admit(self, admit: Callable[[], Awaitable[int]]) -> None:
        """Let the held devices in now that this worker listens, retrying until the broker's admin answers: a
        device held for good would never publish again."""
        for attempt in itertools.count():
            try:
                admitted = await admit()
            except BrokerUnavailable as exc:
                delay = reconnect_delay(attempt + 1)
                log.warning("cannot let the held devices in yet (%s); trying again in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            if admitted:
                metrics.DEVICES_ADMITTED.inc(admitted)
                log.info("let %d held device login(s) in: the ingest subscription is in place", admitted)
            return

    async def _serve(self, connection: _Connection, consumer: asyncio.Task[None]) -> None:
        """Keep the connection alive until it is lost: PINGREQ when idle, abort when the broker stops answering."""
        while not connection.closed.done():
            watched: list[asyncio.Future[Any]] = [connection.closed, consumer]
            await asyncio.wait(watched, timeout=KEEPALIVE / 6, return_when=asyncio.FIRST_COMPLETED)
            if consumer.done():
                connection.abort()
                await asyncio.wait([connection.closed], timeout=CLOSE_TIMEOUT)
                return
            now = time.monotonic()
            if connection.ping_sent_at is not None and now - connection.ping_sent_at > KEEPALIVE and connection.reading:
                log.warning("no answer from %s for %d s; dropping the connection", self.endpoint, KEEPALIVE)
                connection.abort()
            elif now - connection.last_write >= KEEPALIVE / 2 and connection.write(PINGREQ):
                connection.ping_sent_at = connection.ping_sent_at or now  # the first unanswered one counts

    def _lost(self) -> None:
        self.subscribed.clear()
        if self.primary:
            metrics.SUBSCRIBED.set(0)

    def _enqueue(self, chunk: _Chunk) -> None:
        """Called once per read by the current connection's protocol."""
        self._chunks.append(chunk)
        self._queued += len(chunk.messages)
        self._queued_bytes += chunk.size
        self._ready.set()
        if self._queued > HIGH_WATER or self._queued_bytes > HIGH_WATER_BYTES:
            self._paused = True
        # While a batch is being stored, what arrives next waits in the socket buffer and is read in one go when the
        # batch is done: one read per batch instead of one per TCP segment, and no latency lost (the consumer could
        # not take it sooner). Not before the SUBACK (or UNSUBACK), which must not wait for a slow database.
        answered = chunk.connection.suback.done() or chunk.connection.unsuback.done()
        if (self._busy or self._paused) and answered:
            chunk.connection.pause()

    def _take(self) -> list[_Chunk]:
        """Everything queued, up to MAX_BATCH messages (a chunk is split if need be)."""
        taken: list[_Chunk] = []
        count = size = 0
        chunks = self._chunks
        while chunks and count < MAX_BATCH:
            chunk = chunks[0]
            room = MAX_BATCH - count
            if len(chunk.messages) > room:
                part = chunk.size * room // len(chunk.messages)  # the bytes go with the messages, pro rata
                taken.append(_Chunk(chunk.connection, chunk.messages[:room], chunk.acks[:room], part))
                del chunk.messages[:room], chunk.acks[:room]
                chunk.size -= part
                count += room
                size += part
            else:
                taken.append(chunks.popleft())
                count += len(chunk.messages)
                size += chunk.size
        self._queued -= count
        self._queued_bytes -= size
        if not chunks:
            self._ready.clear()
        return taken

    async def _consume(self) -> None:
        while True:
            await self._ready.wait()
            taken = self._take()
            batch = taken[0].messages if len(taken) == 1 else [m for chunk in taken for m in chunk.messages]
            if self.primary:
                metrics.QUEUE_DEPTH.set(self._queued)
                metrics.IN_FLIGHT.set(len(batch))
            self._busy, self._batch_size = True, len(batch)
            try:
                await self._store(batch)
            finally:
                self._busy, self._batch_size = False, 0
            self._acknowledge(taken)
            self._stored += len(batch)
            if self.primary:
                metrics.IN_FLIGHT.set(0)
            if self._stopping:
                if not self._queued:
                    self._drained.set()
                continue  # reading stays paused
            if self._paused and self._queued < LOW_WATER and self._queued_bytes < LOW_WATER_BYTES:
                self._paused = False
            if not self._paused and self._connection is not None:
                self._connection.resume()

    async def release(self, quiet: float = RELEASE_QUIET) -> int:
        """Give the share of a worker that is gone back to the live ones: resume its session (this worker's client
        id), unsubscribe from the shared subscription, store and acknowledge every message the session held, then
        disconnect. Returns how many messages were stored.

        Once the broker has answered the UNSUBSCRIBE nothing new is queued to the session, so the queue only
        shrinks; it is empty once nothing was read for `quiet` seconds with nothing left to store. The session
        stays, holding no subscription: a worker that comes back with this client id subscribes again. A session
        that expired instead (MQTT 5 session expiry, persistent_client_expiration) would take its queue with it.
        """
        consumer = asyncio.create_task(self._consume(), name=f"{self.client_id} release")
        stored_before = self._stored
        try:
            connection = await self._open(release=True)
            try:
                while self._queued or self._busy or time.monotonic() - connection.last_read < quiet:
                    watched: list[asyncio.Future[Any]] = [connection.closed, consumer]
                    await asyncio.wait(watched, timeout=quiet / 4, return_when=asyncio.FIRST_COMPLETED)
                    if consumer.done():
                        consumer.result()
                    if connection.closed.done():
                        raise ConnectionError(f"the broker closed the session of {self.client_id} while releasing it")
            finally:
                await connection.close(graceful=True)
        finally:
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer
        return self._stored - stored_before

    async def drain(self, timeout: float) -> int:
        """Graceful stop, first half: read nothing more, store and acknowledge what was read, for up to `timeout`
        seconds (what SIGTERM leaves before the termination grace period ends). Returns how many messages were
        read but not stored: the broker delivers them again. Cancelling `run` then disconnects."""
        self._stopping = True
        if self._connection is not None:
            self._connection.pause()
        if self._queued or self._busy:
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), timeout)
        return self._queued + self._batch_size

    def _acknowledge(self, taken: list[_Chunk]) -> None:
        """One write for the whole batch; packet ids of an earlier connection mean nothing on the current one."""
        current = self._connection
        if len(taken) == 1:
            acks = taken[0].acks if taken[0].connection is current else []
        else:
            acks = [a for chunk in taken if chunk.connection is current for a in chunk.acks]
        if acks and current is not None:
            current.write(puback_packets(acks))

    async def _store(self, batch: list[Message]) -> None:
        """Store the batch, waiting for the database as long as it takes: unstored means unacknowledged.

        Only unavailability is retried as a whole (the pipeline isolates the messages a database refuses for good);
        a deadlock or serialization failure lost to another worker is retried at once, after a random pause of up
        to CONTENTION_PAUSE so that the two do not collide again.
        """
        attempt = 0
        while True:
            try:
                await self.pipeline.handle(batch)
                return
            except StorageContention as exc:
                log.info("lost a race with another writer (%s); retrying %d messages", exc, len(batch))
                await asyncio.sleep(random.uniform(0, CONTENTION_PAUSE))
            except StorageUnavailable as exc:
                delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
                log.warning("storage unavailable (%s); retrying %d messages in %.1f s", exc, len(batch), delay)
                attempt += 1
                await asyncio.sleep(delay)
