"""The storage ports: what the rest of the code needs from a database, one port per aggregate.

Services, ingestion, analytics, alerting and the notifier receive these ports, never an adapter. The adapters (SQLite
and PostgreSQL, side by side in `storage.sql`) are chosen and built in `bootstrap.py`. Every method reading tenant
data takes the organization: there is no unscoped query, except the ones named for platform operators.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from koprogo_iot.domain.alerts import AlertDecision, AlertSeverity, AlertStatus, AlertType, IoTAlert
from koprogo_iot.domain.audit import AuditAction, AuditEntity, AuditEvent
from koprogo_iot.domain.bacnet import BacnetPoint
from koprogo_iot.domain.consumption import Point
from koprogo_iot.domain.credentials import DeviceCredential
from koprogo_iot.domain.dead_letters import DeadLetter
from koprogo_iot.domain.devices import DeviceSighting
from koprogo_iot.domain.integrations import IntegrationStatus, LnsIntegration
from koprogo_iot.domain.ista import IstaMeter, IstaReading
from koprogo_iot.domain.notices import (
    AlertContext,
    Drafter,
    Notification,
    NotificationRoute,
    NotificationSettings,
    Status,
)
from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.domain.rollups import CounterRow, GaugeRow, Rollups, Verification
from koprogo_iot.domain.rules import OrganizationRules, Partial
from koprogo_iot.domain.sensors import IoTSensor, SensorType
from koprogo_iot.domain.tenancy import Building, Channel, Organization, Unit, User

# --- values the ports exchange


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
class AuditFilter:
    entity_type: AuditEntity | None = None
    entity_id: str | None = None
    actor_id: UUID | None = None
    action: AuditAction | None = None
    start: datetime | None = None  # on `at`: start included, end excluded
    end: datetime | None = None
    limit: int = 100


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


@dataclass(frozen=True, slots=True)
class IstaSaved:
    """What `IstaRepository.save` did with the readings it was given (positions in that list)."""

    imported: int
    duplicates: int
    conflicts: list[tuple[int, IstaReading]]  # (position, the reading stored instead): kept as stored


# --- the ports


class TenancyRepository(Protocol):
    """Organizations, buildings, units and users (the only writer of those tables)."""

    async def add_organization(self, organization: Organization) -> None: ...
    async def get_organization(self, organization_id: UUID) -> Organization: ...
    async def list_organizations(self) -> list[Organization]:
        """Every organization (platform operators, and the jobs that visit each one)."""
        ...

    async def set_raw_retention(self, organization_id: UUID, months: int | None) -> Organization:
        """Keep the organization's raw readings `months` months (None: the platform's setting); NotFound if no
        such organization."""
        ...

    async def add_building(self, building: Building) -> None: ...
    async def get_building(self, organization_id: UUID, building_id: UUID) -> Building: ...
    async def list_buildings(self, organization_id: UUID) -> list[Building]: ...
    async def add_unit(self, unit: Unit) -> None: ...
    async def get_unit(self, organization_id: UUID, unit_id: UUID) -> Unit: ...
    async def update_building(self, building: Building) -> None:
        """Its name and address."""
        ...

    async def update_unit(self, unit: Unit) -> None:
        """Its name and floor (a unit does not move to another building)."""
        ...

    async def list_units(self, organization_id: UUID, building_id: UUID | None = None) -> list[Unit]: ...
    async def add_user(self, user: User) -> None: ...
    async def get_user(self, organization_id: UUID, user_id: UUID) -> User: ...
    async def find_user_by_email(self, email: str) -> User | None:
        """Login: emails are unique across organizations."""
        ...

    async def list_users(self, organization_id: UUID) -> list[User]: ...
    async def set_contacts(
        self,
        organization_id: UUID,
        user_id: UUID,
        phone: str | None,
        push_topic: str | None,
        muted: frozenset[Channel] | None = None,
    ) -> User:
        """Where alerts reach the user, and the channels they muted (None: as they were)."""
        ...

    async def set_password(
        self, organization_id: UUID, user_id: UUID, password_hash: str, changed_at: datetime
    ) -> User: ...
    async def set_units(self, organization_id: UUID, user_id: UUID, unit_ids: frozenset[UUID]) -> User:
        """An owner's units, replacing those they had."""
        ...

    async def set_deactivated(self, organization_id: UUID, user_id: UUID, at: datetime | None) -> User:
        """Deactivate the user at `at`, or reactivate them (None)."""
        ...


