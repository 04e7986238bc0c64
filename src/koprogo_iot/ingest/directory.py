"""Which registered sensor a device value belongs to, cached: one database look-up per sensor, not per message."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from uuid import UUID

from koprogo_iot.domain.rules import AlertRules, effective_rules
from koprogo_iot.domain.sensors import IoTSensor
from koprogo_iot.storage.ports import Store

Key = tuple[UUID, str, str]  # organization, device id, device field
# The effective alert rules of some sensors of one organization (storage.alert_rules.AlertRulesRepository.rules_for).
RulesLoader = Callable[[UUID, Iterable[IoTSensor]], Awaitable[dict[UUID, AlertRules]]]


class SensorDirectory:
    """A time-bounded cache over `Store.find_sensor`.

    A sensor changed through the API (calibration, thresholds, status) is seen by ingestion within `ttl`
    seconds; an unknown device is looked up again after `negative_ttl`, so a sensor registered after its
    first messages starts being ingested quickly.
    """

    def __init__(
        self, store: Store, ttl: float = 30.0, negative_ttl: float = 5.0, rules: RulesLoader | None = None
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.loader = rules
        self._entries: dict[Key, tuple[float, IoTSensor | None]] = {}
        # Keyed by the sensor's version too: a sensor reloaded with new thresholds gets its rules recomputed.
        self._rules: dict[tuple[UUID, object], tuple[float, AlertRules]] = {}

    async def find(self, organization_id: UUID, device_id: str, device_field: str = "") -> IoTSensor | None:
        key = (organization_id, device_id, device_field)
        now = time.monotonic()
        cached = self._entries.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        sensor = await self.store.find_sensor(organization_id, device_id, device_field)
        self._entries[key] = (now + (self.ttl if sensor else self.negative_ttl), sensor)
        return sensor

    async def rules(self, sensor: IoTSensor) -> AlertRules:
        """The sensor's effective alert rules (organization defaults and overrides when a loader is set)."""
        key, now = (sensor.id, sensor.updated_at), time.monotonic()
        cached = self._rules.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        if self.loader is None:
            rules = effective_rules(sensor)
        else:
            rules = (await self.loader(sensor.organization_id, [sensor]))[sensor.id]
        if len(self._rules) >= 100_000:
            self._rules.clear()
        self._rules[key] = (now + self.ttl, rules)
        return rules

    def forget(self, sensor: IoTSensor) -> None:
        """Drop a sensor (or its rules) changed in this process (embedded mode), so the change applies at once."""
        self._entries.pop((sensor.organization_id, sensor.sensor_id, sensor.device_field), None)
        for key in [k for k in self._rules if k[0] == sensor.id]:
            del self._rules[key]
