"""The audit log (`AuditRepository`) in portable SQL: appended to, read newest first."""

from __future__ import annotations

import json
from uuid import UUID

from koprogo_iot.domain.audit import AuditEvent
from koprogo_iot.storage.ports import AuditFilter
from koprogo_iot.storage.sql.database import Database
from koprogo_iot.storage.sql.rows import Codec, Table

AUDIT = Table(
    "iot_audit_log",
    AuditEvent,
    codecs={"details": Codec(encode=lambda d: json.dumps(d, sort_keys=True), decode=json.loads)},
)


class SqlAudit:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, event: AuditEvent) -> None:
        await self.db.execute(AUDIT.insert(), *AUDIT.values(event))

    async def select(self, organization_id: UUID, where: AuditFilter = AuditFilter()) -> list[AuditEvent]:
        clauses: list[str] = ["organization_id = $1"]
        args: list[object] = [organization_id]
        for column, op, value in (
            ("entity_type", "=", where.entity_type),
            ("entity_id", "=", where.entity_id),
            ("actor_id", "=", where.actor_id),
            ("action", "=", where.action),
            ("at", ">=", where.start),
            ("at", "<", where.end),
        ):
            if value is not None:
                args.append(value)
                clauses.append(f"{column} {op} ${len(args)}")
        args.append(where.limit)
        rows = await self.db.fetch(
            AUDIT.select(" AND ".join(clauses)) + f" ORDER BY at DESC, id LIMIT ${len(args)}", *args
        )
        return [AUDIT.decode(r) for r in rows]
