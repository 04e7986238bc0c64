"""The audit log: who created, changed or deleted what in the organization, and who acknowledged which alert."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from koprogo_iot.api.deps import PrincipalDep, ServicesDep
from koprogo_iot.api.inputs import Instant, Text
from koprogo_iot.domain.audit import AuditAction, AuditEntity
from koprogo_iot.storage.ports import AuditFilter

router = APIRouter(tags=["audit"])


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    at: datetime
    actor_id: UUID
    entity_type: AuditEntity
    entity_id: str
    action: AuditAction
    details: dict[str, Any]


@router.get("/audit")
async def list_audit_events(
    principal: PrincipalDep,
    services: ServicesDep,
    entity_type: AuditEntity | None = None,
    entity_id: Text | None = Query(None, description="a sensor's id, a sensor type for type rules..."),
    actor_id: UUID | None = None,
    action: AuditAction | None = None,
    start: Instant | None = Query(None, description="at or after, RFC 3339"),
    end: Instant | None = Query(None, description="before, RFC 3339"),
    limit: int = Query(100, ge=1, le=1000),
) -> list[AuditEventOut]:
    """Newest first; syndics and superadmins, their own organization's events."""
    where = AuditFilter(entity_type, entity_id, actor_id, action, start, end, limit)
    return [AuditEventOut.model_validate(e) for e in await services.audit.events(principal, where)]