class SensorRepository(Protocol):
    async def add(self, sensor: IoTSensor) -> None: ...
    async def get(self, organization_id: UUID, sensor_id: UUID) -> IoTSensor: ...
    async def find(self, organization_id: UUID, device_id: str, device_field: str = "") -> IoTSensor | None:
        """The sensor a device value belongs to: by manufacturer id, and field for multi-value devices."""
        ...

    async def find_many(self, keys: Sequence[tuple[UUID, str, str]]) -> dict[tuple[UUID, str, str], IoTSensor]:
        """`find` for many (organization, device id, device field) keys in one go: the sensors found, by key."""
        ...

    async def select(self, organization_id: UUID, where: SensorFilter = SensorFilter()) -> list[IoTSensor]: ...
    async def update(self, sensor: IoTSensor) -> None:
        """Store the configuration; the last-reading fields belong to ingestion and are left as they are."""
        ...

    async def delete(self, organization_id: UUID, sensor_id: UUID) -> None:
        """With its readings and alerts."""
        ...


class ReadingRepository(Protocol):
    async def ingest(
        self,
        batch: Sequence[Ingested],
        rejected: Sequence[DeadLetter] = (),
        sightings: Sequence[DeviceSighting] = (),
    ) -> list[Ingested]:
        """In one transaction: store the new readings, apply their alert decisions, move the sensors' last reading
        forward, mark their rollups stale, keep the rejected messages and what devices nobody reads said. Return
        the readings that were new (not redeliveries)."""
        ...

    async def recent(
        self,
        organization_id: UUID,
        sensor_id: UUID,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 1000,
    ) -> list[IoTReading]:
        """Newest first, `start` included and `end` excluded."""
        ...

    async def count(self, organization_id: UUID, sensor_id: UUID) -> int: ...


class DeadLetterRepository(Protocol):
    async def recent(
        self, organization_id: UUID | None, reason: str | None = None, limit: int = 100
    ) -> list[DeadLetter]:
        """Newest first; `organization_id` None lists every organization's (platform operators only)."""
        ...

    async def counts(self, organization_id: UUID | None) -> dict[str, int]:
        """Dead letters by reason (every organization's when None)."""
        ...


class DeviceRepository(Protocol):
    async def sightings(self, organization_id: UUID, building_id: UUID | None = None) -> list[DeviceSighting]:
        """Devices heard that no sensor fully reads, most recently heard first."""
        ...

    async def forget_before(self, cutoff: datetime) -> int:
        """Drop sightings not heard since `cutoff` (every organization's); return how many."""
        ...


class IntegrationRepository(Protocol):
    """Organizations' LoRaWAN network servers; passwords are stored encrypted and come back decrypted."""

    async def add(self, integration: LnsIntegration) -> None: ...
    async def get(self, organization_id: UUID, integration_id: UUID) -> LnsIntegration: ...
    async def select(self, organization_id: UUID) -> list[LnsIntegration]: ...
    async def update(self, integration: LnsIntegration) -> None:
        """Store what a person changes (configuration, password, enabled), not the workers' reports."""
        ...

    async def delete(self, organization_id: UUID, integration_id: UUID) -> None: ...
    async def enabled(self) -> list[LnsIntegration]:
        """Every organization's enabled integrations: what the ingest workers subscribe to."""
        ...

    async def report(
        self, integration_id: UUID, status: IntegrationStatus, error: str | None, last_message_at: datetime | None
    ) -> None:
        """A worker's news of the connection (a message time only moves the last one forward when given)."""
        ...


class CredentialRepository(Protocol):
    """Devices' MQTT logins (digests only: a password is never stored)."""

    async def add(self, credential: DeviceCredential) -> None: ...
    async def get(self, organization_id: UUID, credential_id: UUID) -> DeviceCredential: ...
    async def select(self, organization_id: UUID) -> list[DeviceCredential]:
        """The organization's credentials, revoked ones included, newest first."""
        ...

    async def update(self, credential: DeviceCredential) -> None:
        """Store a rotation or a revocation."""
        ...

    async def by_username(self, username: str) -> DeviceCredential | None:
        """The credential a client logs in with, revoked or not (the broker asks; no organization is known yet)."""
        ...

    async def active(self) -> list[DeviceCredential]:
        """Every organization's usable credentials: what the broker's configuration holds."""
        ...


