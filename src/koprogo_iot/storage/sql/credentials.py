"""Devices' MQTT logins (`CredentialRepository`), their passwords as digests in Mosquitto's notation."""

from __future__ import annotations

from uuid import UUID

from koprogo_iot.domain.credentials import DeviceCredential, Digest
from koprogo_iot.storage.sql.database import Database
from koprogo_iot.storage.sql.rows import Codec, Table, found, not_found

CREDENTIALS = Table(
    "iot_device_credentials",
    DeviceCredential,
    codecs={"digest": Codec("password_digest", encode=str, decode=Digest.parse)},
)
_SET, _POSITIONS = CREDENTIALS.assignments(("digest", "rotated_at", "revoked_at"), start=3)
_UPDATE = f"UPDATE iot_device_credentials SET {_SET} WHERE organization_id = $1 AND id = $2"


class SqlCredentials:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, credential: DeviceCredential) -> None:
        await self.db.execute(CREDENTIALS.insert(), *CREDENTIALS.values(credential))

    async def get(self, organization_id: UUID, credential_id: UUID) -> DeviceCredential:
        row = await self.db.fetchrow(
            CREDENTIALS.select("organization_id = $1 AND id = $2"), organization_id, credential_id
        )
        return CREDENTIALS.decode(found(row, "device credential", credential_id))

    async def select(self, organization_id: UUID) -> list[DeviceCredential]:
        rows = await self.db.fetch(
            CREDENTIALS.select("organization_id = $1") + " ORDER BY created_at DESC, id", organization_id
        )
        return [CREDENTIALS.decode(r) for r in rows]

    async def update(self, credential: DeviceCredential) -> None:
        values = CREDENTIALS.values(credential)
        changed = await self.db.execute(
            _UPDATE, credential.organization_id, credential.id, *[values[p] for p in _POSITIONS]
        )
        if not changed:
            raise not_found("device credential", credential.id)

    async def by_username(self, username: str) -> DeviceCredential | None:
        row = await self.db.fetchrow(CREDENTIALS.select("username = $1"), username)
        return None if row is None else CREDENTIALS.decode(row)

    async def active(self) -> list[DeviceCredential]:
        rows = await self.db.fetch(CREDENTIALS.select("revoked_at IS NULL") + " ORDER BY username")
        return [CREDENTIALS.decode(r) for r in rows]
