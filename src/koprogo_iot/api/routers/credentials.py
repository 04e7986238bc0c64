"""Device credentials: the MQTT logins devices and gateways publish with. Syndics only; a password is shown once."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from koprogo_iot.api.deps import PrincipalDep, ServicesDep
from koprogo_iot.api.inputs import Text
from koprogo_iot.domain.credentials import DeviceCredential

router = APIRouter(prefix="/iot/device-credentials", tags=["device credentials"])


class CredentialIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=200, description="what the device is, for people")
    building_id: UUID | None = Field(None, description="publish only under this building (default: any building)")


class CredentialOut(BaseModel):
    id: UUID
    name: str
    username: str
    building_id: UUID | None
    topic_filter: str = Field(description="where the device may publish; it may subscribe to nothing")
    active: bool
    created_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, c: DeviceCredential) -> CredentialOut:
        return cls(
            id=c.id,
            name=c.name,
            username=c.username,
            building_id=c.building_id,
            topic_filter=c.topic_filter,
            active=c.active,
            created_at=c.created_at,
            rotated_at=c.rotated_at,
            revoked_at=c.revoked_at,
        )


class IssuedCredential(CredentialOut):
    password: str = Field(description="shown this once: it is stored only as a digest")

    @classmethod
    def with_password(cls, credential: DeviceCredential, password: str) -> IssuedCredential:
        return cls(**CredentialOut.of(credential).model_dump(), password=password)


@router.post("", status_code=status.HTTP_201_CREATED)
async def issue_credential(body: CredentialIn, principal: PrincipalDep, services: ServicesDep) -> IssuedCredential:
    """A new MQTT login, usable at once; its password is in this response only."""
    credential, password = await services.device_logins.issue(principal, body.name, body.building_id)
    return IssuedCredential.with_password(credential, password)


@router.get("")
async def list_credentials(principal: PrincipalDep, services: ServicesDep) -> list[CredentialOut]:
    """The organization's credentials, revoked ones included (newest first)."""
    return [CredentialOut.of(c) for c in await services.device_logins.list(principal)]


@router.get("/{credential_id}")
async def get_credential(credential_id: UUID, principal: PrincipalDep, services: ServicesDep) -> CredentialOut:
    return CredentialOut.of(await services.device_logins.get(principal, credential_id))


@router.post("/{credential_id}/rotate")
async def rotate_credential(credential_id: UUID, principal: PrincipalDep, services: ServicesDep) -> IssuedCredential:
    """A new password for the same login; devices connected with the old one are disconnected."""
    credential, password = await services.device_logins.rotate(principal, credential_id)
    return IssuedCredential.with_password(credential, password)


@router.delete("/{credential_id}")
async def revoke_credential(credential_id: UUID, principal: PrincipalDep, services: ServicesDep) -> CredentialOut:
    """Refused from now on, its connections closed; the credential stays listed as revoked."""
    return CredentialOut.of(await services.device_logins.revoke(principal, credential_id))
