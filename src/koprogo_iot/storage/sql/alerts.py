"""Alerts: `AlertRepository` in portable SQL, the only writer of `iot_alerts`.

Decisions are applied by the domain's lifecycle (`domain.alerts.apply_decisions`) to the active alerts loaded here:
on PostgreSQL those rows are locked (in key order, so two workers cannot deadlock) until the transaction ends.
Two workers opening the same new alert at once meet on the partial unique index (one active alert per sensor and
type): the second one's insert is skipped, and it applies its decisions again over the alert the first committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from koprogo_iot.domain.alerts import (
    AlertDecision,
    AlertKey,
    AlertSeverity,
    AlertStatus,
    AlertType,
    IoTAlert,
    apply_decisions,
    decision_key,
)
from koprogo_iot.domain.errors import Conflict
from koprogo_iot.domain.notices import Channel
from koprogo_iot.storage.ports import AlertFilter, AlertStatistics
from koprogo_iot.storage.sql.database import Database, Executor
from koprogo_iot.storage.sql.rows import Table, found, placeholders

ALERTS = Table("iot_alerts", IoTAlert)
# What the lifecycle changes on a stored alert; the notice, delivery and acknowledgment fields have other writers
# in other statements below and must not be written back from a copy.
_LIFECYCLE = (
    "severity",
    "message",
    "last_triggered_at",
    "occurrences",
    "reading_value",
    "threshold_value",
    "cleared_at",
    "rule",
)
_SET, _POSITIONS = ALERTS.assignments(_LIFECYCLE, start=2)
_INSERT = ALERTS.insert("ON CONFLICT DO NOTHING RETURNING id")
_SENT_COLUMN = {Channel.EMAIL: "email_sent", Channel.SMS: "sms_sent", Channel.PUSH: "push_sent"}
_IDS_PER_STATEMENT = 500  # SQLite binds at most 32,766 parameters per statement
_ATTEMPTS = 5  # a key two workers keep opening at once is a bug, not contention: give up with an error


async def _active(tx: Executor, sensor_ids: list[UUID]) -> dict[AlertKey, IoTAlert]:
    """The active alerts of these sensors; on PostgreSQL locked for this transaction, in key order."""
    order = " ORDER BY sensor_id, alert_type"
    if tx.dialect == "postgres":
        rows = await tx.fetch(
            # NO KEY UPDATE: what updating these rows takes anyway, compatible with the KEY SHARE locks of the
            # foreign keys pointing at them (an outbox row being written for the alert).
            ALERTS.select("cleared_at IS NULL AND sensor_id = ANY($1::uuid[])") + order + " FOR NO KEY UPDATE",
            sensor_ids,
        )
    else:
        rows = []
        for start in range(0, len(sensor_ids), _IDS_PER_STATEMENT):
            chunk = sensor_ids[start : start + _IDS_PER_STATEMENT]
            rows += await tx.fetch(
                ALERTS.select(f"cleared_at IS NULL AND sensor_id IN ({placeholders(len(chunk))})") + order, *chunk
            )
    return {alert.key: alert for alert in map(ALERTS.decode, rows)}


async def apply(tx: Executor, decisions: Sequence[AlertDecision]) -> None:
    """Apply `decisions` in order within `tx`: one active alert per (sensor, type), repeats counted on it."""
    if not decisions:
        return
    sensor_ids = sorted({decision_key(d)[0] for d in decisions})
    for _ in range(_ATTEMPTS):
        await tx.execute("SAVEPOINT alerts")
        changes = apply_decisions(await _active(tx, sensor_ids), decisions)
        for alert in changes.changed:
            values = ALERTS.values(alert)
            await tx.execute(f"UPDATE iot_alerts SET {_SET} WHERE id = $1", alert.id, *[values[p] for p in _POSITIONS])
        raced = False
        for alert in changes.opened:
            if await tx.fetchrow(_INSERT, *ALERTS.values(alert)) is None:
                raced = True  # another transaction opened this key meanwhile and has committed
                break
        if not raced:
            await tx.execute("RELEASE SAVEPOINT alerts")
            return
        await tx.execute("ROLLBACK TO SAVEPOINT alerts")
    raise Conflict("alerts of these sensors kept changing under concurrent writers")


async def record_notice(tx: Executor, alert: IoTAlert, at: datetime) -> None:
    """People were told about `alert` at `at` (at its current severity)."""
    await tx.execute(
        "UPDATE iot_alerts SET notified_at = $2, notified_severity = $3 WHERE id = $1", alert.id, at, alert.severity
    )


async def mark_sent(tx: Executor, alert_id: UUID, channel: Channel) -> None:
    await tx.execute(f"UPDATE iot_alerts SET {_SENT_COLUMN[channel]} = $2 WHERE id = $1", alert_id, True)


def _scope(organization_id: UUID, where: AlertFilter) -> tuple[str, list[object]]:
    """The WHERE condition selecting the alerts of `where` (its limit aside), and its arguments."""
    clauses = ["organization_id = $1"]
    args: list[object] = [organization_id]

    def bind(value: object) -> str:
        args.append(value)
        return f"${len(args)}"

    if where.status is AlertStatus.ACTIVE:
        clauses.append("cleared_at IS NULL")
    elif where.status is AlertStatus.CLEARED:
        clauses.append("cleared_at IS NOT NULL")
    if where.acknowledged is not None:
        clauses.append("acknowledged_at IS NOT NULL" if where.acknowledged else "acknowledged_at IS NULL")
    equal = (
        ("sensor_id", where.sensor_id),
        ("building_id", where.building_id),
        ("alert_type", where.alert_type),
        ("severity", where.severity),
    )
    clauses.extend(f"{column} = {bind(value)}" for column, value in equal if value is not None)
    if where.start is not None:
        clauses.append(f"triggered_at >= {bind(where.start)}")
    if where.end is not None:
        clauses.append(f"triggered_at < {bind(where.end)}")
    if where.sensor_ids is not None:
        # Owner scope, in SQL so that the limit and the statistics count only what the owner may see:
        # an owner reads a handful of sensors (their units' and the common ones), bound one by one.
        ids = sorted(where.sensor_ids, key=str)
        clauses.append(f"sensor_id IN ({', '.join(bind(i) for i in ids)})" if ids else "1 = 0")
    return " AND ".join(clauses), args


class SqlAlerts:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def apply(self, decisions: Sequence[AlertDecision]) -> None:
        async with self.db.transaction() as tx:
            await apply(tx, decisions)

    async def get(self, organization_id: UUID, alert_id: UUID) -> IoTAlert:
        row = await self.db.fetchrow(ALERTS.select("organization_id = $1 AND id = $2"), organization_id, alert_id)
        return ALERTS.decode(found(row, "alert", alert_id))

    async def select(self, organization_id: UUID, where: AlertFilter = AlertFilter()) -> list[IoTAlert]:
        condition, args = _scope(organization_id, where)
        args.append(where.limit)
        rows = await self.db.fetch(
            ALERTS.select(condition) + f" ORDER BY triggered_at DESC, id LIMIT ${len(args)}", *args
        )
        return [ALERTS.decode(r) for r in rows]

    async def statistics(self, organization_id: UUID, where: AlertFilter = AlertFilter()) -> AlertStatistics:
        condition, args = _scope(organization_id, where)
        # Whole milliseconds per alert on both dialects, so both give the same mean (SQLite's julianday() has
        # millisecond precision; the float difference is rounded back to it).
        if self.db.dialect == "postgres":
            ack_ms = "ROUND(EXTRACT(EPOCH FROM (acknowledged_at - triggered_at)) * 1000)"
        else:
            ack_ms = "ROUND((julianday(acknowledged_at) - julianday(triggered_at)) * 86400000)"
        totals = await self.db.fetchrow(
            "SELECT COUNT(*) AS total, "
            "COALESCE(SUM(CASE WHEN cleared_at IS NULL THEN 1 ELSE 0 END), 0) AS active, "
            "COALESCE(SUM(CASE WHEN cleared_at IS NULL AND acknowledged_at IS NULL THEN 1 ELSE 0 END), 0) "
            "AS active_unacknowledged, COUNT(acknowledged_at) AS acknowledged, "
            f"CAST(AVG({ack_ms}) AS DOUBLE PRECISION) AS mean_ack_ms FROM iot_alerts WHERE {condition}",
            *args,
        )
        groups = await self.db.fetch(
            f"WITH scoped AS (SELECT alert_type, severity, building_id FROM iot_alerts WHERE {condition}) "
            "SELECT 'type' AS dimension, alert_type AS value, COUNT(*) AS n FROM scoped GROUP BY alert_type "
            "UNION ALL SELECT 'severity', severity, COUNT(*) FROM scoped GROUP BY severity "
            "UNION ALL SELECT 'building', CAST(building_id AS TEXT), COUNT(*) FROM scoped GROUP BY building_id",
            *args,
        )
        assert totals is not None  # an aggregate without GROUP BY always returns one row
        counts: dict[str, dict[str, int]] = {"type": {}, "severity": {}, "building": {}}
        for g in groups:
            counts[g["dimension"]][g["value"]] = int(g["n"])
        mean_ms = totals["mean_ack_ms"]
        return AlertStatistics(
            total=int(totals["total"]),
            by_type={AlertType(k): n for k, n in counts["type"].items()},
            by_severity={AlertSeverity(k): n for k, n in counts["severity"].items()},
            by_building={UUID(k): n for k, n in counts["building"].items()},
            active=int(totals["active"]),
            active_unacknowledged=int(totals["active_unacknowledged"]),
            acknowledged=int(totals["acknowledged"]),
            mean_time_to_acknowledge_s=None if mean_ms is None else round(float(mean_ms) / 1000, 3),
        )

    async def acknowledge(
        self, organization_id: UUID, alert_id: UUID, user_id: UUID, note: str | None, at: datetime
    ) -> IoTAlert:
        await self.db.execute(
            "UPDATE iot_alerts SET acknowledged_by = $3, acknowledged_at = $4, resolution_note = $5 "
            "WHERE organization_id = $1 AND id = $2 AND acknowledged_at IS NULL",
            organization_id,
            alert_id,
            user_id,
            at,
            note,
        )
        return await self.get(organization_id, alert_id)
