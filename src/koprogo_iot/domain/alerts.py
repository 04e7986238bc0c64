"""Alerts raised by sensors, the decisions that raise and clear them, and their lifecycle.

One active alert per (sensor, alert type): a raise opens it or repeats it (counted, severity only rising), a clear
ends it. `apply_decisions` is that lifecycle; the store loads the active alerts, applies it, and writes the result.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Mapping
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
    BUILDING_BALANCE = "building_balance"  # a main meter counting more than its building's unit meters


class AlertSeverity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"  # somebody has to act

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {AlertSeverity.INFO: 0, AlertSeverity.WARNING: 1, AlertSeverity.CRITICAL: 2}


def escalated(current: AlertSeverity, incoming: AlertSeverity) -> AlertSeverity:
    """An active alert's severity after a repeat: it only ever rises (a critical leak stays critical until it
    clears, even if the next reading is merely a warning)."""
    return incoming if incoming.rank > current.rank else current


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

    @property
    def key(self) -> AlertKey:
        return self.sensor_id, self.alert_type

    def repeated(self, occurrence: IoTAlert) -> IoTAlert:
        """This active alert after `occurrence` of the same condition was raised again.

        Evidence already counted (a window rule judging the same readings again: the same `last_triggered_at`) is
        not a repeat; a reading arriving out of order is a repeat but does not move the last value.
        """
        seen, latest = self.last_triggered_at, occurrence.last_triggered_at
        counts = seen is None or (latest is not None and latest != seen)
        newer = seen is None or (latest is not None and latest > seen)
        return dataclasses.replace(
            self,
            occurrences=self.occurrences + 1 if counts else self.occurrences,
            last_triggered_at=latest if newer else seen,
            reading_value=occurrence.reading_value if newer else self.reading_value,
            threshold_value=occurrence.threshold_value,
            message=occurrence.message,
            rule=occurrence.rule,
            severity=escalated(self.severity, occurrence.severity),
        )


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
AlertKey = tuple[UUID, AlertType]  # (sensor, alert type): at most one active alert each


def decision_key(decision: AlertDecision) -> AlertKey:
    return decision.alert.key if isinstance(decision, RaiseAlert) else (decision.sensor_id, decision.alert_type)


@dataclass(frozen=True, slots=True)
class AlertChanges:
    """What `apply_decisions` did: stored alerts whose state changed, and new alerts (some maybe already cleared)."""

    changed: list[IoTAlert]
    opened: list[IoTAlert]


def apply_decisions(active: Mapping[AlertKey, IoTAlert], decisions: Iterable[AlertDecision]) -> AlertChanges:
    """Apply `decisions` in order to the `active` alerts (by key): a raise repeats the active alert of its key or
    opens one; a clear ends the active one (only if `rule` raised it, when given) and is otherwise a no-op."""
    current = dict(active)
    stored = {alert.id for alert in active.values()}
    touched: dict[UUID, IoTAlert] = {}  # latest state by id, in the order first touched
    for decision in decisions:
        key = decision_key(decision)
        alert = current.get(key)
        if isinstance(decision, ClearAlert):
            if alert is None or (decision.rule is not None and alert.rule != decision.rule):
                continue
            del current[key]
            touched[alert.id] = dataclasses.replace(alert, cleared_at=decision.at)
        else:
            alert = decision.alert if alert is None else alert.repeated(decision.alert)
            current[key] = touched[alert.id] = alert
    return AlertChanges(
        changed=[a for a in touched.values() if a.id in stored],
        opened=[a for a in touched.values() if a.id not in stored],
    )
