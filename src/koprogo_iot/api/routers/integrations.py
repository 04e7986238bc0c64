"""LoRaWAN network server integrations: the ingest workers subscribe to an organization's ChirpStack or The Things
Stack broker directly. Syndics only; passwords are write-only."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field

from koprogo_iot.api.deps import PrincipalDep, ServicesDep
from koprogo_iot.api.inputs import Text
from koprogo_iot.domain.integrations import IntegrationKind, IntegrationStatus, LnsIntegration

router = APIRouter(prefix="/iot/integrations", tags=["integrations"])


class IntegrationUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: IntegrationKind | None = None
    name: Text | None = Field(None, max_length=200)
    broker_url: Text | None = Field(None, description="mqtt://host:1883 or mqtts://host:8883, without credentials")
    username: Text | None = None
    password: Text | None = Field(None, description="write-only: stored encrypted, never shown")
    topic_filter: Text | None = Field(
        None,
        description="default: every uplink (ChirpStack application/+/device/+/event/up, TTS v3/+/devices/+/up)",
    )
    ca_certificate: Text | None = Field(None, description="PEM of a private CA (mqtts); default: the system's CAs")
    enabled: bool | None = None


class IntegrationIn(IntegrationUpdate):
    kind: IntegrationKind
    name: Text = Field(max_length=200)
    broker_url: Text = Field(description="mqtt://host:1883 or mqtts://host:8883, without credentials")
    enabled: bool = True

    def fields(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True) | {"enabled": self.enabled}


class IntegrationOut(BaseModel):
    id: UUID
    kind: IntegrationKind
    name: str
    broker_url: str
    username: str | None
    has_password: bool
    topic_filter: str
    ca_certificate: str | None
    enabled: bool
    status: IntegrationStatus = Field(description="pending, connected, failing (see last_error) or disabled")
    last_error: str | None
    last_message_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, i: LnsIntegration) -> IntegrationOut:
        return cls(
            id=i.id,
            kind=i.kind,
            name=i.name,
            broker_url=i.broker_url,
            username=i.username,
            has_password=i.password is not None,
            topic_filter=i.topic_filter,
            ca_certificate=i.ca_certificate,
            enabled=i.enabled,
            status=i.status,
            last_error=i.last_error,
            last_message_at=i.last_message_at,
            created_at=i.created_at,
            updated_at=i.updated_at,
        )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_integration(body: IntegrationIn, principal: PrincipalDep, services: ServicesDep) -> IntegrationOut:
    """The ingest workers connect within seconds; `status` and `last_error` tell how it went."""
    return IntegrationOut.of(await services.integrations.create(principal, body.fields()))


@router.get("")
async def list_integrations(principal: PrincipalDep, services: ServicesDep) -> list[IntegrationOut]:
    return [IntegrationOut.of(i) for i in await services.integrations.list(principal)]


@router.get("/{integration_id}")
async def get_integration(integration_id: UUID, principal: PrincipalDep, services: ServicesDep) -> IntegrationOut:
    return IntegrationOut.of(await services.integrations.get(principal, integration_id))


@router.put("/{integration_id}")
async def update_integration(
    integration_id: UUID, body: IntegrationUpdate, principal: PrincipalDep, services: ServicesDep
) -> IntegrationOut:
    """Change the fields sent; a password not sent is kept."""
    changes = body.model_dump(exclude_unset=True)
    return IntegrationOut.of(await services.integrations.update(principal, integration_id, changes))


@router.delete("/{integration_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_integration(integration_id: UUID, principal: PrincipalDep, services: ServicesDep) -> Response:
    await services.integrations.delete(principal, integration_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
