"""The audit log: who created, changed or deleted what in an organization, and who acknowledged which alert.

Services write one event after each change they make (they are the one place changes are decided); syndics read
them back. An event's details say what changed (`{"field": [before, after]}`) but never a secret: a provider URL
or a password shows as changed, not as its value.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import datetime, timedelta
from enum import Enum, StrEnum
from typing import Any
from uuid import UUID

from koprogo_iot.domain.clock import utcnow


class AuditEntity(StrEnum):
    ORGANIZATION = "organization"
    BUILDING = "building"
    UNIT = "unit"
    USER = "user"
    SENSOR = "sensor"  # thresholds and calibration are fields of it
    TYPE_RULES = "type_rules"  # an organization's alert rules for a sensor type (entity id: the type)
    SENSOR_RULES = "sensor_rules"  # a sensor's alert rules override (entity id: the sensor)
    ALERT = "alert"
    NOTIFICATION_ROUTE = "notification_route"
    NOTIFICATION_SETTINGS = "notification_settings"  # entity id: the organization
    INTEGRATION = "integration"
    DEVICE_CREDENTIAL = "device_credential"  # issued, password rotated, revoked
    BACNET_POINT = "bacnet_point"


class AuditAction(StrEnum):
    CREATED = "created"
    CHANGED = "changed"
    DELETED = "deleted"
    ACKNOWLEDGED = "acknowledged"


@dataclass(frozen=True, slots=True)
class AuditEvent:
    organization_id: UUID  # whose entity it is (a superadmin may act on another organization's)
    actor_id: UUID
    entity_type: AuditEntity
    entity_id: str
    action: AuditAction
    details: Mapping[str, Any] = field(default_factory=dict)  # JSON: what changed, the note, never a secret
    at: datetime = field(default_factory=utcnow)
    id: UUID = field(default_factory=uuid.uuid4)


SECRET = "(secret)"  # how a secret's change is shown


def plain(value: object) -> Any:
    """`value` as JSON can hold it: ids, times and enums as text, durations in seconds, sets as sorted lists."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, UUID | datetime):
        return str(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, set | frozenset):
        return sorted(plain(v) for v in value)
    if isinstance(value, Mapping):
        return {str(plain(k)): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def differences(
    before: object, after: object, ignore: frozenset[str] = frozenset(), secret: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """`{field: [before, after]}` for the dataclass fields that differ; secrets show as changed only."""
    assert is_dataclass(before) and is_dataclass(after)
    found: dict[str, Any] = {}
    for f in fields(before):
        old, new = getattr(before, f.name), getattr(after, f.name)
        if f.name in ignore or old == new:
            continue
        found[f.name] = SECRET if f.name in secret else [plain(old), plain(new)]
    return found
