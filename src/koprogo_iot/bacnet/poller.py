"""The poller: reads the configured points at their intervals and publishes each value as a native reading.

One task per controller (address and expected device instance), so an unreachable controller only delays its own
points. The configuration is read again every `refresh_interval` seconds: a controller task picks up its new,
changed and removed points at once, a changed point is read again straight away. A point that gives no value is
logged when its state changes (failing, failing differently, recovered), not at every poll, and counted in the
metrics; nothing a controller answers stops the poller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from koprogo_iot.bacnet import metrics
from koprogo_iot.bacnet.outcomes import Failure, Outcome, PointReader, Result
from koprogo_iot.bacnet.publisher import ReadingPublisher
from koprogo_iot.domain.bacnet import BacnetPoint
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.sensors import SensorStatus
from koprogo_iot.periodic import every
from koprogo_iot.storage.ports import BacnetPointRepository, SensorFilter, SensorRepository

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Controller:
    address: str
    device_instance: int | None


@dataclass(frozen=True, slots=True)
class Target:
    """A point with the topic of its sensor."""

    point: BacnetPoint
    topic: str


def _describe(point: BacnetPoint) -> str:
    return f"point {point.id} ({point.address} {point.object_identifier} {point.property_identifier.value})"


class BacnetPoller:
    """Polls the points of one organization (of some of its buildings, or all) until cancelled.

    `refresh_interval`: seconds between two reads of the configuration. `speed` divides every polling interval: 1 in
    service; the tests run faster.
    """

    def __init__(
        self,
        points: BacnetPointRepository,
        sensors: SensorRepository,
        client: PointReader,
        publisher: ReadingPublisher,
        organization_id: UUID,
        building_ids: Sequence[UUID],
        refresh_interval: float,
        speed: float = 1.0,
    ) -> None:
        self.points = points
        self.sensors = sensors
        self.client = client
        self.publisher = publisher
        self.organization_id = organization_id
        self.building_ids = tuple(building_ids)
        self.refresh_interval = refresh_interval
        self.speed = speed
        self._targets: dict[Controller, list[Target]] = {}
        self._tasks: dict[Controller, asyncio.Task[None]] = {}
        self._wake: dict[Controller, asyncio.Event] = {}
        self._failures: dict[UUID, Failure] = {}  # points whose last read gave no value
        self._skipped: set[UUID] = set()  # points not polled because of their sensor (logged once)
        self._counts = (-1, -1)  # points and controllers polled, as last logged

    async def run(self) -> None:
        try:
            await every(self.refresh_interval, "BACnet configuration", self.reload)
        finally:
            for task in self._tasks.values():
                task.cancel()
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def reload(self) -> None:
        """Read the configuration; start, wake or stop the controller tasks accordingly."""
        targets = await self._load()
        self._targets = targets
        for controller in set(self._tasks) - set(targets):
            self._tasks.pop(controller).cancel()
            del self._wake[controller]
        for controller in targets:
            if controller in self._tasks:
                self._wake[controller].set()
            else:
                self._wake[controller] = asyncio.Event()
                self._tasks[controller] = asyncio.create_task(self._poll(controller), name=f"bacnet {controller}")
        polled = {t.point.id for group in targets.values() for t in group}
        self._failures = {k: v for k, v in self._failures.items() if k in polled}
        metrics.POINTS.set(len(polled))
        metrics.POINTS_FAILING.set(len(self._failures))
        if (len(polled), len(targets)) != self._counts:
            self._counts = (len(polled), len(targets))
            log.info("polling %d BACnet point(s) of %d controller(s)", *self._counts)

    async def _load(self) -> dict[Controller, list[Target]]:
        if self.building_ids:
            points = [p for b in self.building_ids for p in await self.points.select(self.organization_id, b)]
        else:
            points = await self.points.select(self.organization_id)
        sensors = {s.id: s for s in await self.sensors.select(self.organization_id, SensorFilter())}
        self._skipped &= {p.id for p in points}
        targets: dict[Controller, list[Target]] = {}
        for point in points:
            sensor = sensors.get(point.sensor_id)
            # A sensor switched off has its messages refused; one deleted takes its point along (a moment later).
            if sensor is None or sensor.status is SensorStatus.INACTIVE:
                if point.id not in self._skipped:
                    self._skipped.add(point.id)
                    log.info("%s not polled: its sensor %s is inactive or gone", _describe(point), point.sensor_id)
                continue
            self._skipped.discard(point.id)
            controller = Controller(point.address, point.device_instance)
            targets.setdefault(controller, []).append(Target(point, sensor.mqtt_topic))
        return targets

    async def _poll(self, controller: Controller) -> None:
        """Read the controller's due points, publish, and wait for the next due point or a configuration change."""
        clock = asyncio.get_running_loop().time
        due_at: dict[BacnetPoint, float] = {}  # by the point as configured: a changed point is another key
        wake = self._wake[controller]
        while True:
            targets, now = self._targets.get(controller, []), clock()
            # New points, and points changed since they were scheduled, are due now; removed points are forgotten.
            due_at = {t.point: due_at.get(t.point, now) for t in targets}
            due = [t for t in targets if due_at[t.point] <= now]
            if due:
                try:
                    await self._read(controller, due)
                except Exception:  # a bug must cost one poll of this controller, not the poller
                    log.exception("polling %s failed", controller.address)
                after = clock()
                for point in (t.point for t in due):
                    # Keep the cadence; a controller slower than an interval is read again as soon as it answered.
                    due_at[point] = max(due_at[point] + point.polling_interval / self.speed, after)
            wait = min(due_at.values(), default=math.inf) - clock()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=max(wait, 0) if math.isfinite(wait) else None)
            wake.clear()

    async def _read(self, controller: Controller, due: list[Target]) -> None:
        at = utcnow()  # the readings' timestamp: the poll time
        results = await self.client.read(controller.address, controller.device_instance, [t.point for t in due])
        for target, result in zip(due, results, strict=True):
            self._settle(target, result, at)
        metrics.POINTS_FAILING.set(len(self._failures))

    def _settle(self, target: Target, result: Result, at: datetime) -> None:
        """Publish the value, or record why there is none; log only when the point's state changes."""
        point = target.point
        if isinstance(result, float):
            value = point.value(result)
            if math.isfinite(value):
                self.publisher.publish(target.topic, at, value)
                metrics.READS.labels("ok").inc()
                if self._failures.pop(point.id, None) is not None:
                    log.info("%s recovered: %g published for sensor %s", _describe(point), value, point.sensor_id)
                return
            result = Failure(Outcome.NOT_NUMERIC, f"{result:g} times the scale {point.scale:g} is not a finite number")
        metrics.READS.labels(result.outcome.value).inc()
        if self._failures.get(point.id) != result:
            log.warning("%s for sensor %s: %s (%s)", _describe(point), point.sensor_id, result.detail, result.outcome)
        self._failures[point.id] = result
