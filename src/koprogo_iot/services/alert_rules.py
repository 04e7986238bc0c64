"""Choosing alert rules: an organization's defaults per sensor type and per-sensor overrides, with tenancy checks.

A change is refused (`InvalidValue`) when it cannot combine with the other layers of a sensor it applies to, e.g.
a type maximum below a sensor's own minimum threshold: what was accepted is what detection uses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from koprogo_iot.domain.access import Principal
from koprogo_iot.domain.audit import AuditAction, AuditEntity
from koprogo_iot.domain.errors import InvalidValue
from koprogo_iot.domain.rules import (
    AlertRules,
    Partial,
    builtin_defaults,
    effective_rules,
    layer,
    layered,
    parse_partial,
)
from koprogo_iot.domain.sensors import IoTSensor, SensorType
from koprogo_iot.services.audit import AuditLog
from koprogo_iot.services.provisioning import Provisioning
from koprogo_iot.storage.ports import AlertRuleRepository, SensorFilter

# Called with each sensor whose effective rules changed, so that a cache of rules (ingestion's) forgets it at once.
RulesListener = Callable[[IoTSensor], None]


@dataclass(frozen=True, slots=True)
class TypeRules:
    sensor_type: SensorType
    builtin: AlertRules  # the platform's defaults for the type
    defaults: Partial | None  # the organization's partial document, None when it kept the built-in ones
    effective: AlertRules  # what a sensor of this type without override and thresholds gets


@dataclass(frozen=True, slots=True)
class SensorRules:
    """The layers of one sensor's rules and their result."""

    sensor: IoTSensor
    builtin: Partial
    type_defaults: Partial | None
    override: Partial | None
    effective: AlertRules


def _combine(sensor: IoTSensor, type_defaults: Mapping[str, Any] | None, override: Mapping[str, Any] | None) -> None:
    try:
        effective_rules(sensor, type_defaults, override)
    except InvalidValue as exc:
        raise InvalidValue(f"rules do not combine for sensor {sensor.sensor_id} ({sensor.id}): {exc}") from None


class AlertRuleSettings:
    def __init__(self, repository: AlertRuleRepository, provisioning: Provisioning, audit: AuditLog) -> None:
        self.repository = repository
        self.provisioning = provisioning
        self.audit = audit
        self.listeners: list[RulesListener] = []

    def _changed(self, sensors: list[IoTSensor]) -> None:
        for sensor in sensors:
            for listener in self.listeners:
                listener(sensor)

    # --- an organization's defaults per sensor type

    def _type_rules(self, sensor_type: SensorType, defaults: Partial | None) -> TypeRules:
        builtin = builtin_defaults(sensor_type)
        return TypeRules(sensor_type, layer(builtin), defaults, layer(builtin, defaults))

    async def type_rules(self, principal: Principal) -> list[TypeRules]:
        """Every sensor type with the built-in defaults and the organization's; any member may read them."""
        chosen = await self.repository.all_type_defaults(principal.organization_id)
        return [self._type_rules(t, chosen.get(t)) for t in SensorType]

    async def type_rule(self, principal: Principal, sensor_type: SensorType) -> TypeRules:
        return self._type_rules(
            sensor_type, await self.repository.get_type_defaults(principal.organization_id, sensor_type)
        )

    async def set_type_rules(self, principal: Principal, sensor_type: SensorType, document: object) -> TypeRules:
        principal.require_manager()
        partial = parse_partial(document)
        affected = await self._sensors_of_type(principal, sensor_type)
        overrides = await self.repository.overrides(principal.organization_id, (s.id for s in affected))
        for sensor in affected:
            _combine(sensor, partial, overrides.get(sensor.id))
        stored = await self.repository.put_type_defaults(principal.organization_id, sensor_type, partial)
        self._changed(affected)
        await self.audit.record(principal, AuditEntity.TYPE_RULES, sensor_type, AuditAction.CHANGED, {"rules": stored})
        return self._type_rules(sensor_type, stored)

    async def delete_type_rules(self, principal: Principal, sensor_type: SensorType) -> None:
        principal.require_manager()
        # Not checked against the sensors' overrides: going back to the built-in defaults is always allowed, and a
        # sensor whose override no longer combines is evaluated without it (see `domain.rules.layered`).
        affected = await self._sensors_of_type(principal, sensor_type)
        if await self.repository.delete_type_defaults(principal.organization_id, sensor_type):
            await self.audit.record(principal, AuditEntity.TYPE_RULES, sensor_type, AuditAction.DELETED)
        self._changed(affected)

    async def _sensors_of_type(self, principal: Principal, sensor_type: SensorType) -> list[IoTSensor]:
        sensors = await self.provisioning.sensors.select(principal.organization_id, SensorFilter())
        return [s for s in sensors if s.sensor_type is sensor_type]

    # --- one sensor's override

    async def sensor_rules(self, principal: Principal, sensor_id: UUID) -> SensorRules:
        """The layers of a sensor the caller may read; any other looks absent."""
        sensor = await self.provisioning.get_sensor(principal, sensor_id)
        defaults = await self.repository.get_type_defaults(principal.organization_id, sensor.sensor_type)
        override = await self.repository.get_override(principal.organization_id, sensor_id)
        effective = layered(sensor, defaults, override)
        return SensorRules(sensor, builtin_defaults(sensor.sensor_type), defaults, override, effective)

    async def set_sensor_override(self, principal: Principal, sensor_id: UUID, document: object) -> SensorRules:
        principal.require_manager()
        sensor = await self.provisioning.get_sensor(principal, sensor_id)
        partial = parse_partial(document)
        defaults = await self.repository.get_type_defaults(principal.organization_id, sensor.sensor_type)
        _combine(sensor, defaults, partial)
        stored = await self.repository.put_override(principal.organization_id, sensor_id, partial)
        self._changed([sensor])
        await self.audit.record(principal, AuditEntity.SENSOR_RULES, sensor_id, AuditAction.CHANGED, {"rules": stored})
        return await self.sensor_rules(principal, sensor_id)

    async def delete_sensor_override(self, principal: Principal, sensor_id: UUID) -> None:
        principal.require_manager()
        sensor = await self.provisioning.get_sensor(principal, sensor_id)
        if await self.repository.delete_override(principal.organization_id, sensor_id):
            await self.audit.record(principal, AuditEntity.SENSOR_RULES, sensor_id, AuditAction.DELETED)
        self._changed([sensor])
