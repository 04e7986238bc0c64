"""Notification settings, routes and the delivery outbox, in portable SQL over `Database`.

Two steps, each safe with several notifier processes (every API replica runs one):
- `plan` claims the alerts people must hear about (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite has one writer),
  writes one outbox row per message and records what people were told on the alert, in one transaction: an alert
  is announced once even if the process dies half-way.
- `claim_due` takes pending messages whose time has come and leases them (pushes `next_attempt_at` past the send
  timeout, counting the attempt) so no other process sends them meanwhile; `mark_sent` / `mark_failed` settle them.
  A process that dies mid-send leaves the message to be sent again when the lease ends: at least once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

from koprogo_iot.domain.alerts import IoTAlert
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.errors import InvalidValue, NotFound
from koprogo_iot.domain.notices import (
    DEFAULT_REMINDER,
    MIN_REMINDER,
    Channel,
    NotificationRoute,
    Purpose,
    channels_document,
    notice_purpose,
    parse_channels,
)
from koprogo_iot.domain.sensors import IoTSensor
from koprogo_iot.domain.tenancy import Building, Role, Unit, User, check_phone, check_push_topic

# The store's row decoders and column lists: the notifier reads alerts and sensors exactly as the store does.
from koprogo_iot.storage.database import Database, Executor, Row
from koprogo_iot.storage.sql_store import (
    ALERT_COLUMNS,
    SENSOR_COLUMNS,
    SqlStore,
    alert_from_row,
    as_time,
    as_time_or_none,
    as_uuid,
    as_uuid_or_none,
    sensor_from_row,
)

Status = Literal["pending", "sent", "failed"]
_SENT_COLUMN = {Channel.EMAIL: "email_sent", Channel.SMS: "sms_sent", Channel.PUSH: "push_sent"}
_NOTIFICATION_COLUMNS = (
    "id, organization_id, alert_id, channel, recipient, purpose, subject, body, status, attempts, next_attempt_at, "
    "last_error, created_at, sent_at"
)
_ROUTE_COLUMNS = "id, organization_id, building_id, role, name, email, phone, push_topic, channels, created_at"


def _rank(column: str) -> str:
    return f"CASE {column} WHEN 'critical' THEN 2 WHEN 'warning' THEN 1 ELSE 0 END"


def _claim_alerts(dialect: str) -> str:
    """Alerts needing a notice (the SQL side of `notice_purpose`): $1 now, $2 default reminder (s), $3 limit."""
    reminder = (
        "COALESCE((SELECT s.reminder_interval_s FROM iot_notification_settings s "
        "WHERE s.organization_id = iot_alerts.organization_id), $2)"
    )
    if dialect == "postgres":
        due = f"notified_at <= $1::timestamptz - make_interval(secs => {reminder})"
    else:  # fixed-width UTC text: julianday() reads it, in days
        due = f"julianday(notified_at) <= julianday($1) - {reminder} / 86400.0"
    return (
        f"SELECT {ALERT_COLUMNS} FROM iot_alerts WHERE notified_at IS NULL OR (cleared_at IS NULL AND ("
        f"{_rank('severity')} > {_rank('notified_severity')} OR (acknowledged_at IS NULL "
        f"AND COALESCE(last_triggered_at, triggered_at) > notified_at AND {due}))) "
        "ORDER BY created_at LIMIT $3" + (" FOR UPDATE SKIP LOCKED" if dialect == "postgres" else "")
    )


def _claim_due(dialect: str) -> str:
    """Lease due messages: $1 now, $2 lease end, $3 limit."""
    lock = " FOR UPDATE SKIP LOCKED" if dialect == "postgres" else ""
    return (
        "UPDATE iot_notifications SET attempts = attempts + 1, next_attempt_at = $2 WHERE id IN ("
        "SELECT id FROM iot_notifications WHERE status = 'pending' AND next_attempt_at <= $1 "
        f"ORDER BY next_attempt_at LIMIT $3{lock}) RETURNING {_NOTIFICATION_COLUMNS}"
    )


@dataclass(frozen=True, slots=True)
class NotificationSettings:
    """An organization's providers (apprise URL templates with `{to}`; None: the platform's) and reminder pace."""

    organization_id: UUID
    email_url: str | None = None
    sms_url: str | None = None
    push_url: str | None = None
    reminder_interval: timedelta | None = None  # None: never configured, the platform's default applies
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.reminder_interval is not None and self.reminder_interval < MIN_REMINDER:
            raise InvalidValue(f"the reminder interval must be at least {MIN_REMINDER.total_seconds():.0f} s")

    def url(self, channel: Channel) -> str | None:
        return {Channel.EMAIL: self.email_url, Channel.SMS: self.sms_url, Channel.PUSH: self.push_url}[channel]


@dataclass(frozen=True, slots=True)
class Notification:
    """One message to one address on one channel: a row of the outbox."""

    organization_id: UUID
    alert_id: UUID
    channel: Channel
    recipient: str
    purpose: Purpose
    subject: str
    body: str
    status: Status = "pending"
    attempts: int = 0
    next_attempt_at: datetime = field(default_factory=utcnow)
    last_error: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    sent_at: datetime | None = None
    id: UUID = field(default_factory=uuid.uuid4)


@dataclass(frozen=True, slots=True)
class Draft:
    """A message `plan` is to write; with `error` it is written as failed at once (e.g. no provider)."""

    channel: Channel
    recipient: str
    subject: str
    body: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class AlertContext:
    """What the notice about an alert is made of, read in the transaction that claimed it."""

    alert: IoTAlert
    purpose: Purpose
    sensor: IoTSensor
    building: Building
    unit: Unit | None
    routes: list[NotificationRoute]  # the organization's, every building
    users: list[User]  # the organization's
    settings: NotificationSettings


Drafter = Callable[[AlertContext], Sequence[Draft]]


def _settings(row: Row) -> NotificationSettings:
    return NotificationSettings(
        organization_id=as_uuid(row["organization_id"]), email_url=row["email_url"], sms_url=row["sms_url"],
        push_url=row["push_url"], reminder_interval=timedelta(seconds=row["reminder_interval_s"]),
        updated_at=as_time(row["updated_at"]),
    )  # fmt: skip


def _route(row: Row) -> NotificationRoute:
    return NotificationRoute(
        id=as_uuid(row["id"]), organization_id=as_uuid(row["organization_id"]),
        building_id=as_uuid_or_none(row["building_id"]), role=None if row["role"] is None else Role(row["role"]),
        name=row["name"], email=row["email"], phone=row["phone"], push_topic=row["push_topic"],
        channels=parse_channels(json.loads(row["channels"])), created_at=as_time(row["created_at"]),
    )  # fmt: skip


def _notification(row: Row) -> Notification:
    return Notification(
        id=as_uuid(row["id"]), organization_id=as_uuid(row["organization_id"]), alert_id=as_uuid(row["alert_id"]),
        channel=Channel(row["channel"]), recipient=row["recipient"], purpose=row["purpose"], subject=row["subject"],
        body=row["body"], status=row["status"], attempts=row["attempts"],
        next_attempt_at=as_time(row["next_attempt_at"]), last_error=row["last_error"],
        created_at=as_time(row["created_at"]), sent_at=as_time_or_none(row["sent_at"]),
    )  # fmt: skip


def _placeholders(count: int, start: int = 1) -> str:
    return ", ".join(f"${i}" for i in range(start, start + count))


async def _by_ids(tx: Executor, sql: str, ids: Iterable[UUID]) -> list[Row]:
    """`sql` with `{ids}` standing for a placeholder list of the distinct ids."""
    distinct = sorted(set(ids), key=str)
    if not distinct:
        return []
    return await tx.fetch(sql.format(ids=_placeholders(len(distinct))), *distinct)


async def _users(tx: Executor, organization_ids: set[UUID]) -> list[User]:
    rows = await _by_ids(
        tx,
        "SELECT id, organization_id, email, full_name, role, password_hash, created_at, phone, push_topic "
        "FROM users WHERE organization_id IN ({ids}) ORDER BY email",
        organization_ids,
    )
    links = await _by_ids(
        tx,
        "SELECT uu.user_id, uu.unit_id FROM user_units uu JOIN users u ON u.id = uu.user_id "
        "WHERE u.organization_id IN ({ids})",
        organization_ids,
    )
    units: dict[UUID, set[UUID]] = {}
    for link in links:
        units.setdefault(as_uuid(link["user_id"]), set()).add(as_uuid(link["unit_id"]))
    return [
        User(
            id=as_uuid(r["id"]),
            organization_id=as_uuid(r["organization_id"]),
            email=r["email"],
            full_name=r["full_name"],
            role=Role(r["role"]),
            password_hash=r["password_hash"],
            unit_ids=frozenset(units.get(as_uuid(r["id"]), ())),
            created_at=as_time(r["created_at"]),
            phone=r["phone"],
            push_topic=r["push_topic"],
        )  # fmt: skip
        for r in rows
    ]


class NotifyRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    @classmethod
    def over(cls, store: object) -> NotifyRepository:
        """The repository over the platform's store, which must be an SQL one."""
        if not isinstance(store, SqlStore):
            raise TypeError(f"notifications need an SQL store, not {type(store).__name__}")
        return cls(store.db)

    # --- settings

    async def get_settings(self, organization_id: UUID) -> NotificationSettings:
        row = await self.db.fetchrow(
            "SELECT * FROM iot_notification_settings WHERE organization_id = $1", organization_id
        )
        return NotificationSettings(organization_id) if row is None else _settings(row)

    async def save_settings(self, settings: NotificationSettings) -> NotificationSettings:
        """Store the organization's settings (no reminder interval: the table's default, four hours)."""
        reminder = settings.reminder_interval or DEFAULT_REMINDER
        now = utcnow()
        await self.db.execute(
            "INSERT INTO iot_notification_settings (organization_id, email_url, sms_url, push_url, "
            "reminder_interval_s, updated_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (organization_id) DO UPDATE "
            "SET email_url = excluded.email_url, sms_url = excluded.sms_url, push_url = excluded.push_url, "
            "reminder_interval_s = excluded.reminder_interval_s, updated_at = excluded.updated_at",
            settings.organization_id, settings.email_url, settings.sms_url, settings.push_url,
            int(reminder.total_seconds()), now,
        )  # fmt: skip
        return await self.get_settings(settings.organization_id)

    # --- routes

    async def list_routes(self, organization_id: UUID) -> list[NotificationRoute]:
        rows = await self.db.fetch(
            f"SELECT {_ROUTE_COLUMNS} FROM iot_notification_routes WHERE organization_id = $1 ORDER BY created_at, id",
            organization_id,
        )
        return [_route(r) for r in rows]

    async def add_route(self, route: NotificationRoute) -> None:
        if route.building_id is not None:
            found = await self.db.fetchrow(
                "SELECT id FROM buildings WHERE organization_id = $1 AND id = $2",
                route.organization_id, route.building_id,
            )  # fmt: skip
            if found is None:
                raise NotFound(f"building {route.building_id} not found")
        await self.db.execute(
            f"INSERT INTO iot_notification_routes ({_ROUTE_COLUMNS}) VALUES ({_placeholders(10)})",
            route.id, route.organization_id, route.building_id, route.role, route.name, route.email, route.phone,
            route.push_topic, json.dumps(channels_document(route.channels)), route.created_at,
        )  # fmt: skip

    async def delete_route(self, organization_id: UUID, route_id: UUID) -> None:
        deleted = await self.db.execute(
            "DELETE FROM iot_notification_routes WHERE organization_id = $1 AND id = $2", organization_id, route_id
        )
        if not deleted:
            raise NotFound(f"notification route {route_id} not found")

    # --- users' contacts

    async def set_contacts(
        self, organization_id: UUID, user_id: UUID, phone: str | None, push_topic: str | None
    ) -> None:
        changed = await self.db.execute(
            "UPDATE users SET phone = $3, push_topic = $4 WHERE organization_id = $1 AND id = $2",
            organization_id, user_id, check_phone(phone), check_push_topic(push_topic),
        )  # fmt: skip
        if not changed:
            raise NotFound(f"user {user_id} not found")

    # --- planning: alerts → outbox

    async def plan(
        self, now: datetime, draft: Drafter, default_reminder: timedelta, limit: int = 100
    ) -> list[AlertContext]:
        """Claim up to `limit` alerts needing a notice, write their messages, record the notice on each alert.

        Returns what was announced (with its purpose), for the live bus.
        """
        async with self.db.transaction() as tx:
            rows = await tx.fetch(_claim_alerts(tx.dialect), now, int(default_reminder.total_seconds()), limit)
            if not rows:
                return []
            contexts, orphans = await self._contexts(tx, [alert_from_row(r) for r in rows], now, default_reminder)
            for context in contexts:
                await self._write(tx, context, draft(context), now)
            # An alert whose sensor is gone has nothing to say: it is marked as told, so it is not claimed again.
            for alert in orphans:
                await self._told(tx, alert, now)
        return contexts

    @staticmethod
    async def _told(tx: Executor, alert: IoTAlert, now: datetime) -> None:
        await tx.execute(
            "UPDATE iot_alerts SET notified_at = $2, notified_severity = $3 WHERE id = $1",
            alert.id,
            now,
            alert.severity,
        )

    async def _contexts(
        self, tx: Executor, alerts: list[IoTAlert], now: datetime, default_reminder: timedelta
    ) -> tuple[list[AlertContext], list[IoTAlert]]:
        """The context of each alert due for a notice, and the alerts whose sensor or building is gone."""
        orgs = {a.organization_id for a in alerts}
        settings = {
            s.organization_id: s
            for s in map(
                _settings,
                await _by_ids(tx, "SELECT * FROM iot_notification_settings WHERE organization_id IN ({ids})", orgs),
            )
        }
        sensors = {
            s.id: s
            for s in map(
                sensor_from_row,
                await _by_ids(
                    tx,
                    f"SELECT {SENSOR_COLUMNS} FROM iot_sensors WHERE id IN ({{ids}})",
                    (a.sensor_id for a in alerts),
                ),
            )  # fmt: skip
        }
        buildings = {
            b.id: b
            for b in map(
                SqlStore.building_from_row,
                await _by_ids(tx, "SELECT * FROM buildings WHERE id IN ({ids})", (a.building_id for a in alerts)),
            )  # fmt: skip
        }
        units = {
            u.id: u
            for u in map(
                SqlStore.unit_from_row,
                await _by_ids(
                    tx, "SELECT * FROM units WHERE id IN ({ids})", (a.unit_id for a in alerts if a.unit_id is not None)
                ),
            )  # fmt: skip
        }
        routes: dict[UUID, list[NotificationRoute]] = {org: [] for org in orgs}
        for row in await _by_ids(
            tx,
            f"SELECT {_ROUTE_COLUMNS} FROM iot_notification_routes WHERE organization_id IN ({{ids}}) "
            "ORDER BY created_at, id",
            orgs,
        ):
            route = _route(row)
            routes[route.organization_id].append(route)
        users: dict[UUID, list[User]] = {org: [] for org in orgs}
        for user in await _users(tx, orgs):
            users[user.organization_id].append(user)
        contexts, orphans = [], []
        for alert in alerts:
            org_settings = settings.get(alert.organization_id, NotificationSettings(alert.organization_id))
            purpose = notice_purpose(alert, now, org_settings.reminder_interval or default_reminder)
            sensor, building = sensors.get(alert.sensor_id), buildings.get(alert.building_id)
            if sensor is None or building is None:
                orphans.append(alert)
                continue
            if purpose is None:  # the SQL filter let it through at a boundary: next round decides
                continue
            unit = None if alert.unit_id is None else units.get(alert.unit_id)
            contexts.append(
                AlertContext(
                    alert,
                    purpose,
                    sensor,
                    building,
                    unit,
                    routes[alert.organization_id],
                    users[alert.organization_id],
                    org_settings,
                )  # fmt: skip
            )
        return contexts, orphans

    async def _write(self, tx: Executor, context: AlertContext, drafts: Sequence[Draft], now: datetime) -> None:
        alert = context.alert
        for d in drafts:
            message = Notification(
                organization_id=alert.organization_id, alert_id=alert.id, channel=d.channel, recipient=d.recipient,
                purpose=context.purpose, subject=d.subject, body=d.body, status="pending" if d.error is None else
                "failed", next_attempt_at=now, last_error=d.error, created_at=now,
            )  # fmt: skip
            await tx.execute(
                f"INSERT INTO iot_notifications ({_NOTIFICATION_COLUMNS}) VALUES ({_placeholders(14)})",
                message.id, message.organization_id, message.alert_id, message.channel, message.recipient,
                message.purpose, message.subject, message.body, message.status, message.attempts,
                message.next_attempt_at, message.last_error, message.created_at, message.sent_at,
            )  # fmt: skip
        await self._told(tx, alert, now)

    # --- delivery

    async def claim_due(self, now: datetime, lease: timedelta, limit: int = 100) -> list[Notification]:
        """Pending messages due at `now`, each leased until `now + lease` and its attempt counted."""
        async with self.db.transaction() as tx:
            rows = await tx.fetch(_claim_due(tx.dialect), now, now + lease, limit)
        return sorted((_notification(r) for r in rows), key=lambda n: (n.next_attempt_at, n.created_at))

    async def mark_sent(self, message: Notification, at: datetime) -> None:
        async with self.db.transaction() as tx:
            await tx.execute(
                "UPDATE iot_notifications SET status = 'sent', sent_at = $2, last_error = NULL WHERE id = $1",
                message.id, at,
            )  # fmt: skip
            await tx.execute(f"UPDATE iot_alerts SET {_SENT_COLUMN[message.channel]} = $2 WHERE id = $1",
                             message.alert_id, True)  # fmt: skip

    async def mark_failed(self, message: Notification, error: str, retry_at: datetime | None) -> None:
        """Record a failed attempt: tried again at `retry_at`, or given up when None."""
        if retry_at is None:
            await self.db.execute(
                "UPDATE iot_notifications SET status = 'failed', last_error = $2 WHERE id = $1", message.id, error
            )
        else:
            await self.db.execute(
                "UPDATE iot_notifications SET last_error = $2, next_attempt_at = $3 WHERE id = $1",
                message.id, error, retry_at,
            )  # fmt: skip

    # --- the outbox, for operators

    async def list_notifications(
        self, organization_id: UUID, alert_id: UUID | None = None, status: Status | None = None, limit: int = 100
    ) -> list[Notification]:
        """Newest first."""
        clauses = ["organization_id = $1"]
        args: list[object] = [organization_id]
        for column, value in (("alert_id", alert_id), ("status", status)):
            if value is not None:
                args.append(value)
                clauses.append(f"{column} = ${len(args)}")
        args.append(limit)
        rows = await self.db.fetch(
            f"SELECT {_NOTIFICATION_COLUMNS} FROM iot_notifications WHERE {' AND '.join(clauses)} "
            f"ORDER BY created_at DESC, id LIMIT ${len(args)}",
            *args,
        )
        return [_notification(r) for r in rows]
