"""Which registered sensor a device value belongs to, cached: one database look-up per sensor, not per message."""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from uuid import UUID

from koprogo_iot.domain.rules import AlertRules, OrganizationRules
from koprogo_iot.domain.sensors import IoTSensor
from koprogo_iot.storage.ports import SensorRepository

Key = tuple[UUID, str, str]  # organization, device id, device field
# An organization's stored rule layers (`AlertRuleRepository.organization_rules`).
RulesLoader = Callable[[UUID], Awaitable[OrganizationRules]]


class SensorDirectory:
    """A time-bounded cache over `SensorRepository.find` and the organizations' rule layers.

    A sensor changed through the API (calibration, thresholds, status) is seen by ingestion within `ttl`
    seconds; an unknown device is looked up again within `negative_ttl`, so a sensor registered after its first
    messages starts being ingested quickly.
    """

    def __init__(
        self, sensors: SensorRepository, rules: RulesLoader, ttl: float = 30.0, negative_ttl: float = 5.0
    ) -> None:
        self.sensors = sensors
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.loader = rules
        self._entries: dict[Key, tuple[float, IoTSensor | None]] = {}
        # Rule layers are loaded per organization (two queries), not per sensor: a fleet's sensors were all seen
        # at once and would all expire at once, stalling ingestion on thousands of look-ups.
        self._layers: dict[UUID, tuple[float, OrganizationRules]] = {}
        # A sensor's effective rules, for its version and the layers they came from.
        self._rules: dict[tuple[UUID, datetime], tuple[OrganizationRules, AlertRules]] = {}

    async def find(self, organization_id: UUID, device_id: str, device_field: str = "") -> IoTSensor | None:
        key = (organization_id, device_id, device_field)
        now = time.monotonic()
        cached = self._entries.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        sensor = await self.sensors.find(organization_id, device_id, device_field)
        self._remember(key, sensor, now)
        return sensor

    def _remember(self, key: Key, sensor: IoTSensor | None, now: float) -> None:
        # Each entry lives between half and all of its ttl: a fleet's sensors, seen within a second of each other,
        # expired together and were looked up one after another, 2,000 of them holding a batch for a second or
        # more every 30 s at 10,000 readings/s (bench live).
        ttl = self.ttl if sensor else self.negative_ttl
        self._entries[key] = (now + ttl * random.uniform(0.5, 1.0), sensor)  # noqa: S311 (not cryptographic)

    async def prefetch(self, keys: Iterable[Key]) -> None:
        """Look up at once those of `keys` not cached: after a start, a batch of a fleet's messages looked its
        sensors up one by one (2,000 queries, seconds of a batch at 10,000 readings/s, bench live)."""
        now = time.monotonic()
        missing = list({key for key in keys if (cached := self._entries.get(key)) is None or cached[0] <= now})
        if len(missing) < 2:
            return  # `find` looks a single one up as cheaply
        found = await self.sensors.find_many(missing)
        for key in missing:
            self._remember(key, found.get(key), now)

    async def rules(self, sensor: IoTSensor) -> AlertRules:
        """The sensor's effective alert rules (with its organization's defaults and overrides when loadable)."""
        layers = await self._organization_rules(sensor.organization_id)
        key = (sensor.id, sensor.updated_at)
        cached = self._rules.get(key)
        if cached is not None and cached[0] is layers:
            return cached[1]
        rules = layers.for_sensor(sensor)
        if len(self._rules) >= 100_000:
            self._rules.clear()
        self._rules[key] = (layers, rules)
        return rules

    async def _organization_rules(self, organization_id: UUID) -> OrganizationRules:
        now = time.monotonic()
        cached = self._layers.get(organization_id)
        if cached is None or cached[0] <= now:
            if len(self._layers) >= 10_000:
                self._layers.clear()
            cached = (now + self.ttl, await self.loader(organization_id))
            self._layers[organization_id] = cached
        return cached[1]

    def forget_ids(self, sensor_ids: set[UUID]) -> None:
        """Drop these sensors, whatever device they are cached under: the database refused readings of theirs
        (deleted by another process), so they are looked up again. A rare path: a scan is cheap enough."""
        stale = [key for key, (_, sensor) in self._entries.items() if sensor is not None and sensor.id in sensor_ids]
        for key in stale:
            del self._entries[key]

    def forget(self, sensor: IoTSensor) -> None:
        """Drop a sensor (or its rules) changed in this process (embedded mode), so the change applies at once."""
        self._entries.pop((sensor.organization_id, sensor.sensor_id, sensor.device_field), None)
        self._layers.pop(sensor.organization_id, None)
