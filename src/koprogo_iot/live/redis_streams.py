"""The live bus across processes: one Redis Stream per organization, one entry per stored batch.

One XADD per batch, not per reading: redis-py costs ~50 µs per entry here (PERFORMANCE.md), too much at
10,000 readings/s. When Redis is down the bus stops trying for a while (a circuit breaker), so ingestion keeps
its pace and only the live view goes quiet.

Alerts travel on a stream of their own per organization: few entries, and a reader of readings never decodes one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, TypeVar
from uuid import UUID

import msgspec
import redis.asyncio as redis
from redis.exceptions import RedisError

from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.live.bus import LiveAlert, LiveReading

log = logging.getLogger(__name__)

STREAM_MAXLEN = 1_000  # entries (one per stored batch) kept per organization, trimmed approximately (cheap)
ALERT_STREAM_MAXLEN = 100
RETRY_AFTER = 5.0  # seconds without trying after Redis failed
READ_BLOCK_MS = 1000  # how long one XREAD waits for new entries
T = TypeVar("T")


def stream_key(organization_id: UUID) -> str:
    return f"koprogo:live:{organization_id}"


def alert_stream_key(organization_id: UUID) -> str:
    return f"koprogo:alerts:{organization_id}"


def _cancelling() -> bool:
    """Whether this task was asked to stop. redis-py (8.1) may swallow a cancellation that lands in a blocking XREAD
    and return an empty answer instead: a subscriber cancelled then would read on forever."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class RedisStreamBus:
    def __init__(self, url: str, timeout: float = 0.5) -> None:
        self._redis = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        # Readers block in XREAD: their socket must wait longer than the block, or every read ends in a timeout.
        self._reader = redis.Redis.from_url(
            url, socket_timeout=READ_BLOCK_MS / 1000 + timeout, socket_connect_timeout=timeout
        )
        self._encoder = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder(list[LiveReading])
        self._alert_decoder = msgspec.json.Decoder(LiveAlert)
        self._paused_until = 0.0
        self.failures = 0

    async def publish(self, organization_id: UUID, readings: Sequence[IoTReading]) -> None:
        if not readings or time.monotonic() < self._paused_until:
            return
        payload = self._encoder.encode([LiveReading.of(r) for r in readings])
        await self._add(stream_key(organization_id), payload, STREAM_MAXLEN)

    async def publish_alert(self, organization_id: UUID, alert: LiveAlert) -> None:
        await self._add(alert_stream_key(organization_id), self._encoder.encode(alert), ALERT_STREAM_MAXLEN)

    async def _add(self, key: str, payload: bytes, maxlen: int) -> None:
        if time.monotonic() < self._paused_until:
            return
        try:
            await self._redis.xadd(key, {"r": payload}, maxlen=maxlen, approximate=True)
        except (RedisError, OSError) as exc:
            self.failures += 1
            self._paused_until = time.monotonic() + RETRY_AFTER
            log.warning("live bus: Redis unavailable (%s); live view paused for %.0f s", exc, RETRY_AFTER)

    def subscribe(self, organization_id: UUID) -> AsyncIterator[list[LiveReading]]:
        return self._read(stream_key(organization_id), self._decoder)

    def subscribe_alerts(self, organization_id: UUID) -> AsyncIterator[LiveAlert]:
        return self._read(alert_stream_key(organization_id), self._alert_decoder)

    async def _read(self, key: str, decoder: msgspec.json.Decoder[T]) -> AsyncIterator[T]:
        # From the stream's newest entry at subscription, then from each entry read: reading from "$" each time
        # would lose what was added between two reads (and during a retry pause).
        last: Any = None
        while True:
            try:
                if last is None:
                    newest: Any = await self._reader.xrevrange(key, count=1)
                    last = newest[0][0] if newest else b"0-0"
                answer: Any = await self._reader.xread({key: last}, block=READ_BLOCK_MS, count=100)
            except (RedisError, OSError) as exc:
                if _cancelling():
                    raise asyncio.CancelledError from exc
                log.warning("live bus: cannot read from Redis (%s); retrying", exc)
                await asyncio.sleep(RETRY_AFTER)
                continue
            if _cancelling():
                raise asyncio.CancelledError
            for _, entries in answer:
                for entry_id, fields in entries:
                    last = entry_id
                    yield decoder.decode(fields[b"r"])

    async def ping(self) -> str | None:
        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            return f"Redis: {exc}"
        return None

    async def close(self) -> None:
        await self._redis.aclose()
        await self._reader.aclose()