class AlertRepository(Protocol):
    async def apply(self, decisions: Sequence[AlertDecision]) -> None:
        """Apply decisions taken outside ingestion (window rules), in order, in one transaction."""
        ...

    async def get(self, organization_id: UUID, alert_id: UUID) -> IoTAlert: ...
    async def select(self, organization_id: UUID, where: AlertFilter = AlertFilter()) -> list[IoTAlert]:
        """Newest first, at most `where.limit`."""
        ...

    async def statistics(self, organization_id: UUID, where: AlertFilter = AlertFilter()) -> AlertStatistics:
        """Statistics over the alerts `where` selects (its limit aside)."""
        ...

    async def acknowledge(
        self, organization_id: UUID, alert_id: UUID, user_id: UUID, note: str | None, at: datetime
    ) -> IoTAlert:
        """The first acknowledgment wins: a second one does not rewrite who acknowledged and when."""
        ...


class AlertRuleRepository(Protocol):
    """An organization's rule defaults per sensor type and per-sensor overrides, as the partial documents written."""

    async def all_type_defaults(self, organization_id: UUID) -> dict[SensorType, Partial]: ...
    async def get_type_defaults(self, organization_id: UUID, sensor_type: SensorType) -> Partial | None: ...
    async def put_type_defaults(
        self, organization_id: UUID, sensor_type: SensorType, document: object, at: datetime | None = None
    ) -> Partial:
        """Replace the type's defaults with `document` (raises `InvalidValue` naming the faulty field)."""
        ...

    async def delete_type_defaults(self, organization_id: UUID, sensor_type: SensorType) -> bool: ...
    async def get_override(self, organization_id: UUID, sensor_id: UUID) -> Partial | None:
        """The sensor's override, None if it has none; `NotFound` if the organization has no such sensor."""
        ...

    async def put_override(
        self, organization_id: UUID, sensor_id: UUID, document: object, at: datetime | None = None
    ) -> Partial: ...
    async def delete_override(self, organization_id: UUID, sensor_id: UUID) -> bool: ...
    async def overrides(
        self, organization_id: UUID, sensor_ids: Iterable[UUID] | None = None
    ) -> dict[UUID, Partial]: ...
    async def organization_rules(self, organization_id: UUID) -> OrganizationRules:
        """All of the organization's layers at once: ingestion caches them per organization."""
        ...


class NotificationRepository(Protocol):
    """Settings, routes and the outbox; `plan` and `claim_due` are safe with several notifiers at once."""

    async def get_settings(self, organization_id: UUID) -> NotificationSettings: ...
    async def save_settings(self, settings: NotificationSettings) -> NotificationSettings: ...
    async def list_routes(self, organization_id: UUID) -> list[NotificationRoute]: ...
    async def add_route(self, route: NotificationRoute) -> None:
        """`NotFound` when its building is not the organization's."""
        ...

    async def delete_route(self, organization_id: UUID, route_id: UUID) -> None: ...
    async def plan(
        self, now: datetime, draft: Drafter, default_reminder: timedelta, limit: int = 100
    ) -> list[AlertContext]:
        """Claim up to `limit` alerts needing a notice, write their drafted messages to the outbox and record the
        notice on each alert, in one transaction: an alert is announced once even if the process dies half-way.
        Returns what was announced (with its purpose)."""
        ...

    async def claim_due(self, now: datetime, lease: timedelta, limit: int = 100) -> list[Notification]:
        """Pending messages due at `now`, each leased until `now + lease` and its attempt counted."""
        ...

    async def backlog(self, now: datetime) -> int:
        """Messages due at `now` and not delivered yet (the outbox's backlog)."""
        ...

    async def mark_sent(self, message: Notification, at: datetime) -> None: ...
    async def mark_failed(self, message: Notification, error: str, retry_at: datetime | None) -> None:
        """A failed attempt: tried again at `retry_at`, or given up when None."""
        ...

    async def list_notifications(
        self, organization_id: UUID, alert_id: UUID | None = None, status: Status | None = None, limit: int = 100
    ) -> list[Notification]: ...


