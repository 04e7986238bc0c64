"""ISTA meters and readings in the database, and the IoT readings the cross-check needs, in portable SQL.

Reading dates are ISO 8601 date text in both dialects: one argument binds on both drivers, text order is date order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from uuid import UUID

from koprogo_iot.analytics.sources import RawReadings
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.consumption import Point
from koprogo_iot.domain.errors import NotFound
from koprogo_iot.ista.csv_format import IstaRow, RowError
from koprogo_iot.ista.model import IstaMeter, IstaReading, MeterType, ReadingKind
from koprogo_iot.storage.database import Database, Row
from koprogo_iot.storage.sql_store import as_uuid, as_uuid_or_none

_METER_COLUMNS = "organization_id, meter_number, building_id, unit_id, meter_type, sensor_id"


def _meter(row: Row) -> IstaMeter:
    return IstaMeter(
        organization_id=as_uuid(row["organization_id"]), meter_number=row["meter_number"],
        building_id=as_uuid(row["building_id"]),
        unit_id=as_uuid_or_none(row["unit_id"]), meter_type=MeterType(row["meter_type"]),
        sensor_id=as_uuid_or_none(row["sensor_id"]),
    )  # fmt: skip


class IstaRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def meters(self, organization_id: UUID, building_id: UUID | None = None) -> list[IstaMeter]:
        if building_id is None:
            rows = await self.db.fetch(
                f"SELECT {_METER_COLUMNS} FROM ista_meters WHERE organization_id = $1 ORDER BY meter_number",
                organization_id,
            )
        else:
            rows = await self.db.fetch(
                f"SELECT {_METER_COLUMNS} FROM ista_meters WHERE organization_id = $1 AND building_id = $2 "
                "ORDER BY meter_number",
                organization_id, building_id,
            )  # fmt: skip
        return [_meter(r) for r in rows]

    async def get_meter(self, organization_id: UUID, meter_number: str) -> IstaMeter:
        row = await self.db.fetchrow(
            f"SELECT {_METER_COLUMNS} FROM ista_meters WHERE organization_id = $1 AND meter_number = $2",
            organization_id, meter_number,
        )  # fmt: skip
        if row is None:
            raise NotFound(f"ISTA meter {meter_number} not found")
        return _meter(row)

    async def readings(self, organization_id: UUID) -> dict[str, list[IstaReading]]:
        """Every reading of the organization, by meter number, in date order."""
        rows = await self.db.fetch(
            "SELECT meter_number, reading_date, kind, value, unit_of_measure FROM ista_readings "
            "WHERE organization_id = $1 ORDER BY meter_number, reading_date",
            organization_id,
        )
        found: dict[str, list[IstaReading]] = {}
        for r in rows:
            reading = IstaReading(
                date.fromisoformat(r["reading_date"]), ReadingKind(r["kind"]), r["value"], r["unit_of_measure"]
            )
            found.setdefault(r["meter_number"], []).append(reading)
        return found

    async def save(
        self, organization_id: UUID, new_meters: Sequence[IstaMeter], rows: Sequence[IstaRow], links: Mapping[str, UUID]
    ) -> tuple[int, int, list[RowError]]:
        """Store new meters, readings not stored yet and automatic links, in one transaction.

        Returns the readings inserted, the rows already stored with the same value, and the rows that contradict
        a stored reading (kept as stored: a correction is a decision for a person, not for a re-import).
        """
        imported, duplicates, conflicts = 0, 0, []
        now = utcnow()
        async with self.db.transaction() as tx:
            for meter in new_meters:
                await tx.execute(
                    f"INSERT INTO ista_meters ({_METER_COLUMNS}, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) "
                    "ON CONFLICT (organization_id, meter_number) DO NOTHING",
                    meter.organization_id, meter.meter_number, meter.building_id, meter.unit_id, meter.meter_type,
                    meter.sensor_id, now,
                )  # fmt: skip
            for row in rows:
                key = (organization_id, row.meter_number, row.reading.reading_date.isoformat(), row.reading.kind)
                inserted = await tx.fetchrow(
                    "INSERT INTO ista_readings (organization_id, meter_number, reading_date, kind, value, "
                    "unit_of_measure, imported_at) VALUES ($1, $2, $3, $4, $5, $6, $7) "
                    "ON CONFLICT (organization_id, meter_number, reading_date, kind) DO NOTHING RETURNING kind",
                    *key, row.reading.value, row.reading.unit_of_measure, now,
                )  # fmt: skip
                if inserted is not None:
                    imported += 1
                    continue
                stored = await tx.fetchrow(
                    "SELECT value, unit_of_measure FROM ista_readings "
                    "WHERE organization_id = $1 AND meter_number = $2 AND reading_date = $3 AND kind = $4",
                    *key,
                )
                assert stored is not None  # the conflict above found it, and readings are never deleted
                if (stored["value"], stored["unit_of_measure"]) == (row.reading.value, row.reading.unit_of_measure):
                    duplicates += 1
                else:
                    conflicts.append(
                        RowError(
                            row.line,
                            f"the {row.reading.kind.value} reading of meter {row.meter_number} on "
                            f"{row.reading.reading_date} is already stored as {stored['value']:g} "
                            f"{stored['unit_of_measure']}, not {row.reading.value:g} {row.reading.unit_of_measure}",
                        )
                    )
            for meter_number, sensor_id in links.items():
                await tx.execute(
                    "UPDATE ista_meters SET sensor_id = $3 "
                    "WHERE organization_id = $1 AND meter_number = $2 AND sensor_id IS NULL",
                    organization_id, meter_number, sensor_id,
                )  # fmt: skip
        return imported, duplicates, conflicts

    async def link(self, organization_id: UUID, meter_number: str, sensor_id: UUID | None) -> None:
        changed = await self.db.execute(
            "UPDATE ista_meters SET sensor_id = $3 WHERE organization_id = $1 AND meter_number = $2",
            organization_id, meter_number, sensor_id,
        )  # fmt: skip
        if not changed:
            raise NotFound(f"ISTA meter {meter_number} not found")

    async def sensor_points(
        self, organization_id: UUID, sensor_id: UUID, start: datetime, end: datetime
    ) -> list[Point]:
        """The sensor's readings in [start, end) and the nearest one on each side."""
        return (await RawReadings(self.db).points(organization_id, [sensor_id], start, end))[sensor_id]
