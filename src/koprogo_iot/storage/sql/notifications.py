"""Notification settings, routes and the delivery outbox (`NotificationRepository`) in portable SQL.

Two steps, each safe with several notifier processes (every API replica may run one):
- `plan` claims the alerts people must hear about (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite has one writer),
  writes one outbox row per message and records the notice on the alert, in one transaction: an alert is
  announced once even if the process dies half-way.
- `claim_due` takes pending messages whose time has come and leases them (pushes `next_attempt_at` past the send
  timeout, counting the attempt) so no other process sends them meanwhile; `mark_sent` / `mark_failed` settle them.
  A process that dies mid-send leaves the message to be sent again when the lease ends: at least once.
The alerts' own columns are written through `storage.sql.alerts`, the table's one writer.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from uuid import UUID

from koprogo_iot.domain.alerts import IoTAlert
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.notices import (
    DEFAULT_REMINDER,
    AlertContext,
    Draft,
    Drafter,
    Notification,
    NotificationRoute,
    NotificationSettings,
    Status,
    channels_document,
    notice_purpose,
    parse_channels,
)
from koprogo_iot.domain.tenancy import User
from koprogo_iot.storage.sql import alerts, sensors, tenancy
from koprogo_iot.storage.sql.database import Database, Executor, Row
from koprogo_iot.storage.sql.rows import Codec, Table, not_found, placeholders
from koprogo_iot.storage.sql.sealing import Sealer

_URLS = ("email_url", "sms_url", "push_url")  # apprise URLs hold credentials: sealed (storage.sql.sealing)


def _settings_table(sealer: Sealer) -> Table[NotificationSettings]:
    """The settings' rows, provider URLs sealed on the way in and unsealed on the way out (the notifier's)."""
    url = Codec(
        encode=lambda u: None if u is None else sealer.seal(u), decode=lambda u: None if u is None else sealer.unseal(u)
    )
    reminder = Codec(
        column="reminder_interval_s",
        encode=lambda interval: int((interval or DEFAULT_REMINDER).total_seconds()),
        decode=lambda seconds: timedelta(seconds=seconds),
    )
    return Table(
        "iot_notification_settings",
        NotificationSettings,
        codecs={"reminder_interval": reminder} | dict.fromkeys(_URLS, url),
    )


def seal_stored_urls(sealer: Sealer) -> Callable[[Executor], Awaitable[None]]:
    """Migration 0008's data step: the provider URLs stored in clear before it, sealed."""

    async def step(tx: Executor) -> None:
        for row in await tx.fetch(f"SELECT organization_id, {', '.join(_URLS)} FROM iot_notification_settings"):
            sealed = [None if row[u] is None else sealer.seal(row[u]) for u in _URLS]
            await tx.execute(
                "UPDATE iot_notification_settings SET email_url = $2, sms_url = $3, push_url = $4 "
                "WHERE organization_id = $1",
                row["organization_id"],
                *sealed,
            )

    return step


ROUTES = Table(
    "iot_notification_routes",
    NotificationRoute,
    codecs={
        "channels": Codec(
            encode=lambda c: json.dumps(channels_document(c)), decode=lambda t: parse_channels(json.loads(t))
        )
    },
)
NOTIFICATIONS = Table("iot_notifications", Notification)


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
        alerts.ALERTS.select(
            f"notified_at IS NULL OR (cleared_at IS NULL AND ({_rank('severity')} > {_rank('notified_severity')} "
            f"OR (acknowledged_at IS NULL AND COALESCE(last_triggered_at, triggered_at) > notified_at AND {due})))"
        )
        + " ORDER BY created_at LIMIT $3"
        + (" FOR UPDATE SKIP LOCKED" if dialect == "postgres" else "")
    )