class IstaRepository(Protocol):
    async def meters(self, organization_id: UUID, building_id: UUID | None = None) -> list[IstaMeter]: ...
    async def get_meter(self, organization_id: UUID, meter_number: str) -> IstaMeter: ...
    async def readings(self, organization_id: UUID) -> dict[str, list[IstaReading]]:
        """Every reading of the organization, by meter number, in date order."""
        ...

    async def save(
        self,
        organization_id: UUID,
        new_meters: Sequence[IstaMeter],
        readings: Sequence[tuple[str, IstaReading]],
        links: Mapping[str, UUID],
    ) -> IstaSaved:
        """In one transaction: new meters, the (meter number, reading) pairs not stored yet, automatic links of
        unlinked meters. A reading contradicting a stored one is kept as stored (a correction is a person's
        decision, not a re-import's)."""
        ...

    async def link(self, organization_id: UUID, meter_number: str, sensor_id: UUID | None) -> None: ...


class AuditRepository(Protocol):
    """Who did what (the only writer of the audit table); events are never changed or deleted."""

    async def record(self, event: AuditEvent) -> None: ...
    async def select(self, organization_id: UUID, where: AuditFilter = AuditFilter()) -> list[AuditEvent]:
        """Newest first, at most `where.limit`."""
        ...


class BacnetPointRepository(Protocol):
    """The BACnet points the poller reads (the only writer of their table); a point goes with its sensor."""

    async def add(self, point: BacnetPoint) -> None:
        """`Conflict` when its sensor already has a point."""
        ...

    async def get(self, organization_id: UUID, point_id: UUID) -> BacnetPoint: ...
    async def select(self, organization_id: UUID, building_id: UUID | None = None) -> list[BacnetPoint]:
        """In the order they were created."""
        ...

    async def update(self, point: BacnetPoint) -> None: ...
    async def delete(self, organization_id: UUID, point_id: UUID) -> None: ...


class ReadingSource(Protocol):
    """Readings of some sensors of one organization around a period: raw, or rebuilt from rollups."""

    async def points(
        self,
        organization_id: UUID,
        sensor_ids: Sequence[UUID],
        start: datetime,
        end: datetime,
        rollup: Rollups | None = None,
    ) -> dict[UUID, list[Point]]:
        """Per sensor, its readings in [start, end) plus the last one before `start` and the first at/after `end`.

        The two edge readings let a counter's consumption be interpolated at the period's bounds; gauges ignore them.
        A counter's points before `start` also carry the state the counter rules had before its edge reading (the
        baseline since the last reset, on a point before it), so that consumption over them is the whole history's.
        Every requested sensor is a key, with an empty list when it has no reading. `rollup` says the caller's
        buckets all start and end on that rollup's bounds: the answer then comes from the rollups, a counter's
        points being a reset-free virtual index (`domain.rollups.virtual_index`); None reads the raw readings.
        """
        ...

    async def thinned_points(
        self, organization_id: UUID, sensor_ids: Sequence[UUID], start: datetime, end: datetime, resolution: timedelta
    ) -> dict[UUID, list[Point]]:
        """Per sensor, its readings in [start, end) thinned in the database to at most four per `resolution`-wide
        bucket (buckets laid from `start`): the first, the last, the lowest and the highest of each (the earliest
        on a tie), in time order; plus the last reading before `start` and the first at/after `end`, as `points`
        gives them (without a counter's seeded state). So at most 4 * ceil((end - start) / resolution) + 2 points
        per sensor, however often it reports: what the window alert rules read (`alerting/evaluator.py`).
        Every requested sensor is a key, with an empty list when it has no reading."""
        ...

    async def counter_rows(
        self, organization_id: UUID, sensor_ids: Sequence[UUID], start: datetime, end: datetime, rollup: Rollups
    ) -> dict[UUID, list[CounterRow]]:
        """Per counter, its rollup rows in [start, end) plus the row before and the row after, in time order: what
        `domain.rollups.rollup_results` turns into the reference's consumption per bucket."""
        ...

    async def gauge_rows(
        self, organization_id: UUID, sensor_id: UUID, start: datetime, end: datetime, rollup: Rollups
    ) -> list[GaugeRow]:
        """A gauge's rollup rows in [start, end), ordered."""
        ...

    async def raw_kept_from(self, organization_id: UUID) -> datetime | None:
        """The instant before which the organization's raw readings are gone (retention); None: all are kept."""
        ...


class RollupMaintenance(Protocol):
    async def refresh(self, limit: int = 5000) -> int:
        """Recompute the rollups of up to `limit` (sensor, hour) pairs new readings made stale; return how many."""
        ...

    async def rebuild(self, organization_id: UUID | None = None, sensor_ids: list[UUID] | None = None) -> int:
        """Recompute every rollup (of one organization, or all; of some sensors only) from the raw readings;
        return the hourly rows."""
        ...

    async def verify(
        self,
        organization_id: UUID | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        on_sensor: Callable[[int, int], None] | None = None,
    ) -> Verification:
        """Recompute the rollups of a period from the raw readings and list every stored row that differs."""
        ...


