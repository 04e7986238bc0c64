"""Alerts raised by sensors, and the decision a reading takes about them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from koprogo_iot.domain.clock import utcnow


class AlertType(StrEnum):
    THRESHOLD_EXCEEDED = "threshold_exceeded"
    ANOMALY_DETECTED = "anomaly_detected"
    SENSOR_OFFLINE = "sensor_offline"
    LOW_BATTERY = "low_battery"
    SENSOR_FAULTY = "sensor_faulty"
    LEAK_DETECTED = "leak_detected"


class AlertSeverity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"  # somebody has to act


class AlertStatus(StrEnum):
    ACTIVE = "active"  # the condition still holds
    CLEARED = "cleared"  # the condition ended


@dataclass(frozen=True, slots=True)
class IoTAlert:
    """One occurrence of a condition on a sensor; repeats while active update it instead of adding alerts."""

    organization_id: UUID
    sensor_id: UUID
    building_id: UUID
    alert_type: AlertType
    severity: AlertSeverity
    message: str
    triggered_at: datetime
    unit_id: UUID | None = None
    reading_value: float | None = None
    threshold_value: float | None = None
    occurrences: int = 1
    last_triggered_at: datetime | None = None
    cleared_at: datetime | None = None
    email_sent: bool = False
    sms_sent: bool = False
    push_sent: bool = False
    acknowledged_by: UUID | None = None
    acknowledged_at: datetime | None = None
    resolution_note: str | None = None
    rule: str | None = None  # which rule raised it ("threshold", "night_flow", "stuck"...)
    notified_at: datetime | None = None  # when people were last told (first notice, escalation or reminder)
    notified_severity: AlertSeverity | None = None
    id: UUID = field(default_factory=uuid.uuid4)
    created_at: datetime = field(default_factory=utcnow)

    @property
    def status(self) -> AlertStatus:
        return AlertStatus.ACTIVE if self.cleared_at is None else AlertStatus.CLEARED

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_at is not None


@dataclass(frozen=True, slots=True)
class RaiseAlert:
    """Open an alert of this type, or update the active one (count, last value, severity)."""

    alert: IoTAlert


@dataclass(frozen=True, slots=True)
class ClearAlert:
    """End the active alert of this type on the sensor, if there is one (and `rule` raised it, when given)."""

    sensor_id: UUID
    alert_type: AlertType
    at: datetime
    rule: str | None = None


AlertDecision = RaiseAlert | ClearAlert
