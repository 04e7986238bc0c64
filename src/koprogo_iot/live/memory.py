"""The in-process live bus of the embedded mode."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from typing import Generic, TypeVar
from uuid import UUID

from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.live.bus import LiveAlert, LiveReading

SUBSCRIBER_BACKLOG = 1000  # batches; a subscriber this far behind loses the oldest (a dashboard wants the latest)
T = TypeVar("T")


class _Topic(Generic[T]):
    """The subscribers of one kind of message, per organization."""

    def __init__(self) -> None:
        self._subscribers: defaultdict[UUID, set[asyncio.Queue[T]]] = defaultdict(set)

    def listened(self, organization_id: UUID) -> bool:
        return bool(self._subscribers.get(organization_id))

    def put(self, organization_id: UUID, message: T) -> None:
        for queue in self._subscribers.get(organization_id, ()):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(message)

    async def subscribe(self, organization_id: UUID) -> AsyncIterator[T]:
        queue: asyncio.Queue[T] = asyncio.Queue(SUBSCRIBER_BACKLOG)
        self._subscribers[organization_id].add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            with contextlib.suppress(KeyError):
                self._subscribers[organization_id].remove(queue)

    def clear(self) -> None:
        self._subscribers.clear()


class MemoryBus:
    def __init__(self) -> None:
        self._readings: _Topic[list[LiveReading]] = _Topic()
        self._alerts: _Topic[LiveAlert] = _Topic()

    async def publish(self, organization_id: UUID, readings: Sequence[IoTReading]) -> None:
        if readings and self._readings.listened(organization_id):
            self._readings.put(organization_id, [LiveReading.of(r) for r in readings])

    def subscribe(self, organization_id: UUID) -> AsyncIterator[list[LiveReading]]:
        return self._readings.subscribe(organization_id)

    async def publish_alert(self, organization_id: UUID, alert: LiveAlert) -> None:
        self._alerts.put(organization_id, alert)

    def subscribe_alerts(self, organization_id: UUID) -> AsyncIterator[LiveAlert]:
        return self._alerts.subscribe(organization_id)

    async def ping(self) -> str | None:
        return None  # in-process: there is nothing to reach

    async def close(self) -> None:
        self._readings.clear()
        self._alerts.clear()
