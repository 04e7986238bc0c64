"""ISTA meters and readings (`IstaRepository`) in portable SQL.

Reading dates are ISO 8601 date text in both dialects: one argument binds on both drivers, text order is date order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from uuid import UUID

from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.ista import IstaMeter, IstaReading, ReadingKind
from koprogo_iot.storage.ports import IstaSaved
from koprogo_iot.storage.sql.database import Database
from koprogo_iot.storage.sql.rows import Table, found, not_found

METERS = Table("ista_meters", IstaMeter)


class SqlIsta:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def meters(self, organization_id: UUID, building_id: UUID | None = None) -> list[IstaMeter]:
        if building_id is None:
            rows = await self.db.fetch(
                METERS.select("organization_id = $1") + " ORDER BY meter_number", organization_id
            )
        else:
            rows = await self.db.fetch(
                METERS.select("organization_id = $1 AND building_id = $2") + " ORDER BY meter_number",
                organization_id,
                building_id,
            )
        return [METERS.decode(r) for r in rows]

    async def get_meter(self, organization_id: UUID, meter_number: str) -> IstaMeter:
        row = await self.db.fetchrow(
            METERS.select("organization_id = $1 AND meter_number = $2"), organization_id, meter_number
        )
        return METERS.decode(found(row, "ISTA meter", meter_number))

    async def readings(self, organization_id: UUID) -> dict[str, list[IstaReading]]:
        rows = await self.db.fetch(
            "SELECT meter_number, reading_date, kind, value, unit_of_measure FROM ista_readings "
            "WHERE organization_id = $1 ORDER BY meter_number, reading_date",
            organization_id,
        )
        by_meter: dict[str, list[IstaReading]] = {}
        for r in rows:
            reading = IstaReading(
                date.fromisoformat(r["reading_date"]), ReadingKind(r["kind"]), r["value"], r["unit_of_measure"]
            )
            by_meter.setdefault(r["meter_number"], []).append(reading)
        return by_meter

    async def save(
        self,
        organization_id: UUID,
        new_meters: Sequence[IstaMeter],
        readings: Sequence[tuple[str, IstaReading]],
        links: Mapping[str, UUID],
    ) -> IstaSaved:
        imported, duplicates, conflicts = 0, 0, []
        now = utcnow()
        async with self.db.transaction() as tx:
            for meter in new_meters:
                await tx.execute(
                    METERS.insert("ON CONFLICT (organization_id, meter_number) DO NOTHING"), *METERS.values(meter)
                )
            for position, (meter_number, reading) in enumerate(readings):
                key = (organization_id, meter_number, reading.reading_date.isoformat(), reading.kind)
                inserted = await tx.fetchrow(
                    "INSERT INTO ista_readings (organization_id, meter_number, reading_date, kind, value, "
                    "unit_of_measure, imported_at) VALUES ($1, $2, $3, $4, $5, $6, $7) "
                    "ON CONFLICT (organization_id, meter_number, reading_date, kind) DO NOTHING RETURNING kind",
                    *key,
                    reading.value,
                    reading.unit_of_measure,
                    now,
                )
                if inserted is not None:
                    imported += 1
                    continue
                stored = await tx.fetchrow(
                    "SELECT value, unit_of_measure FROM ista_readings "
                    "WHERE organization_id = $1 AND meter_number = $2 AND reading_date = $3 AND kind = $4",
                    *key,
                )
                assert stored is not None  # the conflict above found it, and readings are never deleted
                if (stored["value"], stored["unit_of_measure"]) == (reading.value, reading.unit_of_measure):
                    duplicates += 1
                else:
                    kept = IstaReading(reading.reading_date, reading.kind, stored["value"], stored["unit_of_measure"])
                    conflicts.append((position, kept))
            for meter_number, sensor_id in links.items():
                await tx.execute(
                    "UPDATE ista_meters SET sensor_id = $3 "
                    "WHERE organization_id = $1 AND meter_number = $2 AND sensor_id IS NULL",
                    organization_id,
                    meter_number,
                    sensor_id,
                )
        return IstaSaved(imported, duplicates, conflicts)

    async def link(self, organization_id: UUID, meter_number: str, sensor_id: UUID | None) -> None:
        changed = await self.db.execute(
            "UPDATE ista_meters SET sensor_id = $3 WHERE organization_id = $1 AND meter_number = $2",
            organization_id,
            meter_number,
            sensor_id,
        )
        if not changed:
            raise not_found("ISTA meter", meter_number)
