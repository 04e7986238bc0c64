"""The in-process live bus of the embedded mode."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from uuid import UUID

from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.live.bus import LiveReading

SUBSCRIBER_BACKLOG = 1000  # batches; a subscriber this far behind loses the oldest (a dashboard wants the latest)


class MemoryBus:
    def __init__(self) -> None:
        self._subscribers: defaultdict[UUID, set[asyncio.Queue[list[LiveReading]]]] = defaultdict(set)

    async def publish(self, organization_id: UUID, readings: Sequence[IoTReading]) -> None:
        if not readings or not self._subscribers.get(organization_id):
            return
        batch = [LiveReading.of(r) for r in readings]
        for queue in self._subscribers[organization_id]:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(batch)

    async def subscribe(self, organization_id: UUID) -> AsyncIterator[list[LiveReading]]:
        queue: asyncio.Queue[list[LiveReading]] = asyncio.Queue(SUBSCRIBER_BACKLOG)
        self._subscribers[organization_id].add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            with contextlib.suppress(KeyError):
                self._subscribers[organization_id].remove(queue)

    async def close(self) -> None:
        self._subscribers.clear()
