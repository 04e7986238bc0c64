"""`Store` in portable SQL: the same statements run on SQLite and PostgreSQL through `Database`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from koprogo_iot.domain.alerts import (
    AlertDecision,
    AlertSeverity,
    AlertStatus,
    AlertType,
    ClearAlert,
    IoTAlert,
)
from koprogo_iot.domain.dead_letters import DeadLetter
from koprogo_iot.domain.errors import NotFound
from koprogo_iot.domain.readings import IoTReading, ReadingQuality
from koprogo_iot.domain.sensors import IoTSensor
from koprogo_iot.domain.tenancy import Building, Organization, Role, Unit, User
from koprogo_iot.storage.database import Database, Executor, Row
from koprogo_iot.storage.ports import AlertFilter, AlertStatistics, Ingested, SensorFilter

# Row decoding shared by every module reading rows: SQLite gives text, PostgreSQL gives typed values.


def as_uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)


def as_uuid_or_none(value: Any) -> UUID | None:
    return None if value is None else as_uuid(value)


def as_time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def as_time_or_none(value: Any) -> datetime | None:
    return None if value is None else as_time(value)


SENSOR_COLUMNS = (
    "id, organization_id, building_id, unit_id, sensor_id, device_format, device_field, sensor_type, kind, "
    "manufacturer, model, "
    "firmware_version, location, floor, unit_of_measure, sampling_interval, calibration_factor, "
    "alert_threshold_min, alert_threshold_max, status, last_reading_at, last_value, last_battery_level, "
    "installed_at, created_at, updated_at"
)
READING_COLUMNS = (
    "sensor_id, ts, organization_id, building_id, unit_id, value, unit_of_measure, battery_level, "
    "signal_strength, quality, is_anomaly, anomaly_reason, received_at"
)
ALERT_COLUMNS = (
    "id, organization_id, sensor_id, building_id, unit_id, alert_type, severity, message, triggered_at, "
    "last_triggered_at, occurrences, reading_value, threshold_value, cleared_at, email_sent, sms_sent, push_sent, "
    "acknowledged_by, acknowledged_at, resolution_note, rule, notified_at, notified_severity, created_at"
)


_DEAD_LETTER_COLUMNS = "organization_id, topic, payload_excerpt, payload_size, reason, detail, received_at"
# SQLite accepts 32,766 parameters per statement (since 3.32): 13 columns x 2,000 rows stays below.
_ROWS_PER_STATEMENT = 2_000
# The partial unique index keeps one active alert per (sensor, type), also against concurrent workers: a repeat
# updates it, and its severity only ever rises while it is active. Evidence already counted (a window rule judging
# the same readings again) is not a repeat; a reading arriving out of order is, but does not move the last value.
_OTHER = "(iot_alerts.last_triggered_at IS NULL OR excluded.last_triggered_at <> iot_alerts.last_triggered_at)"
_NEWER = "(iot_alerts.last_triggered_at IS NULL OR excluded.last_triggered_at > iot_alerts.last_triggered_at)"
_RAISE_ALERT = (
    f"INSERT INTO iot_alerts ({ALERT_COLUMNS}) VALUES ({{placeholders}}) "
    "ON CONFLICT (sensor_id, alert_type) WHERE cleared_at IS NULL DO UPDATE SET "
    f"occurrences = iot_alerts.occurrences + CASE WHEN {_OTHER} THEN 1 ELSE 0 END, "
    f"last_triggered_at = CASE WHEN {_NEWER} THEN excluded.last_triggered_at ELSE iot_alerts.last_triggered_at END, "
    f"reading_value = CASE WHEN {_NEWER} THEN excluded.reading_value ELSE iot_alerts.reading_value END, "
    "threshold_value = excluded.threshold_value, message = excluded.message, rule = excluded.rule, "
    "severity = CASE WHEN iot_alerts.severity = 'critical' THEN 'critical' "
    "WHEN excluded.severity = 'info' THEN iot_alerts.severity ELSE excluded.severity END"
)


# A mark that already exists is locked, not skipped: a refresher claims marks with SKIP LOCKED, so it cannot take
# this one and read the hour's readings before this transaction's reading is committed (and then lose it).
# The update never happens (WHERE false) but PostgreSQL locks the row anyway; SQLite has one writer at a time.
MARK_CONFLICT = "ON CONFLICT (sensor_id, hour) DO UPDATE SET hour = excluded.hour WHERE false"


def dirty_hours(readings: Iterable[IoTReading]) -> list[tuple[UUID, datetime]]:
    """The distinct (sensor, UTC hour) pairs of `readings`, sorted so concurrent batches lock marks in one order."""
    marks = {(r.sensor_id, r.timestamp.astimezone(UTC).replace(minute=0, second=0, microsecond=0)) for r in readings}
    return sorted(marks)


def _placeholders(columns: str, start: int = 1) -> str:
    return ", ".join(f"${i}" for i in range(start, start + columns.count(",") + 1))


_RAISE_ALERT = _RAISE_ALERT.format(placeholders=_placeholders(ALERT_COLUMNS))


def sensor_from_row(row: Row) -> IoTSensor:
    return IoTSensor(
        id=as_uuid(row["id"]),
        organization_id=as_uuid(row["organization_id"]),
        building_id=as_uuid(row["building_id"]),
        unit_id=as_uuid_or_none(row["unit_id"]),
        sensor_id=row["sensor_id"],
        device_format=row["device_format"],
        device_field=row["device_field"],
        sensor_type=row["sensor_type"],
        kind=row["kind"],
        manufacturer=row["manufacturer"],
        model=row["model"],
        firmware_version=row["firmware_version"],
        location=row["location"],
        floor=row["floor"],
        unit_of_measure=row["unit_of_measure"],
        sampling_interval=row["sampling_interval"],
        calibration_factor=row["calibration_factor"],
        alert_threshold_min=row["alert_threshold_min"],
        alert_threshold_max=row["alert_threshold_max"],
        status=row["status"],
        last_reading_at=as_time_or_none(row["last_reading_at"]),
        last_value=row["last_value"],
        last_battery_level=row["last_battery_level"],
        installed_at=as_time(row["installed_at"]),
        created_at=as_time(row["created_at"]),
        updated_at=as_time(row["updated_at"]),
    )


def _sensor_values(s: IoTSensor) -> tuple[object, ...]:
    return (
        s.id, s.organization_id, s.building_id, s.unit_id, s.sensor_id, s.device_format, s.device_field,
        s.sensor_type, s.measurement_kind,
        s.manufacturer, s.model, s.firmware_version, s.location, s.floor, s.unit_of_measure, s.sampling_interval,
        s.calibration_factor, s.alert_threshold_min, s.alert_threshold_max, s.status, s.last_reading_at,
        s.last_value, s.last_battery_level, s.installed_at, s.created_at, s.updated_at,
    )  # fmt: skip


def _reading(row: Row) -> IoTReading:
    return IoTReading(
        sensor_id=as_uuid(row["sensor_id"]),
        timestamp=as_time(row["ts"]),
        organization_id=as_uuid(row["organization_id"]),
        building_id=as_uuid(row["building_id"]),
        unit_id=as_uuid_or_none(row["unit_id"]),
        value=row["value"],
        unit_of_measure=row["unit_of_measure"],
        battery_level=row["battery_level"],
        signal_strength=row["signal_strength"],
        quality=ReadingQuality(row["quality"]),
        is_anomaly=bool(row["is_anomaly"]),
        anomaly_reason=row["anomaly_reason"],
        received_at=as_time(row["received_at"]),
    )


def reading_values(r: IoTReading) -> tuple[object, ...]:
    return (
        r.sensor_id, r.timestamp, r.organization_id, r.building_id, r.unit_id, r.value, r.unit_of_measure,
        r.battery_level, r.signal_strength, r.quality, r.is_anomaly, r.anomaly_reason, r.received_at,
    )  # fmt: skip


def alert_from_row(row: Row) -> IoTAlert:
    return IoTAlert(
        id=as_uuid(row["id"]),
        organization_id=as_uuid(row["organization_id"]),
        sensor_id=as_uuid(row["sensor_id"]),
        building_id=as_uuid(row["building_id"]),
        unit_id=as_uuid_or_none(row["unit_id"]),
        alert_type=AlertType(row["alert_type"]),
        severity=AlertSeverity(row["severity"]),
        message=row["message"],
        triggered_at=as_time(row["triggered_at"]),
        last_triggered_at=as_time_or_none(row["last_triggered_at"]),
        occurrences=row["occurrences"],
        reading_value=row["reading_value"],
        threshold_value=row["threshold_value"],
        cleared_at=as_time_or_none(row["cleared_at"]),
        email_sent=bool(row["email_sent"]),
        sms_sent=bool(row["sms_sent"]),
        push_sent=bool(row["push_sent"]),
        acknowledged_by=as_uuid_or_none(row["acknowledged_by"]),
        acknowledged_at=as_time_or_none(row["acknowledged_at"]),
        resolution_note=row["resolution_note"],
        rule=row["rule"],
        notified_at=as_time_or_none(row["notified_at"]),
        notified_severity=None if row["notified_severity"] is None else AlertSeverity(row["notified_severity"]),
        created_at=as_time(row["created_at"]),
    )


def _alert_values(a: IoTAlert) -> tuple[object, ...]:
    return (
        a.id, a.organization_id, a.sensor_id, a.building_id, a.unit_id, a.alert_type, a.severity, a.message,
        a.triggered_at, a.last_triggered_at, a.occurrences, a.reading_value, a.threshold_value, a.cleared_at,
        a.email_sent, a.sms_sent, a.push_sent, a.acknowledged_by, a.acknowledged_at, a.resolution_note, a.rule,
        a.notified_at, a.notified_severity, a.created_at,
    )  # fmt: skip


def _found(row: Row | None, what: str, key: UUID) -> Row:
    if row is None:
        raise NotFound(f"{what} {key} not found")
    return row


class SqlStore:
    """The `Store` port over any `Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def close(self) -> None:
        await self.db.close()

    # --- tenancy

    async def add_organization(self, organization: Organization) -> None:
        await self.db.execute(
            "INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, $3)",
            organization.id, organization.name, organization.created_at,
        )  # fmt: skip

    async def get_organization(self, organization_id: UUID) -> Organization:
        row = _found(
            await self.db.fetchrow("SELECT * FROM organizations WHERE id = $1", organization_id),
            "organization", organization_id,
        )  # fmt: skip
        return Organization(id=as_uuid(row["id"]), name=row["name"], created_at=as_time(row["created_at"]))

    async def list_organizations(self) -> list[Organization]:
        rows = await self.db.fetch("SELECT * FROM organizations ORDER BY name")
        return [Organization(id=as_uuid(r["id"]), name=r["name"], created_at=as_time(r["created_at"])) for r in rows]

    async def add_building(self, building: Building) -> None:
        await self.db.execute(
            "INSERT INTO buildings (id, organization_id, name, address, created_at) VALUES ($1, $2, $3, $4, $5)",
            building.id, building.organization_id, building.name, building.address, building.created_at,
        )  # fmt: skip

    @staticmethod
    def building_from_row(row: Row) -> Building:
        return Building(
            id=as_uuid(row["id"]), organization_id=as_uuid(row["organization_id"]), name=row["name"],
            address=row["address"], created_at=as_time(row["created_at"]),
        )  # fmt: skip

    async def get_building(self, organization_id: UUID, building_id: UUID) -> Building:
        row = await self.db.fetchrow(
            "SELECT * FROM buildings WHERE organization_id = $1 AND id = $2", organization_id, building_id
        )
        return self.building_from_row(_found(row, "building", building_id))

    async def list_buildings(self, organization_id: UUID) -> list[Building]:
        rows = await self.db.fetch("SELECT * FROM buildings WHERE organization_id = $1 ORDER BY name", organization_id)
        return [self.building_from_row(r) for r in rows]

    async def add_unit(self, unit: Unit) -> None:
        await self.db.execute(
            "INSERT INTO units (id, organization_id, building_id, name, floor, created_at) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            unit.id, unit.organization_id, unit.building_id, unit.name, unit.floor, unit.created_at,
        )  # fmt: skip

    @staticmethod
    def unit_from_row(row: Row) -> Unit:
        return Unit(
            id=as_uuid(row["id"]), organization_id=as_uuid(row["organization_id"]),
            building_id=as_uuid(row["building_id"]), name=row["name"], floor=row["floor"],
            created_at=as_time(row["created_at"]),
        )  # fmt: skip

    async def get_unit(self, organization_id: UUID, unit_id: UUID) -> Unit:
        row = await self.db.fetchrow(
            "SELECT * FROM units WHERE organization_id = $1 AND id = $2", organization_id, unit_id
        )
        return self.unit_from_row(_found(row, "unit", unit_id))

    async def list_units(self, organization_id: UUID, building_id: UUID | None = None) -> list[Unit]:
        if building_id is None:
            rows = await self.db.fetch("SELECT * FROM units WHERE organization_id = $1 ORDER BY name", organization_id)
        else:
            rows = await self.db.fetch(
                "SELECT * FROM units WHERE organization_id = $1 AND building_id = $2 ORDER BY name",
                organization_id, building_id,
            )  # fmt: skip
        return [self.unit_from_row(r) for r in rows]

    async def add_user(self, user: User) -> None:
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO users (id, organization_id, email, full_name, role, password_hash, created_at, phone, "
                "push_topic) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                user.id, user.organization_id, user.email, user.full_name, user.role, user.password_hash,
                user.created_at, user.phone, user.push_topic,
            )  # fmt: skip
            for unit_id in sorted(user.unit_ids):
                await tx.execute("INSERT INTO user_units (user_id, unit_id) VALUES ($1, $2)", user.id, unit_id)

    async def _user(self, row: Row | None) -> User | None:
        if row is None:
            return None
        units = await self.db.fetch("SELECT unit_id FROM user_units WHERE user_id = $1", row["id"])
        return User(
            id=as_uuid(row["id"]), organization_id=as_uuid(row["organization_id"]), email=row["email"],
            full_name=row["full_name"], role=Role(row["role"]), password_hash=row["password_hash"],
            unit_ids=frozenset(as_uuid(u["unit_id"]) for u in units), created_at=as_time(row["created_at"]),
            phone=row["phone"], push_topic=row["push_topic"],
        )  # fmt: skip

    async def get_user(self, organization_id: UUID, user_id: UUID) -> User:
        row = await self.db.fetchrow(
            "SELECT * FROM users WHERE organization_id = $1 AND id = $2", organization_id, user_id
        )
        user = await self._user(row)
        if user is None:
            raise NotFound(f"user {user_id} not found")
        return user

    async def find_user_by_email(self, email: str) -> User | None:
        return await self._user(await self.db.fetchrow("SELECT * FROM users WHERE email = $1", email.strip().lower()))

    async def list_users(self, organization_id: UUID) -> list[User]:
        rows = await self.db.fetch("SELECT * FROM users WHERE organization_id = $1 ORDER BY email", organization_id)
        return [u for u in [await self._user(r) for r in rows] if u is not None]

    # --- sensors

    async def add_sensor(self, sensor: IoTSensor) -> None:
        await self.db.execute(
            f"INSERT INTO iot_sensors ({SENSOR_COLUMNS}) VALUES ({_placeholders(SENSOR_COLUMNS)})",
            *_sensor_values(sensor),
        )

    async def get_sensor(self, organization_id: UUID, sensor_id: UUID) -> IoTSensor:
        row = await self.db.fetchrow(
            f"SELECT {SENSOR_COLUMNS} FROM iot_sensors WHERE organization_id = $1 AND id = $2",
            organization_id, sensor_id,
        )  # fmt: skip
        return sensor_from_row(_found(row, "sensor", sensor_id))

    async def find_sensor(self, organization_id: UUID, device_id: str, device_field: str = "") -> IoTSensor | None:
        row = await self.db.fetchrow(
            f"SELECT {SENSOR_COLUMNS} FROM iot_sensors "
            "WHERE organization_id = $1 AND sensor_id = $2 AND device_field = $3",
            organization_id, device_id, device_field,
        )  # fmt: skip
        return None if row is None else sensor_from_row(row)

    async def list_sensors(self, organization_id: UUID, where: SensorFilter = SensorFilter()) -> list[IoTSensor]:
        rows = await self.db.fetch(
            f"SELECT {SENSOR_COLUMNS} FROM iot_sensors WHERE organization_id = $1 ORDER BY location, sensor_id",
            organization_id,
        )
        sensors = [sensor_from_row(r) for r in rows]
        # Filters are applied here: an organization has hundreds of sensors, not millions.
        if where.building_id is not None:
            sensors = [s for s in sensors if s.building_id == where.building_id]
        if where.unit_id is not None:
            sensors = [s for s in sensors if s.unit_id == where.unit_id]
        if where.visible_units is not None or where.visible_buildings is not None:
            units, buildings = where.visible_units or frozenset(), where.visible_buildings or frozenset()
            sensors = [s for s in sensors if (s.unit_id in units) or (s.unit_id is None and s.building_id in buildings)]
        return sensors

    async def update_sensor(self, sensor: IoTSensor) -> None:
        # The last-reading columns belong to ingestion: an API update must not rewind them.
        changed = await self.db.execute(
            "UPDATE iot_sensors SET building_id = $3, unit_id = $4, sensor_id = $5, sensor_type = $6, kind = $7, "
            "manufacturer = $8, model = $9, firmware_version = $10, location = $11, floor = $12, "
            "unit_of_measure = $13, sampling_interval = $14, calibration_factor = $15, alert_threshold_min = $16, "
            "alert_threshold_max = $17, status = $18, installed_at = $19, updated_at = $20, device_format = $21, "
            "device_field = $22 WHERE organization_id = $1 AND id = $2",
            sensor.organization_id, sensor.id, sensor.building_id, sensor.unit_id, sensor.sensor_id,
            sensor.sensor_type, sensor.measurement_kind, sensor.manufacturer, sensor.model, sensor.firmware_version,
            sensor.location, sensor.floor, sensor.unit_of_measure, sensor.sampling_interval,
            sensor.calibration_factor, sensor.alert_threshold_min, sensor.alert_threshold_max, sensor.status,
            sensor.installed_at, sensor.updated_at, sensor.device_format, sensor.device_field,
        )  # fmt: skip
        if not changed:
            raise NotFound(f"sensor {sensor.id} not found")

    async def delete_sensor(self, organization_id: UUID, sensor_id: UUID) -> None:
        async with self.db.transaction() as tx:
            # Readings and alerts cascade in the schema; deleting them first keeps SQLite's cascade cheap.
            await tx.execute(
                "DELETE FROM iot_readings WHERE organization_id = $1 AND sensor_id = $2",
                organization_id,
                sensor_id,
            )
            await tx.execute(
                "DELETE FROM iot_alerts WHERE organization_id = $1 AND sensor_id = $2",
                organization_id,
                sensor_id,
            )
            deleted = await tx.execute(
                "DELETE FROM iot_sensors WHERE organization_id = $1 AND id = $2", organization_id, sensor_id
            )
            if not deleted:
                raise NotFound(f"sensor {sensor_id} not found")

    # --- readings

    async def ingest(self, batch: Sequence[Ingested], rejected: Sequence[DeadLetter] = ()) -> list[Ingested]:
        async with self.db.transaction() as tx:
            new: list[Ingested] = []
            if batch:
                inserted = await self._insert_new_readings(tx, [item.reading for item in batch])
                for item in batch:
                    key = (item.reading.sensor_id, item.reading.timestamp)
                    if key in inserted:
                        inserted.discard(key)  # the same reading twice in one batch counts once
                        new.append(item)
            if new:
                latest: dict[UUID, IoTReading] = {}
                for item in new:
                    seen = latest.get(item.reading.sensor_id)
                    if seen is None or seen.timestamp < item.reading.timestamp:
                        latest[item.reading.sensor_id] = item.reading
                await self._update_last_readings(tx, list(latest.values()))
                await self._apply_decisions(tx, new)
                await self._mark_rollups_dirty(tx, dirty_hours(item.reading for item in new))
            for letter in rejected:
                await tx.execute(
                    f"INSERT INTO dead_letters ({_DEAD_LETTER_COLUMNS}) VALUES ({_placeholders(_DEAD_LETTER_COLUMNS)})",
                    letter.organization_id, letter.topic, letter.payload_excerpt, letter.payload_size,
                    letter.reason, letter.detail, letter.received_at,
                )  # fmt: skip
        return new

    # The three bulk steps of `ingest` below are portable SQL run row by row or in multi-row statements;
    # PostgresStore replaces them with COPY and array parameters.

    async def _insert_new_readings(self, tx: Executor, readings: list[IoTReading]) -> set[tuple[UUID, datetime]]:
        """Insert, skipping (sensor, timestamp) pairs already stored; return the keys actually inserted."""
        inserted: set[tuple[UUID, datetime]] = set()
        for start in range(0, len(readings), _ROWS_PER_STATEMENT):
            chunk = readings[start : start + _ROWS_PER_STATEMENT]
            width = READING_COLUMNS.count(",") + 1
            values = ", ".join(f"({_placeholders(READING_COLUMNS, 1 + i * width)})" for i in range(len(chunk)))
            rows = await tx.fetch(
                f"INSERT INTO iot_readings ({READING_COLUMNS}) VALUES {values} "
                "ON CONFLICT (sensor_id, ts) DO NOTHING RETURNING sensor_id, ts",
                *[value for reading in chunk for value in reading_values(reading)],
            )
            inserted.update((as_uuid(r["sensor_id"]), as_time(r["ts"])) for r in rows)
        return inserted

    async def _mark_rollups_dirty(self, tx: Executor, marks: list[tuple[UUID, datetime]]) -> None:
        """Record the (sensor, UTC hour) pairs whose rollups the new readings change, for the refresher."""
        for start in range(0, len(marks), _ROWS_PER_STATEMENT):
            chunk = marks[start : start + _ROWS_PER_STATEMENT]
            values = ", ".join(f"(${2 * i + 1}, ${2 * i + 2})" for i in range(len(chunk)))
            await tx.execute(
                f"INSERT INTO iot_rollup_dirty (sensor_id, hour) VALUES {values} {MARK_CONFLICT}",
                *[value for mark in chunk for value in mark],
            )

    async def _update_last_readings(self, tx: Executor, latest: list[IoTReading]) -> None:
        """Move each sensor's last reading forward (never back: readings may arrive out of order)."""
        for reading in latest:
            await tx.execute(
                "UPDATE iot_sensors SET last_reading_at = $2, last_value = $3, "
                "last_battery_level = COALESCE($4, last_battery_level) "
                "WHERE id = $1 AND (last_reading_at IS NULL OR last_reading_at < $2)",
                reading.sensor_id, reading.timestamp, reading.value, reading.battery_level,
            )  # fmt: skip

    async def _clear_alerts(self, tx: Executor, organization_id: UUID, clears: list[ClearAlert]) -> None:
        for clear in clears:
            await tx.execute(
                "UPDATE iot_alerts SET cleared_at = $4 WHERE organization_id = $1 AND sensor_id = $2 "
                "AND alert_type = $3 AND cleared_at IS NULL AND ($5 IS NULL OR rule = $5)",
                organization_id, clear.sensor_id, clear.alert_type, clear.at, clear.rule,
            )  # fmt: skip

    async def apply_alert_decisions(self, organization_id: UUID, decisions: Sequence[AlertDecision]) -> None:
        """Apply decisions taken outside ingestion (the periodic window rules), in order, in one transaction."""
        async with self.db.transaction() as tx:
            await self._apply(tx, [(organization_id, d) for d in decisions])

    async def _apply_decisions(self, tx: Executor, new: list[Ingested]) -> None:
        await self._apply(tx, [(item.reading.organization_id, d) for item in new for d in item.decisions])

    async def _apply(self, tx: Executor, decisions: list[tuple[UUID, AlertDecision]]) -> None:
        """Apply alert decisions in arrival order, with a run of clears collapsed into its first one.

        Most readings of a sensor with rules say "clear" (nothing is wrong): those are applied in one bulk
        statement per organization at the end instead of one per reading.
        """
        clears: dict[tuple[UUID, UUID, AlertType, str | None], ClearAlert] = {}
        for org, decision in decisions:
            if isinstance(decision, ClearAlert):
                clears.setdefault((org, decision.sensor_id, decision.alert_type, decision.rule), decision)
                continue
            alert = decision.alert
            # The alert cleared before this new occurrence: close it first, so that this one opens a new alert.
            for key in [k for k in clears if k[:3] == (org, alert.sensor_id, alert.alert_type)]:
                await self._clear_alerts(tx, org, [clears.pop(key)])
            await tx.execute(_RAISE_ALERT, *_alert_values(alert))
        by_org: dict[UUID, list[ClearAlert]] = {}
        for (org, *_), clear in clears.items():
            by_org.setdefault(org, []).append(clear)
        for org, pending in by_org.items():
            await self._clear_alerts(tx, org, pending)

    async def list_readings(
        self,
        organization_id: UUID,
        sensor_id: UUID,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 1000,
    ) -> list[IoTReading]:
        clauses = ["organization_id = $1", "sensor_id = $2"]
        args: list[object] = [organization_id, sensor_id]
        if start is not None:
            args.append(start)
            clauses.append(f"ts >= ${len(args)}")
        if end is not None:
            args.append(end)
            clauses.append(f"ts < ${len(args)}")
        args.append(limit)
        rows = await self.db.fetch(
            f"SELECT {READING_COLUMNS} FROM iot_readings WHERE {' AND '.join(clauses)} "
            f"ORDER BY ts DESC LIMIT ${len(args)}",
            *args,
        )
        return [_reading(r) for r in rows]

    async def count_readings(self, organization_id: UUID, sensor_id: UUID) -> int:
        row = await self.db.fetchrow(
            "SELECT COUNT(*) AS n FROM iot_readings WHERE organization_id = $1 AND sensor_id = $2",
            organization_id, sensor_id,
        )  # fmt: skip
        return int(row["n"]) if row else 0

    # --- dead letters

    async def list_dead_letters(
        self, organization_id: UUID | None, reason: str | None = None, limit: int = 100
    ) -> list[DeadLetter]:
        clauses: list[str] = []
        args: list[object] = []
        for column, value in (("organization_id", organization_id), ("reason", reason)):
            if value is not None:
                args.append(value)
                clauses.append(f"{column} = ${len(args)}")
        args.append(limit)
        where = f"WHERE {' AND '.join(clauses)} " if clauses else ""
        rows = await self.db.fetch(
            f"SELECT id, {_DEAD_LETTER_COLUMNS} FROM dead_letters {where}ORDER BY id DESC LIMIT ${len(args)}", *args
        )
        return [
            DeadLetter(
                id=r["id"],
                organization_id=as_uuid_or_none(r["organization_id"]),
                topic=r["topic"],
                payload_excerpt=r["payload_excerpt"],
                payload_size=r["payload_size"],
                reason=r["reason"],
                detail=r["detail"],
                received_at=as_time(r["received_at"]),
            )  # fmt: skip
            for r in rows
        ]

    async def count_dead_letters(self, organization_id: UUID | None) -> dict[str, int]:
        if organization_id is None:
            rows = await self.db.fetch("SELECT reason, COUNT(*) AS n FROM dead_letters GROUP BY reason")
        else:
            rows = await self.db.fetch(
                "SELECT reason, COUNT(*) AS n FROM dead_letters WHERE organization_id = $1 GROUP BY reason",
                organization_id,
            )
        return {r["reason"]: int(r["n"]) for r in rows}

    # --- alerts

    async def get_alert(self, organization_id: UUID, alert_id: UUID) -> IoTAlert:
        row = await self.db.fetchrow(
            f"SELECT {ALERT_COLUMNS} FROM iot_alerts WHERE organization_id = $1 AND id = $2",
            organization_id,
            alert_id,
        )
        return alert_from_row(_found(row, "alert", alert_id))

    @staticmethod
    def _alert_scope(organization_id: UUID, where: AlertFilter) -> tuple[str, list[object]]:
        """The WHERE condition selecting the alerts of `where` (its limit aside), and its arguments."""
        clauses = ["organization_id = $1"]
        args: list[object] = [organization_id]

        def bind(value: object) -> str:
            args.append(value)
            return f"${len(args)}"

        if where.status is AlertStatus.ACTIVE:
            clauses.append("cleared_at IS NULL")
        elif where.status is AlertStatus.CLEARED:
            clauses.append("cleared_at IS NOT NULL")
        if where.acknowledged is not None:
            clauses.append("acknowledged_at IS NOT NULL" if where.acknowledged else "acknowledged_at IS NULL")
        equal = (
            ("sensor_id", where.sensor_id), ("building_id", where.building_id),
            ("alert_type", where.alert_type), ("severity", where.severity),
        )  # fmt: skip
        clauses.extend(f"{column} = {bind(value)}" for column, value in equal if value is not None)
        if where.start is not None:
            clauses.append(f"triggered_at >= {bind(where.start)}")
        if where.end is not None:
            clauses.append(f"triggered_at < {bind(where.end)}")
        if where.sensor_ids is not None:
            # Owner scope, in SQL so that the limit and the statistics count only what the owner may see:
            # an owner reads a handful of sensors (their units' and the common ones), bound one by one.
            ids = sorted(where.sensor_ids, key=str)
            clauses.append(f"sensor_id IN ({', '.join(bind(i) for i in ids)})" if ids else "1 = 0")
        return " AND ".join(clauses), args

    async def list_alerts(self, organization_id: UUID, where: AlertFilter = AlertFilter()) -> list[IoTAlert]:
        condition, args = self._alert_scope(organization_id, where)
        args.append(where.limit)
        rows = await self.db.fetch(
            f"SELECT {ALERT_COLUMNS} FROM iot_alerts WHERE {condition} "
            f"ORDER BY triggered_at DESC, id LIMIT ${len(args)}",
            *args,
        )
        return [alert_from_row(r) for r in rows]

    async def alert_statistics(self, organization_id: UUID, where: AlertFilter = AlertFilter()) -> AlertStatistics:
        condition, args = self._alert_scope(organization_id, where)
        # Whole milliseconds per alert on both dialects, so both give the same mean (SQLite's julianday() has
        # millisecond precision; the float difference is rounded back to it).
        if self.db.dialect == "postgres":
            ack_ms = "ROUND(EXTRACT(EPOCH FROM (acknowledged_at - triggered_at)) * 1000)"
        else:
            ack_ms = "ROUND((julianday(acknowledged_at) - julianday(triggered_at)) * 86400000)"
        totals = await self.db.fetchrow(
            "SELECT COUNT(*) AS total, "
            "COALESCE(SUM(CASE WHEN cleared_at IS NULL THEN 1 ELSE 0 END), 0) AS active, "
            "COALESCE(SUM(CASE WHEN cleared_at IS NULL AND acknowledged_at IS NULL THEN 1 ELSE 0 END), 0) "
            "AS active_unacknowledged, COUNT(acknowledged_at) AS acknowledged, "
            f"CAST(AVG({ack_ms}) AS DOUBLE PRECISION) AS mean_ack_ms FROM iot_alerts WHERE {condition}",
            *args,
        )
        groups = await self.db.fetch(
            f"WITH scoped AS (SELECT alert_type, severity, building_id FROM iot_alerts WHERE {condition}) "
            "SELECT 'type' AS dimension, alert_type AS value, COUNT(*) AS n FROM scoped GROUP BY alert_type "
            "UNION ALL SELECT 'severity', severity, COUNT(*) FROM scoped GROUP BY severity "
            "UNION ALL SELECT 'building', CAST(building_id AS TEXT), COUNT(*) FROM scoped GROUP BY building_id",
            *args,
        )
        assert totals is not None  # an aggregate without GROUP BY always returns one row
        counts: dict[str, dict[str, int]] = {"type": {}, "severity": {}, "building": {}}
        for g in groups:
            counts[g["dimension"]][g["value"]] = int(g["n"])
        mean_ms = totals["mean_ack_ms"]
        return AlertStatistics(
            total=int(totals["total"]),
            by_type={AlertType(k): n for k, n in counts["type"].items()},
            by_severity={AlertSeverity(k): n for k, n in counts["severity"].items()},
            by_building={UUID(k): n for k, n in counts["building"].items()},
            active=int(totals["active"]),
            active_unacknowledged=int(totals["active_unacknowledged"]),
            acknowledged=int(totals["acknowledged"]),
            mean_time_to_acknowledge_s=None if mean_ms is None else round(float(mean_ms) / 1000, 3),
        )

    async def acknowledge_alert(
        self, organization_id: UUID, alert_id: UUID, user_id: UUID, note: str | None, at: datetime
    ) -> IoTAlert:
        # The first acknowledgment wins: a second one must not rewrite who acknowledged and when.
        await self.db.execute(
            "UPDATE iot_alerts SET acknowledged_by = $3, acknowledged_at = $4, resolution_note = $5 "
            "WHERE organization_id = $1 AND id = $2 AND acknowledged_at IS NULL",
            organization_id, alert_id, user_id, at, note,
        )  # fmt: skip
        return await self.get_alert(organization_id, alert_id)
