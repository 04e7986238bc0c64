"""Sensors: `SensorRepository` in portable SQL, and the two statements other repositories run in their own
transactions: sensors by id (the notifier) and moving each sensor's last reading forward (ingestion)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from uuid import UUID

from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.domain.sensors import IoTSensor
from koprogo_iot.offload import decoded
from koprogo_iot.storage.ports import SensorFilter
from koprogo_iot.storage.sql.database import Database, Executor, Row
from koprogo_iot.storage.sql.rows import Table, found, not_found, placeholders, row_placeholders

SENSORS = Table("iot_sensors", IoTSensor)
_KEYS_PER_STATEMENT = 300  # find_many on SQLite: 900 parameters per statement
# An update changes the configuration: never the identity or creation time, nor the last-reading fields, which
# belong to ingestion (an API update must not rewind them).
_KEPT = ("id", "organization_id", "created_at", "last_reading_at", "last_value", "last_battery_level")
_CONFIGURATION, _POSITIONS = SENSORS.assignments([f for f in SENSORS.fields if f not in _KEPT], start=3)
_UPDATE = f"UPDATE iot_sensors SET {_CONFIGURATION} WHERE organization_id = $1 AND id = $2"


async def by_ids(tx: Executor, ids: Iterable[UUID]) -> list[IoTSensor]:
    distinct = sorted(set(ids), key=str)
    if not distinct:
        return []
    rows = await tx.fetch(SENSORS.select(f"id IN ({placeholders(len(distinct))})"), *distinct)
    return [SENSORS.decode(r) for r in rows]


async def record_last_readings(tx: Executor, latest: list[IoTReading]) -> None:
    """Move each sensor's last reading forward (never back: readings may arrive out of order).

    Sensors are updated in id order, so that two workers storing batches of the same sensors lock their rows in
    the same order and cannot deadlock.
    """
    latest = sorted(latest, key=lambda r: r.sensor_id)
    if tx.dialect == "postgres":  # one statement for the whole batch, its rows locked in id order first
        # NO KEY UPDATE, the lock an UPDATE of non-key columns takes: it does not conflict with the KEY SHARE locks
        # that inserting readings (their foreign key) takes on the same sensors in other transactions.
        ids = [r.sensor_id for r in latest]
        await tx.execute("SELECT 1 FROM iot_sensors WHERE id = ANY($1::uuid[]) ORDER BY id FOR NO KEY UPDATE", ids)
        await tx.execute(
            "UPDATE iot_sensors s SET last_reading_at = v.ts, last_value = v.value, "
            "last_battery_level = COALESCE(v.battery, s.last_battery_level) "
            "FROM unnest($1::uuid[], $2::timestamptz[], $3::float8[], $4::float8[]) AS v(id, ts, value, battery) "
            "WHERE s.id = v.id AND (s.last_reading_at IS NULL OR s.last_reading_at < v.ts)",
            ids,
            [r.timestamp for r in latest],
            [r.value for r in latest],
            [r.battery_level for r in latest],
        )
        return
    for reading in latest:
        await tx.execute(
            "UPDATE iot_sensors SET last_reading_at = $2, last_value = $3, "
            "last_battery_level = COALESCE($4, last_battery_level) "
            "WHERE id = $1 AND (last_reading_at IS NULL OR last_reading_at < $2)",
            reading.sensor_id,
            reading.timestamp,
            reading.value,
            reading.battery_level,
        )


class SqlSensors:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, sensor: IoTSensor) -> None:
        await self.db.execute(SENSORS.insert(), *SENSORS.values(sensor))

    async def get(self, organization_id: UUID, sensor_id: UUID) -> IoTSensor:
        row = await self.db.fetchrow(SENSORS.select("organization_id = $1 AND id = $2"), organization_id, sensor_id)
        return SENSORS.decode(found(row, "sensor", sensor_id))

    async def find(self, organization_id: UUID, device_id: str, device_field: str = "") -> IoTSensor | None:
        row = await self.db.fetchrow(
            SENSORS.select("organization_id = $1 AND sensor_id = $2 AND device_field = $3"),
            organization_id,
            device_id,
            device_field,
        )
        return None if row is None else SENSORS.decode(row)

    async def find_many(self, keys: Sequence[tuple[UUID, str, str]]) -> dict[tuple[UUID, str, str], IoTSensor]:
        rows: list[Row] = []
        if self.db.dialect == "postgres":
            rows = await self.db.fetch(
                SENSORS.select(
                    "(organization_id, sensor_id, device_field) IN "
                    "(SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[]))"
                ),
                [k[0] for k in keys],
                [k[1] for k in keys],
                [k[2] for k in keys],
            )
        else:
            for start in range(0, len(keys), _KEYS_PER_STATEMENT):
                chunk = keys[start : start + _KEYS_PER_STATEMENT]
                where = f"(organization_id, sensor_id, device_field) IN (VALUES {row_placeholders(len(chunk), 3)})"
                rows += await self.db.fetch(SENSORS.select(where), *[part for key in chunk for part in key])
        sensors = await decoded(SENSORS.decode, rows)
        return {(s.organization_id, s.sensor_id, s.device_field): s for s in sensors}

    async def select(self, organization_id: UUID, where: SensorFilter = SensorFilter()) -> list[IoTSensor]:
        rows = await self.db.fetch(
            SENSORS.select("organization_id = $1") + " ORDER BY location, sensor_id", organization_id
        )
        sensors = await decoded(SENSORS.decode, rows)
        # Filters are applied here: an organization has hundreds of sensors, not millions.
        if where.building_id is not None:
            sensors = [s for s in sensors if s.building_id == where.building_id]
        if where.unit_id is not None:
            sensors = [s for s in sensors if s.unit_id == where.unit_id]
        if where.visible_units is not None or where.visible_buildings is not None:
            units, buildings = where.visible_units or frozenset(), where.visible_buildings or frozenset()
            sensors = [s for s in sensors if (s.unit_id in units) or (s.unit_id is None and s.building_id in buildings)]
        return sensors

    async def update(self, sensor: IoTSensor) -> None:
        values = SENSORS.values(sensor)
        async with self.db.transaction() as tx:
            before = await tx.fetchrow(
                "SELECT kind, rollover FROM iot_sensors WHERE organization_id = $1 AND id = $2",
                sensor.organization_id,
                sensor.id,
            )
            if before is None:
                raise not_found("sensor", sensor.id)
            await tx.execute(_UPDATE, sensor.organization_id, sensor.id, *[values[p] for p in _POSITIONS])
            if (before["kind"], before["rollover"]) != (sensor.measurement_kind.value, sensor.rollover):
                # The counter rules of its readings changed: every hour it has rollups for is recomputed whole
                # (a NULL `since`, also over a mark already there).
                await tx.execute(
                    "INSERT INTO iot_rollup_dirty (sensor_id, hour) "
                    "SELECT sensor_id, bucket FROM iot_rollups_hourly WHERE sensor_id = $1 "
                    "ON CONFLICT (sensor_id, hour) DO UPDATE SET since = NULL",
                    sensor.id,
                )

    async def delete(self, organization_id: UUID, sensor_id: UUID) -> None:
        # Its readings, rollups, alerts (and their notifications) and rule override go with it: ON DELETE CASCADE.
        deleted = await self.db.execute(
            "DELETE FROM iot_sensors WHERE organization_id = $1 AND id = $2", organization_id, sensor_id
        )
        if not deleted:
            raise not_found("sensor", sensor_id)
