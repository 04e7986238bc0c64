"""Device credentials for managers: issue, rotate, revoke, and the broker told of each change.

The broker is told before a credential is stored as usable, and after it is stored as revoked: a failure then
leaves a login the database does not list (removed again at once) or a revocation the broker has not applied yet
(`reconcile` applies it, every minute in the API process). Neither leaves a device able to publish that the
database says cannot.
"""

from __future__ import annotations

import logging
from typing import Protocol
from uuid import UUID

from koprogo_iot.domain import credentials
from koprogo_iot.domain.access import Principal
from koprogo_iot.domain.audit import AuditAction, AuditEntity
from koprogo_iot.domain.credentials import DeviceCredential
from koprogo_iot.domain.errors import BrokerUnavailable, Conflict
from koprogo_iot.logs import about
from koprogo_iot.services.audit import AuditLog
from koprogo_iot.storage.ports import CredentialRepository, TenancyRepository

log = logging.getLogger(__name__)


class BrokerAccounts(Protocol):
    """The broker's side of device credentials (Mosquitto's dynamic security, or the embedded broker)."""

    async def grant(self, credential: DeviceCredential, password: str) -> None:
        """Let the credential connect with `password` and publish under its topic filter."""
        ...

    async def change_password(self, credential: DeviceCredential, password: str) -> None:
        """Only `password` is accepted from now on; clients connected with the old one are disconnected."""
        ...

    async def remove(self, username: str) -> None:
        """Refuse the login from now on and disconnect its clients (nothing happens for an unknown login)."""
        ...

    async def logins(self) -> set[str] | None:
        """The device logins the broker knows; None when it reads the database itself (nothing to reconcile)."""
        ...


class NoBroker:
    """No broker administration configured: credentials cannot be changed (the error says what to set)."""

    async def _refuse(self, *_: object) -> None:
        raise BrokerUnavailable(
            "the MQTT broker's administration is not configured: set KOPROGO_MQTT_ADMIN_URL "
            "(mqtt://<admin>:<password>@<host>:1883, the dynamic-security admin login)"
        )

    grant = change_password = _refuse

    async def remove(self, username: str) -> None:
        await self._refuse()

    async def logins(self) -> set[str] | None:
        return None


class DeviceLogins:
    def __init__(
        self,
        repository: CredentialRepository,
        tenancy: TenancyRepository,
        audit: AuditLog,
        broker: BrokerAccounts | None = None,
    ) -> None:
        self.repository = repository
        self.tenancy = tenancy
        self.audit = audit
        self.broker: BrokerAccounts = broker or NoBroker()

    async def issue(
        self, principal: Principal, name: str, building_id: UUID | None = None
    ) -> tuple[DeviceCredential, str]:
        """A new credential and its password, shown this once."""
        principal.require_manager()
        if building_id is not None:
            await self.tenancy.get_building(principal.organization_id, building_id)  # another's: not found
        credential, password = credentials.issue(principal.organization_id, name, building_id)
        await self.broker.grant(credential, password)
        try:
            await self.repository.add(credential)
        except BaseException:
            await self.broker.remove(credential.username)
            raise
        details = {"name": name, "username": credential.username, "building_id": building_id}
        await self.audit.record(principal, AuditEntity.DEVICE_CREDENTIAL, credential.id, AuditAction.CREATED, details)
        log.info(
            "issued device credential %s (%s) for organization %s",
            credential.username,
            name,
            credential.organization_id,
            extra=about(credential.organization_id),
        )
        return credential, password

    async def renew(self, organization_id: UUID, name: str) -> tuple[DeviceCredential, str]:
        """The platform's own login `name` of the organization (the demo's simulator, the load generator), with a
        new password: issued the first time, rotated after (passwords are not kept, so a restart needs a new one)."""
        existing = [c for c in await self.repository.select(organization_id) if c.active and c.name == name]
        if not existing:
            credential, password = credentials.issue(organization_id, name)
            await self.broker.grant(credential, password)
            await self.repository.add(credential)
            return credential, password
        credential, password = existing[0].rotated()
        await self.broker.change_password(credential, password)
        await self.repository.update(credential)
        return credential, password

    async def list(self, principal: Principal) -> list[DeviceCredential]:
        principal.require_manager()
        return await self.repository.select(principal.organization_id)

    async def get(self, principal: Principal, credential_id: UUID) -> DeviceCredential:
        principal.require_manager()
        return await self.repository.get(principal.organization_id, credential_id)

    async def rotate(self, principal: Principal, credential_id: UUID) -> tuple[DeviceCredential, str]:
        """A new password for the same login; devices still using the old one are disconnected."""
        before = await self.get(principal, credential_id)
        if not before.active:
            raise Conflict(f"device credential {credential_id} is revoked: issue a new one")
        credential, password = before.rotated()
        await self.broker.change_password(credential, password)
        await self.repository.update(credential)
        details = {"password": "(secret)"}
        await self.audit.record(principal, AuditEntity.DEVICE_CREDENTIAL, credential_id, AuditAction.CHANGED, details)
        log.info("rotated device credential %s", credential.username, extra=about(credential.organization_id))
        return credential, password

    async def revoke(self, principal: Principal, credential_id: UUID) -> DeviceCredential:
        """Refused from now on, its connections closed. Revoking again retries the broker's side."""
        credential = await self.get(principal, credential_id)
        if credential.active:
            credential = credential.revoked()
            await self.repository.update(credential)
            await self.audit.record(principal, AuditEntity.DEVICE_CREDENTIAL, credential_id, AuditAction.DELETED)
            log.info("revoked device credential %s", credential.username, extra=about(credential.organization_id))
        try:
            await self.broker.remove(credential.username)
        except BrokerUnavailable as exc:
            raise BrokerUnavailable(
                f"device credential {credential.username} is revoked, but the broker could not disconnect it yet "
                f"({exc}); it will be as soon as the broker answers"
            ) from exc
        return credential

    async def reconcile(self) -> int:
        """Remove from the broker the device logins the database does not list as active; return how many."""
        known = await self.broker.logins()
        if known is None:
            return 0
        active = {c.username for c in await self.repository.active()}
        stale = sorted(u for u in known - active if u.startswith(credentials.USERNAME_PREFIX))
        for username in stale:
            await self.broker.remove(username)
            log.warning("removed device login %s from the broker: revoked or unknown in the database", username)
        missing = active - known
        if missing:
            log.warning(
                "%d active device credentials are unknown to the broker (%s...): rebuild its configuration "
                "with `koprogo-iot broker config` and restart it, or rotate them",
                len(missing),
                ", ".join(sorted(missing)[:3]),
            )
        return len(stale)


class DatabaseOnly:
    """The broker of another process that reads logins from the database at each connection (the embedded one of
    `up`): nothing to tell it. A device connected with a revoked or rotated login stays connected until it
    reconnects; the running platform's API disconnects it at once."""

    async def grant(self, credential: DeviceCredential, password: str) -> None:
        return None

    async def change_password(self, credential: DeviceCredential, password: str) -> None:
        return None

    async def remove(self, username: str) -> None:
        return None

    async def logins(self) -> set[str] | None:
        return None
