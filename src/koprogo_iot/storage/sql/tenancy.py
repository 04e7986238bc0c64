"""Organizations, buildings, units and users: `TenancyRepository` in portable SQL, and the lookups by id other
repositories make inside their own transactions (the notifier reads buildings, units and users this way)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from koprogo_iot.domain.retention import check_retention_months
from koprogo_iot.domain.tenancy import Building, Channel, Organization, Unit, User, check_phone, check_push_topic
from koprogo_iot.storage.sql.database import Database, Executor, Row
from koprogo_iot.storage.sql.rows import Codec, Table, as_uuid, found, not_found, placeholders

ORGANIZATIONS = Table("organizations", Organization)
BUILDINGS = Table("buildings", Building)
UNITS = Table("units", Unit)


def _channels_text(channels: frozenset[Channel]) -> str:
    return ",".join(sorted(channels))


def _channels(text: str) -> frozenset[Channel]:
    return frozenset(Channel(c) for c in text.split(",") if c)


USERS = Table(
    "users",
    User,
    exclude=("unit_ids",),  # in user_units
    codecs={"muted_channels": Codec(encode=_channels_text, decode=_channels)},
)


async def by_ids(tx: Executor, table: Table[Building] | Table[Unit], ids: Iterable[UUID]) -> list[Row]:
    """Rows of `table` with these ids (the caller scopes them: they come from rows of one organization)."""
    distinct = sorted(set(ids), key=str)
    if not distinct:
        return []
    return await tx.fetch(table.select(f"id IN ({placeholders(len(distinct))})"), *distinct)


async def users_of(tx: Executor, organization_ids: Iterable[UUID]) -> list[User]:
    """The users of these organizations, with their units, by email."""
    orgs = sorted(set(organization_ids), key=str)
    if not orgs:
        return []
    within = f"IN ({placeholders(len(orgs))})"
    rows = await tx.fetch(USERS.select(f"organization_id {within}") + " ORDER BY email", *orgs)
    links = await tx.fetch(
        f"SELECT uu.user_id, uu.unit_id FROM user_units uu JOIN users u ON u.id = uu.user_id "
        f"WHERE u.organization_id {within}",
        *orgs,
    )
    units: dict[UUID, set[UUID]] = {}
    for link in links:
        units.setdefault(as_uuid(link["user_id"]), set()).add(as_uuid(link["unit_id"]))
    return [USERS.decode(r, unit_ids=frozenset(units.get(as_uuid(r["id"]), ()))) for r in rows]


class SqlTenancy:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_organization(self, organization: Organization) -> None:
        await self.db.execute(ORGANIZATIONS.insert(), *ORGANIZATIONS.values(organization))

    async def get_organization(self, organization_id: UUID) -> Organization:
        row = await self.db.fetchrow(ORGANIZATIONS.select("id = $1"), organization_id)
        return ORGANIZATIONS.decode(found(row, "organization", organization_id))

    async def list_organizations(self) -> list[Organization]:
        return [ORGANIZATIONS.decode(r) for r in await self.db.fetch(ORGANIZATIONS.select() + " ORDER BY name")]

    async def set_raw_retention(self, organization_id: UUID, months: int | None) -> Organization:
        changed = await self.db.execute(
            "UPDATE organizations SET raw_retention_months = $2 WHERE id = $1",
            organization_id,
            None if months is None else check_retention_months(months),
        )
        if not changed:
            raise not_found("organization", organization_id)
        return await self.get_organization(organization_id)

    async def add_building(self, building: Building) -> None:
        await self.db.execute(BUILDINGS.insert(), *BUILDINGS.values(building))

    async def get_building(self, organization_id: UUID, building_id: UUID) -> Building:
        row = await self.db.fetchrow(BUILDINGS.select("organization_id = $1 AND id = $2"), organization_id, building_id)
        return BUILDINGS.decode(found(row, "building", building_id))

    async def list_buildings(self, organization_id: UUID) -> list[Building]:
        rows = await self.db.fetch(BUILDINGS.select("organization_id = $1") + " ORDER BY name", organization_id)
        return [BUILDINGS.decode(r) for r in rows]

    async def update_building(self, building: Building) -> None:
        await self._update(
            "buildings",
            building.organization_id,
            building.id,
            "name = $3, address = $4",
            building.name,
            building.address,
        )

    async def update_unit(self, unit: Unit) -> None:
        await self._update("units", unit.organization_id, unit.id, "name = $3, floor = $4", unit.name, unit.floor)

    async def _update(
        self, table: str, organization_id: UUID, entity_id: UUID, assignments: str, *values: object
    ) -> None:
        """`UPDATE table SET assignments` (their values from $3) of the organization's row `entity_id`; not found
        when the organization has no such row (`table` is a plural: "units" names a "unit")."""
        changed = await self.db.execute(
            f"UPDATE {table} SET {assignments} WHERE organization_id = $1 AND id = $2",
            organization_id,
            entity_id,
            *values,
        )
        if not changed:
            raise not_found(table.removesuffix("s"), entity_id)

    async def _update_user(self, organization_id: UUID, user_id: UUID, assignments: str, *values: object) -> User:
        """`_update` of a user, and the user as stored afterwards."""
        await self._update("users", organization_id, user_id, assignments, *values)
        return await self.get_user(organization_id, user_id)

    async def add_unit(self, unit: Unit) -> None:
        await self.db.execute(UNITS.insert(), *UNITS.values(unit))

    async def get_unit(self, organization_id: UUID, unit_id: UUID) -> Unit:
        row = await self.db.fetchrow(UNITS.select("organization_id = $1 AND id = $2"), organization_id, unit_id)
        return UNITS.decode(found(row, "unit", unit_id))

    async def list_units(self, organization_id: UUID, building_id: UUID | None = None) -> list[Unit]:
        if building_id is None:
            rows = await self.db.fetch(UNITS.select("organization_id = $1") + " ORDER BY name", organization_id)
        else:
            rows = await self.db.fetch(
                UNITS.select("organization_id = $1 AND building_id = $2") + " ORDER BY name",
                organization_id,
                building_id,
            )
        return [UNITS.decode(r) for r in rows]

    async def add_user(self, user: User) -> None:
        async with self.db.transaction() as tx:
            await tx.execute(USERS.insert(), *USERS.values(user))
            for unit_id in sorted(user.unit_ids):
                await tx.execute("INSERT INTO user_units (user_id, unit_id) VALUES ($1, $2)", user.id, unit_id)

    async def _user(self, row: Row | None) -> User | None:
        if row is None:
            return None
        units = await self.db.fetch("SELECT unit_id FROM user_units WHERE user_id = $1", row["id"])
        return USERS.decode(row, unit_ids=frozenset(as_uuid(u["unit_id"]) for u in units))

    async def get_user(self, organization_id: UUID, user_id: UUID) -> User:
        row = await self.db.fetchrow(USERS.select("organization_id = $1 AND id = $2"), organization_id, user_id)
        user = await self._user(row)
        if user is None:
            raise not_found("user", user_id)
        return user

    async def find_user_by_email(self, email: str) -> User | None:
        return await self._user(await self.db.fetchrow(USERS.select("email = $1"), email.strip().lower()))

    async def list_users(self, organization_id: UUID) -> list[User]:
        return await users_of(self.db, [organization_id])

    async def set_contacts(
        self,
        organization_id: UUID,
        user_id: UUID,
        phone: str | None,
        push_topic: str | None,
        muted: frozenset[Channel] | None = None,
    ) -> User:
        return await self._update_user(
            organization_id,
            user_id,
            "phone = $3, push_topic = $4, muted_channels = COALESCE($5, muted_channels)",
            check_phone(phone),
            check_push_topic(push_topic),
            None if muted is None else _channels_text(frozenset(Channel(c) for c in muted)),
        )

    async def set_units(self, organization_id: UUID, user_id: UUID, unit_ids: frozenset[UUID]) -> User:
        async with self.db.transaction() as tx:
            if not await tx.fetchrow(
                "SELECT id FROM users WHERE organization_id = $1 AND id = $2", organization_id, user_id
            ):
                raise not_found("user", user_id)
            await tx.execute("DELETE FROM user_units WHERE user_id = $1", user_id)
            for unit_id in sorted(unit_ids):
                await tx.execute("INSERT INTO user_units (user_id, unit_id) VALUES ($1, $2)", user_id, unit_id)
        return await self.get_user(organization_id, user_id)

    async def set_deactivated(self, organization_id: UUID, user_id: UUID, at: datetime | None) -> User:
        return await self._update_user(organization_id, user_id, "deactivated_at = $3", at)

    async def set_password(
        self, organization_id: UUID, user_id: UUID, password_hash: str, changed_at: datetime
    ) -> User:
        return await self._update_user(
            organization_id, user_id, "password_hash = $3, password_changed_at = $4", password_hash, changed_at
        )
