"""The live bus across processes: one Redis Stream per organization, one entry per stored batch.

One XADD per batch, not per reading: redis-py costs ~50 µs per entry here (PERFORMANCE.md), too much at
10,000 readings/s. When Redis is down the bus stops trying for a while (a circuit breaker), so ingestion keeps
its pace and only the live view goes quiet.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any
from uuid import UUID

import msgspec
import redis.asyncio as redis
from redis.exceptions import RedisError

from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.live.bus import LiveReading

log = logging.getLogger(__name__)

STREAM_MAXLEN = 1_000  # entries (one per stored batch) kept per organization, trimmed approximately (cheap)
RETRY_AFTER = 5.0  # seconds without trying after Redis failed


def stream_key(organization_id: UUID) -> str:
    return f"koprogo:live:{organization_id}"


class RedisStreamBus:
    def __init__(self, url: str, timeout: float = 0.5) -> None:
        self._redis = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._encoder = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder(list[LiveReading])
        self._paused_until = 0.0
        self.failures = 0

    async def publish(self, organization_id: UUID, readings: Sequence[IoTReading]) -> None:
        if not readings or time.monotonic() < self._paused_until:
            return
        payload = self._encoder.encode([LiveReading.of(r) for r in readings])
        try:
            await self._redis.xadd(stream_key(organization_id), {"r": payload}, maxlen=STREAM_MAXLEN, approximate=True)
        except (RedisError, OSError) as exc:
            self.failures += 1
            self._paused_until = time.monotonic() + RETRY_AFTER
            log.warning("live bus: Redis unavailable (%s); live view paused for %.0f s", exc, RETRY_AFTER)

    async def subscribe(self, organization_id: UUID) -> AsyncIterator[list[LiveReading]]:
        key, last = stream_key(organization_id), "$"
        while True:
            try:
                answer: Any = await self._redis.xread({key: last}, block=1000, count=100)
            except (RedisError, OSError) as exc:
                log.warning("live bus: cannot read from Redis (%s); retrying", exc)
                await asyncio.sleep(RETRY_AFTER)
                continue
            for _, entries in answer:
                for entry_id, fields in entries:
                    last = entry_id
                    yield self._decoder.decode(fields[b"r"])

    async def close(self) -> None:
        await self._redis.aclose()
