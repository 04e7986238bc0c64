"""Writing and reading the audit log: every service that changes something records who did it, here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from koprogo_iot.domain.access import Principal
from koprogo_iot.domain.audit import AuditAction, AuditEntity, AuditEvent, plain
from koprogo_iot.storage.ports import AuditFilter, AuditRepository


class AuditLog:
    def __init__(self, repository: AuditRepository) -> None:
        self.repository = repository

    async def record(
        self,
        principal: Principal,
        entity_type: AuditEntity,
        entity_id: object,
        action: AuditAction,
        details: Mapping[str, Any] | None = None,
        organization_id: Any = None,
    ) -> None:
        """Called right after the change is stored (a failure here leaves a change without its event, never an
        event without its change). `organization_id`: the entity's, when a superadmin acts on another's."""
        await self.repository.record(
            AuditEvent(
                organization_id=organization_id or principal.organization_id,
                actor_id=principal.user_id,
                entity_type=entity_type,
                entity_id=str(plain(entity_id)),
                action=action,
                details=plain(details or {}),
            )
        )

    async def events(self, principal: Principal, where: AuditFilter) -> list[AuditEvent]:
        """The caller's organization's events, for managers (owners: Forbidden)."""
        principal.require_manager()
        return await self.repository.select(principal.organization_id, where)