def _claim_due(dialect: str) -> str:
    """Lease due messages: $1 now, $2 lease end, $3 limit."""
    lock = " FOR UPDATE SKIP LOCKED" if dialect == "postgres" else ""
    return (
        "UPDATE iot_notifications SET attempts = attempts + 1, next_attempt_at = $2 WHERE id IN ("
        "SELECT id FROM iot_notifications WHERE status = 'pending' AND next_attempt_at <= $1 "
        f"ORDER BY next_attempt_at LIMIT $3{lock}) RETURNING {NOTIFICATIONS.column_list()}"
    )


async def _in(tx: Executor, table: Table[NotificationSettings] | Table[NotificationRoute], ids: set[UUID]) -> list[Row]:
    """The rows of `table` of these organizations."""
    orgs = sorted(ids, key=str)
    return await tx.fetch(table.select(f"organization_id IN ({placeholders(len(orgs))})"), *orgs)


class SqlNotifications:
    def __init__(self, db: Database, sealer: Sealer) -> None:
        self.db = db
        self.settings = _settings_table(sealer)
        self._upsert = self.settings.insert(
            "ON CONFLICT (organization_id) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in self.settings.columns if c != "organization_id")
        )

    # --- settings

    async def get_settings(self, organization_id: UUID) -> NotificationSettings:
        row = await self.db.fetchrow(self.settings.select("organization_id = $1"), organization_id)
        return NotificationSettings(organization_id) if row is None else self.settings.decode(row)

    async def save_settings(self, settings: NotificationSettings) -> NotificationSettings:
        """Store the organization's settings (no reminder interval: the platform's default, four hours)."""
        await self.db.execute(self._upsert, *self.settings.values(dataclasses.replace(settings, updated_at=utcnow())))
        return await self.get_settings(settings.organization_id)

    # --- routes

    async def list_routes(self, organization_id: UUID) -> list[NotificationRoute]:
        rows = await self.db.fetch(ROUTES.select("organization_id = $1") + " ORDER BY created_at, id", organization_id)
        return [ROUTES.decode(r) for r in rows]

    async def add_route(self, route: NotificationRoute) -> None:
        async with self.db.transaction() as tx:
            if route.building_id is not None:
                found = await tenancy.by_ids(tx, tenancy.BUILDINGS, [route.building_id])
                if not found or tenancy.BUILDINGS.decode(found[0]).organization_id != route.organization_id:
                    raise not_found("building", route.building_id)
            await tx.execute(ROUTES.insert(), *ROUTES.values(route))

    async def delete_route(self, organization_id: UUID, route_id: UUID) -> None:
        deleted = await self.db.execute(
            "DELETE FROM iot_notification_routes WHERE organization_id = $1 AND id = $2", organization_id, route_id
        )
        if not deleted:
            raise not_found("notification route", route_id)

    # --- planning: alerts → outbox

    async def plan(
        self, now: datetime, draft: Drafter, default_reminder: timedelta, limit: int = 100
    ) -> list[AlertContext]:
        async with self.db.transaction() as tx:
            rows = await tx.fetch(_claim_alerts(tx.dialect), now, int(default_reminder.total_seconds()), limit)
            if not rows:
                return []
            contexts, orphans = await self._contexts(tx, [alerts.ALERTS.decode(r) for r in rows], now, default_reminder)
            for context in contexts:
                await self._write(tx, context, draft(context), now)
            # An alert whose sensor is gone has nothing to say: it is marked as told, so it is not claimed again.
            for alert in orphans:
                await alerts.record_notice(tx, alert, now)
        return contexts

    async def _contexts(
        self, tx: Executor, claimed: list[IoTAlert], now: datetime, default_reminder: timedelta
    ) -> tuple[list[AlertContext], list[IoTAlert]]:
        """The context of each alert due for a notice, and the alerts whose sensor or building is gone."""
        orgs = {a.organization_id for a in claimed}
        settings = {s.organization_id: s for s in map(self.settings.decode, await _in(tx, self.settings, orgs))}
        by_sensor = {s.id: s for s in await sensors.by_ids(tx, (a.sensor_id for a in claimed))}
        buildings = tenancy.BUILDINGS
        by_building = {
            b.id: b
            for b in map(buildings.decode, await tenancy.by_ids(tx, buildings, (a.building_id for a in claimed)))
        }
        unit_ids = (a.unit_id for a in claimed if a.unit_id is not None)
        by_unit = {u.id: u for u in map(tenancy.UNITS.decode, await tenancy.by_ids(tx, tenancy.UNITS, unit_ids))}
        routes: dict[UUID, list[NotificationRoute]] = {org: [] for org in orgs}
        for route in sorted(map(ROUTES.decode, await _in(tx, ROUTES, orgs)), key=lambda r: (r.created_at, str(r.id))):
            routes[route.organization_id].append(route)
        users: dict[UUID, list[User]] = {org: [] for org in orgs}
        for user in await tenancy.users_of(tx, orgs):
            users[user.organization_id].append(user)
        contexts, orphans = [], []
        for alert in claimed:
            org_settings = settings.get(alert.organization_id, NotificationSettings(alert.organization_id))
            purpose = notice_purpose(alert, now, org_settings.reminder_interval or default_reminder)
            sensor, building = by_sensor.get(alert.sensor_id), by_building.get(alert.building_id)
            if sensor is None or building is None:
                orphans.append(alert)
                continue
            if purpose is None:  # the SQL filter let it through at a boundary: next round decides
                continue
            unit = None if alert.unit_id is None else by_unit.get(alert.unit_id)
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
                )
            )
        return contexts, orphans

    @staticmethod
    async def _write(tx: Executor, context: AlertContext, drafts: Sequence[Draft], now: datetime) -> None:
        alert = context.alert
        for d in drafts:
            message = Notification(
                organization_id=alert.organization_id,
                alert_id=alert.id,
                channel=d.channel,
                recipient=d.recipient,
                purpose=context.purpose,
                subject=d.subject,
                body=d.body,
                status="pending" if d.error is None else "failed",
                next_attempt_at=now,
                last_error=d.error,
                created_at=now,
            )
            await tx.execute(NOTIFICATIONS.insert(), *NOTIFICATIONS.values(message))
        await alerts.record_notice(tx, alert, now)

    # --- delivery

    async def claim_due(self, now: datetime, lease: timedelta, limit: int = 100) -> list[Notification]:
        async with self.db.transaction() as tx:
            rows = await tx.fetch(_claim_due(tx.dialect), now, now + lease, limit)
        return sorted(map(NOTIFICATIONS.decode, rows), key=lambda n: (n.next_attempt_at, n.created_at))

    async def backlog(self, now: datetime) -> int:
        row = await self.db.fetchrow(
            "SELECT count(*) AS n FROM iot_notifications WHERE status = 'pending' AND next_attempt_at <= $1", now
        )
        return int(row["n"]) if row is not None else 0

    async def mark_sent(self, message: Notification, at: datetime) -> None:
        async with self.db.transaction() as tx:
            await tx.execute(
                "UPDATE iot_notifications SET status = 'sent', sent_at = $2, last_error = NULL WHERE id = $1",
                message.id,
                at,
            )
            await alerts.mark_sent(tx, message.alert_id, message.channel)

    async def mark_failed(self, message: Notification, error: str, retry_at: datetime | None) -> None:
        if retry_at is None:
            await self.db.execute(
                "UPDATE iot_notifications SET status = 'failed', last_error = $2 WHERE id = $1", message.id, error
            )
        else:
            await self.db.execute(
                "UPDATE iot_notifications SET last_error = $2, next_attempt_at = $3 WHERE id = $1",
                message.id,
                error,
                retry_at,
            )

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
            NOTIFICATIONS.select(" AND ".join(clauses)) + f" ORDER BY created_at DESC, id LIMIT ${len(args)}", *args
        )
        return [NOTIFICATIONS.decode(r) for r in rows]
