"""Device sightings (`DeviceRepository`): what devices that no sensor reads have sent, per organization.

Recorded by ingestion within its batch transaction (`record`); at most `MAX_PER_ORGANIZATION` devices are kept per
organization, so that a flood of invented device ids cannot fill the table: past it, only the devices already
known are updated.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from koprogo_iot.domain.devices import DeviceSighting, SeenField
from koprogo_iot.storage.sql.database import Database, Executor
from koprogo_iot.storage.sql.rows import Codec, Table

MAX_PER_ORGANIZATION = 1000
SIGHTINGS = Table(
    "iot_device_sightings",
    DeviceSighting,
    codecs={
        "fields": Codec(
            encode=lambda fields: json.dumps(
                {name: {"value": f.value, "unit": f.unit, "kind": f.kind} for name, f in fields.items()}
            ),
            decode=lambda text: {name: SeenField(**f) for name, f in json.loads(text).items()},
        )
    },
)
_KEY = ("organization_id", "device_format", "device_id")
_ASSIGN, _POSITIONS = SIGHTINGS.assignments([f for f in SIGHTINGS.fields if f not in _KEY], start=4)
_UPDATE = (
    f"UPDATE iot_device_sightings SET {_ASSIGN} WHERE organization_id = $1 AND device_format = $2 AND device_id = $3"
)
_INSERT = SIGHTINGS.insert("ON CONFLICT DO NOTHING")


async def record(tx: Executor, sightings: Sequence[DeviceSighting]) -> None:
    """Update the devices already known, add new ones while the organization is under its limit."""
    for sighting in sorted(sightings, key=lambda s: (str(s.organization_id), s.device_format, s.device_id)):
        values = SIGHTINGS.values(sighting)
        key = values[: len(_KEY)]
        if await tx.execute(_UPDATE, *key, *[values[p] for p in _POSITIONS]):
            continue
        known = await tx.fetchrow(
            "SELECT COUNT(*) AS n FROM iot_device_sightings WHERE organization_id = $1", sighting.organization_id
        )
        if known is not None and int(known["n"]) < MAX_PER_ORGANIZATION:
            await tx.execute(_INSERT, *values)


class SqlDevices:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def sightings(self, organization_id: UUID, building_id: UUID | None = None) -> list[DeviceSighting]:
        where, args = "organization_id = $1", [organization_id]
        if building_id is not None:
            where, args = where + " AND building_id = $2", [organization_id, building_id]
        rows = await self.db.fetch(SIGHTINGS.select(where) + " ORDER BY last_seen_at DESC, device_id", *args)
        return [SIGHTINGS.decode(r) for r in rows]

    async def forget_before(self, cutoff: datetime) -> int:
        return await self.db.execute("DELETE FROM iot_device_sightings WHERE last_seen_at < $1", cutoff)
