"""A fake MQTT 3.1.1 broker for the ingest worker's tests (an asyncio server): it answers the worker's CONNECT and
SUBSCRIBE like Mosquitto, then the test sends whatever bytes it likes, well formed or not, and reads the answers.

A real broker never sends a malformed packet, nor QoS 2 on a QoS 1 subscription, nor drops every connection at
once: this one does what the test tells it to.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

from koprogo_iot.mqtt_codec import encode_varint
from koprogo_iot.mqtt_url import MqttEndpoint

CONNECT, SUBSCRIBE = 0x10, 0x82
PUBACK, PUBREC, PUBCOMP = 0x40, 0x50, 0x70


def packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + encode_varint(len(body)) + body


def publish(topic: str, payload: bytes, qos: int = 1, packet_id: int = 1, dup: bool = False) -> bytes:
    raw = topic.encode()
    body = len(raw).to_bytes(2, "big") + raw + (packet_id.to_bytes(2, "big") if qos else b"") + payload
    return packet(0x30 | qos << 1 | (0x08 if dup else 0), body)


async def read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One packet from the worker: (first byte, body)."""
    first = (await reader.readexactly(1))[0]
    length, shift = 0, 0
    while True:
        digit = (await reader.readexactly(1))[0]
        length |= (digit & 0x7F) << shift
        if not digit & 0x80:
            break
        shift += 7
    return first, await reader.readexactly(length)


class Session:
    """One connection of the worker, once it has subscribed: what it sent since, and whether it is gone."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, client_id: str, at: float) -> None:
        self.writer = writer
        self.client_id = client_id
        self.opened_at = at  # loop time of the SUBACK
        self.received: list[tuple[int, bytes]] = []
        self.closed = asyncio.Event()  # the worker closed or dropped the connection (or we did)
        self._reading = asyncio.create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                self.received.append(await read_packet(reader))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.closed.set()

    def ids(self, kind: int) -> list[int]:
        """The packet ids of the acknowledgements of `kind` (PUBACK, PUBREC, PUBCOMP) received, in order."""
        return [int.from_bytes(body, "big") for first, body in self.received if first == kind]

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    def close(self) -> None:
        self.writer.close()


class FakeBroker:
    """`async with FakeBroker() as broker:` then `await broker.next_session()` for each connection the worker makes."""

    def __init__(self) -> None:
        self.sessions: asyncio.Queue[Session] = asyncio.Queue()
        self.opened: list[Session] = []
        self._server: asyncio.Server | None = None

    @property
    def endpoint(self) -> MqttEndpoint:
        assert self._server is not None
        return MqttEndpoint("127.0.0.1", self._server.sockets[0].getsockname()[1])

    async def __aenter__(self) -> FakeBroker:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for session in self.opened:
            session.close()
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    async def next_session(self, timeout: float = 10.0) -> Session:
        return await asyncio.wait_for(self.sessions.get(), timeout)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            first, body = await read_packet(reader)
            assert first == CONNECT, first
            # Protocol name (6 bytes), level, flags and keep-alive (4), then the client id.
            length = int.from_bytes(body[10:12], "big")
            client_id = body[12 : 12 + length].decode()
            writer.write(b"\x20\x02\x00\x00")  # CONNACK: accepted, no session
            first, body = await read_packet(reader)
            assert first == SUBSCRIBE, first
            writer.write(b"\x90\x03" + body[:2] + b"\x01")  # SUBACK: QoS 1 granted
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        session = Session(reader, writer, client_id, asyncio.get_running_loop().time())
        self.opened.append(session)
        await self.sessions.put(session)
