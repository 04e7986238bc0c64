"""The storage port: what the services need from a database, whatever the database is."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from koprogo_iot.domain.alerts import AlertDecision, AlertSeverity, AlertStatus, AlertType, IoTAlert
from koprogo_iot.domain.dead_letters import DeadLetter
from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.domain.sensors import IoTSensor
from koprogo_iot.domain.tenancy import Building, Organization, Unit, User


@dataclass(frozen=True, slots=True)
class Ingested:
    """A reading to store with what it decided about alerts (applied only if the reading is new)."""

    reading: IoTReading
    decisions: tuple[AlertDecision, ...] = ()


@dataclass(frozen=True, slots=True)
class SensorFilter:
    """Which sensors of one organization to list; owners pass their units and buildings."""

    building_id: UUID | None = None
    unit_id: UUID | None = None
    # Owner scope: sensors of these units, plus the common sensors of these buildings.
    visible_units: frozenset[UUID] | None = None
    visible_buildings: frozenset[UUID] | None = None


@dataclass(frozen=True, slots=True)
class AlertFilter:
    status: AlertStatus | None = None
    acknowledged: bool | None = None
    sensor_id: UUID | None = None
    building_id: UUID | None = None
    sensor_ids: frozenset[UUID] | None = None  # owner scope: alerts of the sensors they may read
    limit: int = 100
    alert_type: AlertType | None = None
    severity: AlertSeverity | None = None
    start: datetime | None = None  # period on `triggered_at`: start included, end excluded
    end: datetime | None = None


@dataclass(frozen=True, slots=True)
class AlertStatistics:
    """Counts over the alerts a filter selects (triggered in its period), and how fast people acknowledge them."""

    total: int
    by_type: dict[AlertType, int]
    by_severity: dict[AlertSeverity, int]
    by_building: dict[UUID, int]
    active: int
    active_unacknowledged: int
    acknowledged: int
    mean_time_to_acknowledge_s: float | None  # None: nothing acknowledged; to the millisecond


class Store(Protocol):
    """Every method that reads tenant data takes the organization: there is no unscoped query."""

    async def close(self) -> None: ...

    # --- tenancy
    async def add_organization(self, organization: Organization) -> None: ...
    async def get_organization(self, organization_id: UUID) -> Organization: ...
    async def list_organizations(self) -> list[Organization]: ...
    async def add_building(self, building: Building) -> None: ...
    async def get_building(self, organization_id: UUID, building_id: UUID) -> Building: ...
    async def list_buildings(self, organization_id: UUID) -> list[Building]: ...
    async def add_unit(self, unit: Unit) -> None: ...
    async def get_unit(self, organization_id: UUID, unit_id: UUID) -> Unit: ...
    async def list_units(self, organization_id: UUID, building_id: UUID | None = None) -> list[Unit]: ...
    async def add_user(self, user: User) -> None: ...
    async def get_user(self, organization_id: UUID, user_id: UUID) -> User: ...
    async def find_user_by_email(self, email: str) -> User | None: ...
    async def list_users(self, organization_id: UUID) -> list[User]: ...

    # --- sensors
    async def add_sensor(self, sensor: IoTSensor) -> None: ...
    async def get_sensor(self, organization_id: UUID, sensor_id: UUID) -> IoTSensor: ...
    async def find_sensor(self, organization_id: UUID, device_id: str, device_field: str = "") -> IoTSensor | None:
        """The sensor a device value belongs to: by manufacturer id, and field for multi-value devices."""
        ...

    async def list_sensors(self, organization_id: UUID, where: SensorFilter = SensorFilter()) -> list[IoTSensor]: ...
    async def update_sensor(self, sensor: IoTSensor) -> None: ...
    async def delete_sensor(self, organization_id: UUID, sensor_id: UUID) -> None: ...

    # --- readings
    async def ingest(self, batch: Sequence[Ingested], rejected: Sequence[DeadLetter] = ()) -> list[Ingested]:
        """In one transaction: store the new readings, apply their alert decisions, update the sensors' last
        reading, and keep the rejected messages. Return the readings that were new (not redeliveries)."""
        ...

    async def list_readings(
        self,
        organization_id: UUID,
        sensor_id: UUID,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 1000,
    ) -> list[IoTReading]:
        """Newest first, `start` included and `end` excluded."""
        ...

    async def count_readings(self, organization_id: UUID, sensor_id: UUID) -> int: ...

    # --- dead letters
    async def list_dead_letters(
        self, organization_id: UUID | None, reason: str | None = None, limit: int = 100
    ) -> list[DeadLetter]:
        """Newest first; `organization_id` None lists every organization's (platform operators only)."""
        ...

    async def count_dead_letters(self, organization_id: UUID | None) -> dict[str, int]: ...

    # --- alerts
    async def apply_alert_decisions(self, organization_id: UUID, decisions: Sequence[AlertDecision]) -> None:
        """Apply decisions taken outside ingestion (window rules), in order, in one transaction."""
        ...

    async def get_alert(self, organization_id: UUID, alert_id: UUID) -> IoTAlert: ...
    async def list_alerts(self, organization_id: UUID, where: AlertFilter = AlertFilter()) -> list[IoTAlert]: ...
    async def alert_statistics(self, organization_id: UUID, where: AlertFilter = AlertFilter()) -> AlertStatistics:
        """Statistics over the alerts `where` selects (its limit aside)."""
        ...

    async def acknowledge_alert(
        self, organization_id: UUID, alert_id: UUID, user_id: UUID, note: str | None, at: datetime
    ) -> IoTAlert: ...
