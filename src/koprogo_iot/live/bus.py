"""The live bus port and what travels on it: stored readings, and critical alerts as people are told of them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Protocol
from uuid import UUID

import msgspec

from koprogo_iot.domain.alerts import IoTAlert
from koprogo_iot.domain.readings import IoTReading


class LiveReading(msgspec.Struct, frozen=True):
    """A stored reading as dashboards receive it."""

    sensor_id: UUID
    building_id: UUID
    unit_id: UUID | None
    timestamp: datetime
    value: float
    unit_of_measure: str
    quality: str
    is_anomaly: bool
    # Last: a dashboard's sensor card shows them; defaults keep entries written before they existed readable.
    battery_level: float | None = None
    signal_strength: int | None = None

    @classmethod
    def of(cls, r: IoTReading) -> LiveReading:
        return cls(
            r.sensor_id, r.building_id, r.unit_id, r.timestamp, r.value, r.unit_of_measure, r.quality, r.is_anomaly,
            r.battery_level, r.signal_strength,
        )  # fmt: skip


class LiveAlert(msgspec.Struct, frozen=True):
    """An alert as dashboards receive it, published once when people are first told (or told it escalated)."""

    id: UUID
    sensor_id: UUID
    building_id: UUID
    unit_id: UUID | None
    alert_type: str
    severity: str
    message: str
    triggered_at: datetime
    occurrences: int
    reading_value: float | None
    threshold_value: float | None
    purpose: str  # "opened" or "escalated"

    @classmethod
    def of(cls, a: IoTAlert, purpose: str) -> LiveAlert:
        return cls(
            a.id,
            a.sensor_id,
            a.building_id,
            a.unit_id,
            a.alert_type.value,
            a.severity.value,
            a.message,
            a.triggered_at,
            a.occurrences,
            a.reading_value,
            a.threshold_value,
            purpose,
        )


class LiveBus(Protocol):
    """One stream per organization. Publishing never raises: a live view that lags must not stop storage."""

    async def publish(self, organization_id: UUID, readings: Sequence[IoTReading]) -> None: ...

    def subscribe(self, organization_id: UUID) -> AsyncIterator[list[LiveReading]]:
        """Batches of readings published from now on, until the consumer stops iterating."""
        ...

    async def publish_alert(self, organization_id: UUID, alert: LiveAlert) -> None: ...

    def subscribe_alerts(self, organization_id: UUID) -> AsyncIterator[LiveAlert]:
        """Alerts published from now on, until the consumer stops iterating."""
        ...

    async def ping(self) -> str | None:
        """Why the bus cannot carry messages right now (for readiness); None when it can."""
        ...

    async def close(self) -> None: ...