class LeaseRepository(Protocol):
    """Of all processes running a periodic job, one at a time does the work."""

    async def acquire(self, name: str, holder: str, now: datetime, ttl: timedelta) -> tuple[bool, datetime | None]:
        """Whether `holder` has the lease until `now + ttl`, and when the job last completed a run."""
        ...

    async def completed(self, name: str, holder: str, at: datetime) -> None: ...

    # Membership leases (ingest workers, `ingest/members.py`): held by their member, renewed while it lives.
    async def renew(self, name: str, holder: str, now: datetime, ttl: timedelta) -> None:
        """`holder` has the lease until `now + ttl`, whoever held it (a member always takes its own lease back)."""
        ...

    async def expired(self, prefix: str, now: datetime) -> list[str]:
        """Leases named `prefix...` that expired before `now` and were not `released` since."""
        ...

    async def released(self, name: str, holder: str, at: datetime) -> None:
        """What the expired lease stood for was dealt with by `holder` (which took it over) at `at`: not expired
        again until renewed."""
        ...


@dataclass(frozen=True, slots=True)
class TableSize:
    name: str  # a monthly partition of iot_readings is listed by itself, its parent in `part_of`
    rows: int  # PostgreSQL: the planner's estimate (exact after ANALYZE); SQLite: counted
    bytes: int | None  # table and its indexes; None where SQLite was built without its dbstat table
    part_of: str | None = None


@dataclass(frozen=True, slots=True)
class StorageReport:
    tables: list[TableSize]
    oldest_reading: datetime | None
    readings_last_day: int

    @property
    def reading_bytes(self) -> tuple[int, int | None]:
        """Rows and bytes of raw readings, partitions included."""
        parts = [t for t in self.tables if "iot_readings" in (t.name, t.part_of)]
        sizes = [t.bytes for t in parts]
        return sum(t.rows for t in parts), None if None in sizes else sum(s or 0 for s in sizes)

    @property
    def projected_bytes_per_month(self) -> int | None:
        """Raw readings' growth in 30 days at the last day's rate, at the bytes per row stored so far."""
        rows, size = self.reading_bytes
        if not rows or size is None:
            return None
        return round(self.readings_last_day * 30 * size / rows)


@dataclass(frozen=True, slots=True)
class RetentionRun:
    """What one retention run expired."""

    dropped_partitions: list[str]  # whole monthly partitions (PostgreSQL), oldest first
    deleted: dict[UUID, int]  # raw readings deleted row by row, per organization
    kept_from: dict[UUID, datetime]  # per organization, the instant before which its raw readings are gone


class DatabaseMaintenance(Protocol):
    async def migrate(self) -> list[str]:
        """Apply the migrations the database has not seen; return their names."""
        ...

    async def pending_migrations(self) -> list[str]:
        """The migrations shipped that the database has not seen (a query: it also tells the database answers)."""
        ...

    async def maintain_partitions(self, now: datetime) -> None:
        """Monthly partitions around `now` (PostgreSQL; nothing to do on SQLite)."""
        ...

    async def apply_retention(self, now: datetime, default_months: int) -> RetentionRun:
        """Expire raw readings older than each organization's retention (its own, else `default_months`) as of
        `now`; rollups are kept."""
        ...

    async def report(self, now: datetime) -> StorageReport:
        """What the database holds, table by table, and how fast raw readings grow."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Storage:
    """Every port over one database, as `bootstrap.open_storage` builds them."""

    tenancy: TenancyRepository
    sensors: SensorRepository
    readings: ReadingRepository
    dead_letters: DeadLetterRepository
    devices: DeviceRepository
    integrations: IntegrationRepository
    credentials: CredentialRepository
    alerts: AlertRepository
    alert_rules: AlertRuleRepository
    notifications: NotificationRepository
    ista: IstaRepository
    audit: AuditRepository
    source: ReadingSource
    rollups: RollupMaintenance
    leases: LeaseRepository
    maintenance: DatabaseMaintenance
    bacnet: BacnetPointRepository

    async def close(self) -> None:
        await self.maintenance.close()
