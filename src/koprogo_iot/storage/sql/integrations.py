"""Organizations' LoRaWAN network server integrations (`IntegrationRepository`), their passwords sealed."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from koprogo_iot.domain.integrations import IntegrationStatus, LnsIntegration
from koprogo_iot.storage.sql.database import Database, Row
from koprogo_iot.storage.sql.rows import Table, found, not_found, placeholders
from koprogo_iot.storage.sql.sealing import Sealer

INTEGRATIONS = Table("iot_integrations", LnsIntegration, exclude=("password",))  # sealed in password_encrypted
_SELECT = f"SELECT {INTEGRATIONS.column_list()}, password_encrypted FROM iot_integrations"
_INSERT = (
    f"INSERT INTO iot_integrations ({INTEGRATIONS.column_list()}, password_encrypted) "
    f"VALUES ({placeholders(len(INTEGRATIONS.columns) + 1)})"
)
# What a person changes (and the status it resets); last error and message time are the ingest workers'.
_EDITABLE = (
    "kind",
    "name",
    "broker_url",
    "username",
    "topic_filter",
    "ca_certificate",
    "enabled",
    "status",
    "updated_at",
)
_SET, _POSITIONS = INTEGRATIONS.assignments(_EDITABLE, start=3)
_UPDATE = (
    f"UPDATE iot_integrations SET {_SET}, password_encrypted = ${3 + len(_EDITABLE)} "
    "WHERE organization_id = $1 AND id = $2"
)


class SqlIntegrations:
    def __init__(self, db: Database, sealer: Sealer) -> None:
        self.db = db
        self.sealer = sealer

    def _decode(self, row: Row) -> LnsIntegration:
        sealed = row["password_encrypted"]
        return INTEGRATIONS.decode(row, password=None if sealed is None else self.sealer.unseal(sealed))

    def _sealed(self, integration: LnsIntegration) -> str | None:
        return None if integration.password is None else self.sealer.seal(integration.password)

    async def add(self, integration: LnsIntegration) -> None:
        await self.db.execute(_INSERT, *INTEGRATIONS.values(integration), self._sealed(integration))

    async def get(self, organization_id: UUID, integration_id: UUID) -> LnsIntegration:
        row = await self.db.fetchrow(
            f"{_SELECT} WHERE organization_id = $1 AND id = $2", organization_id, integration_id
        )
        return self._decode(found(row, "integration", integration_id))

    async def select(self, organization_id: UUID) -> list[LnsIntegration]:
        rows = await self.db.fetch(f"{_SELECT} WHERE organization_id = $1 ORDER BY name, id", organization_id)
        return [self._decode(r) for r in rows]

    async def update(self, integration: LnsIntegration) -> None:
        values = INTEGRATIONS.values(integration)
        changed = await self.db.execute(
            _UPDATE,
            integration.organization_id,
            integration.id,
            *[values[p] for p in _POSITIONS],
            self._sealed(integration),
        )
        if not changed:
            raise not_found("integration", integration.id)

    async def delete(self, organization_id: UUID, integration_id: UUID) -> None:
        deleted = await self.db.execute(
            "DELETE FROM iot_integrations WHERE organization_id = $1 AND id = $2", organization_id, integration_id
        )
        if not deleted:
            raise not_found("integration", integration_id)

    async def enabled(self) -> list[LnsIntegration]:
        rows = await self.db.fetch(f"{_SELECT} WHERE enabled ORDER BY id")
        return [self._decode(r) for r in rows]

    async def report(
        self, integration_id: UUID, status: IntegrationStatus, error: str | None, last_message_at: datetime | None
    ) -> None:
        await self.db.execute(
            "UPDATE iot_integrations SET status = $2, last_error = $3, "
            "last_message_at = COALESCE($4, last_message_at) WHERE id = $1",
            integration_id,
            status,
            error,
            last_message_at,
        )
