"""An organization's LoRaWAN network server integrations, for managers only (they hold credentials)."""

from __future__ import annotations

import dataclasses
from typing import Any
from uuid import UUID

from koprogo_iot.domain.access import Principal
from koprogo_iot.domain.audit import AuditAction, AuditEntity, differences
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.integrations import IntegrationStatus, LnsIntegration
from koprogo_iot.services.audit import AuditLog
from koprogo_iot.storage.ports import IntegrationRepository

_KEPT_OUT = frozenset({"status", "last_error", "updated_at"})  # the workers' reports, not a person's change


class Integrations:
    def __init__(self, repository: IntegrationRepository, audit: AuditLog) -> None:
        self.repository = repository
        self.audit = audit

    async def create(self, principal: Principal, fields: dict[str, Any]) -> LnsIntegration:
        principal.require_manager()
        integration = LnsIntegration(organization_id=principal.organization_id, **fields)
        if not integration.enabled:
            integration = dataclasses.replace(integration, status=IntegrationStatus.DISABLED)
        await self.repository.add(integration)
        details = {"kind": integration.kind, "name": integration.name, "broker_url": integration.broker_url}
        await self.audit.record(principal, AuditEntity.INTEGRATION, integration.id, AuditAction.CREATED, details)
        return integration

    async def list(self, principal: Principal) -> list[LnsIntegration]:
        principal.require_manager()
        return await self.repository.select(principal.organization_id)

    async def get(self, principal: Principal, integration_id: UUID) -> LnsIntegration:
        principal.require_manager()
        return await self.repository.get(principal.organization_id, integration_id)

    async def update(self, principal: Principal, integration_id: UUID, changes: dict[str, Any]) -> LnsIntegration:
        """Change the fields given (a password not given is kept); the workers reconnect with the new settings."""
        before = await self.get(principal, integration_id)
        status = IntegrationStatus.PENDING if changes.get("enabled", before.enabled) else IntegrationStatus.DISABLED
        integration = dataclasses.replace(before, **changes, status=status, last_error=None, updated_at=utcnow())
        await self.repository.update(integration)
        details = differences(before, integration, ignore=_KEPT_OUT, secret=frozenset({"password"}))
        await self.audit.record(principal, AuditEntity.INTEGRATION, integration_id, AuditAction.CHANGED, details)
        return integration

    async def delete(self, principal: Principal, integration_id: UUID) -> None:
        principal.require_manager()
        await self.repository.delete(principal.organization_id, integration_id)
        await self.audit.record(principal, AuditEntity.INTEGRATION, integration_id, AuditAction.DELETED)
