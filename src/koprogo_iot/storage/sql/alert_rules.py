"""Alert rules in the database (`AlertRuleRepository`): an organization's defaults per sensor type and per-sensor
overrides.

Both are stored as the *partial* documents people wrote (only the fields they change, validated with
`domain.rules.parse_partial`), so that a later change of a built-in default reaches every sensor that did not
choose otherwise; `domain.rules.layered` combines them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.errors import InvalidValue
from koprogo_iot.domain.rules import OrganizationRules, Partial, parse_partial
from koprogo_iot.domain.sensors import SensorType
from koprogo_iot.storage.sql.database import Database, Executor
from koprogo_iot.storage.sql.rows import as_uuid, not_found, placeholders

# Above this many sensors, `rules_for` reads every override of the organization rather than binding each id:
# overrides are exceptions, a few per building, and SQLite limits the parameters of one statement.
_MAX_BOUND_IDS = 500


def _encode(document: object) -> str:
    """The validated partial document as JSON text."""
    partial = parse_partial(document)
    try:
        return json.dumps(partial, sort_keys=True, allow_nan=False)
    except ValueError:
        raise InvalidValue("alert rules cannot hold NaN or infinite numbers") from None


def _decode(text: str) -> Partial:
    document: Partial = json.loads(text)
    return document


class SqlAlertRules:
    """`iot_alert_rules` over any `Database`; every statement is scoped by organization."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- an organization's defaults per sensor type

    async def all_type_defaults(self, organization_id: UUID) -> dict[SensorType, Partial]:
        rows = await self.db.fetch(
            "SELECT sensor_type, rules FROM iot_alert_rules WHERE organization_id = $1 AND sensor_id IS NULL",
            organization_id,
        )
        return {SensorType(r["sensor_type"]): _decode(r["rules"]) for r in rows}

    async def get_type_defaults(self, organization_id: UUID, sensor_type: SensorType) -> Partial | None:
        row = await self.db.fetchrow(
            "SELECT rules FROM iot_alert_rules WHERE organization_id = $1 AND sensor_type = $2 AND sensor_id IS NULL",
            organization_id,
            sensor_type,
        )
        return None if row is None else _decode(row["rules"])

    async def put_type_defaults(
        self, organization_id: UUID, sensor_type: SensorType, document: object, at: datetime | None = None
    ) -> Partial:
        """Replace the type's defaults with `document` (raises `InvalidValue` naming the faulty field)."""
        text = _encode(document)
        await self.db.execute(
            "INSERT INTO iot_alert_rules (organization_id, sensor_type, sensor_id, rules, updated_at) "
            "VALUES ($1, $2, NULL, $3, $4) "
            "ON CONFLICT (organization_id, sensor_type) WHERE sensor_id IS NULL "
            "DO UPDATE SET rules = excluded.rules, updated_at = excluded.updated_at",
            organization_id,
            sensor_type,
            text,
            at or utcnow(),
        )
        return _decode(text)

    async def delete_type_defaults(self, organization_id: UUID, sensor_type: SensorType) -> bool:
        """Back to the built-in defaults; False when there were none."""
        deleted = await self.db.execute(
            "DELETE FROM iot_alert_rules WHERE organization_id = $1 AND sensor_type = $2 AND sensor_id IS NULL",
            organization_id,
            sensor_type,
        )
        return deleted > 0

    # --- one sensor's override

    @staticmethod
    async def _require_sensor(tx: Executor, organization_id: UUID, sensor_id: UUID) -> None:
        row = await tx.fetchrow(
            "SELECT id FROM iot_sensors WHERE organization_id = $1 AND id = $2", organization_id, sensor_id
        )
        if row is None:
            raise not_found("sensor", sensor_id)

    async def get_override(self, organization_id: UUID, sensor_id: UUID) -> Partial | None:
        """The sensor's override, None if it has none; `NotFound` if the organization has no such sensor."""
        row = await self.db.fetchrow(
            "SELECT s.id, r.rules FROM iot_sensors s "
            "LEFT JOIN iot_alert_rules r ON r.sensor_id = s.id AND r.organization_id = s.organization_id "
            "WHERE s.organization_id = $1 AND s.id = $2",
            organization_id,
            sensor_id,
        )
        if row is None:
            raise not_found("sensor", sensor_id)
        return None if row["rules"] is None else _decode(row["rules"])

    async def put_override(
        self, organization_id: UUID, sensor_id: UUID, document: object, at: datetime | None = None
    ) -> Partial:
        text = _encode(document)
        async with self.db.transaction() as tx:
            await self._require_sensor(tx, organization_id, sensor_id)
            await tx.execute(
                "INSERT INTO iot_alert_rules (organization_id, sensor_type, sensor_id, rules, updated_at) "
                "VALUES ($1, NULL, $2, $3, $4) "
                "ON CONFLICT (sensor_id) WHERE sensor_id IS NOT NULL "
                "DO UPDATE SET rules = excluded.rules, updated_at = excluded.updated_at",
                organization_id,
                sensor_id,
                text,
                at or utcnow(),
            )
        return _decode(text)

    async def delete_override(self, organization_id: UUID, sensor_id: UUID) -> bool:
        """Back to the type's defaults; False when there was no override. `NotFound` for a foreign sensor."""
        async with self.db.transaction() as tx:
            await self._require_sensor(tx, organization_id, sensor_id)
            deleted = await tx.execute(
                "DELETE FROM iot_alert_rules WHERE organization_id = $1 AND sensor_id = $2",
                organization_id,
                sensor_id,
            )
        return deleted > 0

    async def overrides(self, organization_id: UUID, sensor_ids: Iterable[UUID] | None = None) -> dict[UUID, Partial]:
        """The overrides of these sensors (all of the organization's when None), by sensor."""
        ids = None if sensor_ids is None else sorted(set(sensor_ids), key=str)
        if ids is not None and not ids:
            return {}
        sql = "SELECT sensor_id, rules FROM iot_alert_rules WHERE organization_id = $1 AND sensor_id IS NOT NULL"
        if ids is not None and len(ids) <= _MAX_BOUND_IDS:
            sql += f" AND sensor_id IN ({placeholders(len(ids), 2)})"
            rows = await self.db.fetch(sql, organization_id, *ids)
        else:
            rows = await self.db.fetch(sql, organization_id)
        wanted = None if ids is None else set(ids)
        found: dict[UUID, Partial] = {}
        for r in rows:
            sensor_id = as_uuid(r["sensor_id"])
            if wanted is None or sensor_id in wanted:
                found[sensor_id] = _decode(r["rules"])
        return found

    async def organization_rules(self, organization_id: UUID) -> OrganizationRules:
        """All of the organization's layers in two queries: ingestion caches them per organization."""
        return OrganizationRules(await self.all_type_defaults(organization_id), await self.overrides(organization_id))
