"""BACnet points: `BacnetPointRepository` in portable SQL, the only writer of `iot_bacnet_points`."""

from __future__ import annotations

from uuid import UUID

from koprogo_iot.domain.bacnet import BacnetPoint
from koprogo_iot.storage.sql.database import Database
from koprogo_iot.storage.sql.rows import Table, found, not_found

POINTS = Table("iot_bacnet_points", BacnetPoint)
_ORDER = " ORDER BY created_at, id"
# An update changes the configuration, never the identity, the owner or the creation time.
_KEPT = ("id", "organization_id", "created_at")
_SET, _POSITIONS = POINTS.assignments([f for f in POINTS.fields if f not in _KEPT], start=3)
_UPDATE = f"UPDATE iot_bacnet_points SET {_SET} WHERE organization_id = $1 AND id = $2"


class SqlBacnetPoints:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, point: BacnetPoint) -> None:
        await self.db.execute(POINTS.insert(), *POINTS.values(point))

    async def get(self, organization_id: UUID, point_id: UUID) -> BacnetPoint:
        row = await self.db.fetchrow(POINTS.select("organization_id = $1 AND id = $2"), organization_id, point_id)
        return POINTS.decode(found(row, "BACnet point", point_id))

    async def select(self, organization_id: UUID, building_id: UUID | None = None) -> list[BacnetPoint]:
        if building_id is None:
            rows = await self.db.fetch(POINTS.select("organization_id = $1") + _ORDER, organization_id)
        else:
            rows = await self.db.fetch(
                POINTS.select("organization_id = $1 AND building_id = $2") + _ORDER, organization_id, building_id
            )
        return [POINTS.decode(r) for r in rows]

    async def update(self, point: BacnetPoint) -> None:
        values = POINTS.values(point)
        changed = await self.db.execute(_UPDATE, point.organization_id, point.id, *[values[p] for p in _POSITIONS])
        if not changed:
            raise not_found("BACnet point", point.id)

    async def delete(self, organization_id: UUID, point_id: UUID) -> None:
        deleted = await self.db.execute(
            "DELETE FROM iot_bacnet_points WHERE organization_id = $1 AND id = $2", organization_id, point_id
        )
        if not deleted:
            raise not_found("BACnet point", point_id)
