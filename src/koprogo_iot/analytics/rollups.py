"""Hourly, daily and monthly rollups of the readings, refreshed incrementally from the dirty marks ingestion leaves.

Tables (migrations 0002, 0005): `iot_rollups_hourly` (UTC hours), `iot_rollups_daily` (local days in
Europe/Brussels, `bucket` = the UTC instant of local midnight: 23 or 25 hours on DST days) and `iot_rollups_monthly`
(local months). One row per sensor and bucket that holds at least one reading, with count, sum, min, max of the
values, the first and last reading, and for counters:
- `increase`: the sum of `counter_steps` increases of the steps *between the bucket's own readings* (its first to
  its last one), the counter rules starting afresh at the bucket's first reading; NULL for gauges.
- `resets`, `rollovers`: how many of those steps were resets or rollovers.
A daily row is built from its hourly rows: their increases plus the steps between consecutive hours' last and first
readings (`boundary_step`), so a daily row is exactly what an hourly row would be over the whole day; a monthly row
is built from its daily rows the same way.

Combining rows into interpolated consumption (what `domain.consumption` gives on the raw readings)
------------------------------------------------------------------------------------------------------
The step from one row's last reading to the next row's first reading (the next row of the same sensor, with
any number of empty buckets between) is in neither row. For a bucket [start, end) of a grid aligned to the rows'
buckets (hourly rows for hours; daily rows for days, weeks, months, years in Brussels):
    consumption = sum of `increase` of the rows whose bucket lies in [start, end)
                + for each pair of consecutive rows (a, b): boundary_step(a, b).increase
                  * overlap([a.last_ts, b.first_ts], [start, end)) / (b.first_ts - a.last_ts)
Read one row before the range and one after it too, so the steps across the range's edges are interpolated.
None (unknown) when no inner step and no boundary step overlaps the bucket. This equals `domain.consumption` on
the raw readings, except after a jitter (a drop under 1 %) just before a bucket starts: the domain keeps the
higher baseline across it, the rollup restarts at the bucket's first reading and counts the climb back (at most
the drop) again. Grids not aligned to hours (15 minutes) must use the raw readings.

Refreshing: `refresh_rollups` claims dirty (sensor, hour) marks, recomputes those hours from the raw readings and
the local days holding them from the hourly rows, then those days' months from the daily rows. Any number of
processes may run it on PostgreSQL (marks are claimed with SKIP LOCKED; a per-sensor advisory lock orders their
daily recomputations). Rollover moduli are not
known per sensor yet: counters are computed without one, so a wrap counts as a reset.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from koprogo_iot.domain.consumption import (
    DEFAULT_ZONE,
    Bucket,
    CounterStep,
    Point,
    StepKind,
    counter_steps,
    step_increase,
)
from koprogo_iot.domain.errors import StorageUnavailable
from koprogo_iot.domain.sensors import MeasurementKind
from koprogo_iot.storage.database import Database, Executor, Row
from koprogo_iot.storage.sql_store import SqlStore, as_time, as_uuid, as_uuid_or_none

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
DEFAULT_LIMIT = 5000
ROLLUP_COLUMNS = (
    "sensor_id, bucket, organization_id, building_id, unit_id, count, sum, min, max, first_ts, first_value, "
    "last_ts, last_value, increase, resets, rollovers"
)
_COLUMNS = [c.strip() for c in ROLLUP_COLUMNS.split(",")]
_UPDATE = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[2:])
_ROWS_PER_STATEMENT = 1_000  # 16 columns: 16,000 parameters, under SQLite's 32,766 and asyncpg's 32,767
HOURLY, DAILY, MONTHLY = "iot_rollups_hourly", "iot_rollups_daily", "iot_rollups_monthly"


@dataclass(frozen=True, slots=True)
class Rollup:
    """One sensor's readings in one bucket, summarized (a row of `iot_rollups_hourly` or `iot_rollups_daily`)."""

    sensor_id: UUID
    bucket: datetime
    organization_id: UUID
    building_id: UUID
    unit_id: UUID | None
    count: int
    sum: float
    min: float
    max: float
    first_ts: datetime
    first_value: float
    last_ts: datetime
    last_value: float
    increase: float | None  # None for gauges
    resets: int
    rollovers: int

    @property
    def first(self) -> Point:
        return self.first_ts, self.first_value

    @property
    def last(self) -> Point:
        return self.last_ts, self.last_value

    @classmethod
    def from_row(cls, row: Row) -> Rollup:
        return cls(
            sensor_id=as_uuid(row["sensor_id"]), bucket=as_time(row["bucket"]),
            organization_id=as_uuid(row["organization_id"]), building_id=as_uuid(row["building_id"]),
            unit_id=as_uuid_or_none(row["unit_id"]), count=row["count"], sum=row["sum"], min=row["min"],
            max=row["max"], first_ts=as_time(row["first_ts"]), first_value=row["first_value"],
            last_ts=as_time(row["last_ts"]), last_value=row["last_value"], increase=row["increase"],
            resets=row["resets"], rollovers=row["rollovers"],
        )  # fmt: skip


def boundary_step(previous: Rollup, following: Rollup) -> CounterStep:
    """The step from `previous`'s last reading to `following`'s first one, which neither row's increase covers."""
    increase, kind, _ = step_increase(previous.last_value, following.first_value)
    return CounterStep(previous.last_ts, following.first_ts, increase, kind)


def local_month(instant: datetime, zone: ZoneInfo) -> Bucket:
    """The local month in `zone` holding `instant`, as UTC instants of its first and the next month's midnight."""
    day = instant.astimezone(zone).date().replace(day=1)
    following = (day + timedelta(days=32)).replace(day=1)
    return (
        datetime(day.year, day.month, 1, tzinfo=zone).astimezone(UTC),
        datetime(following.year, following.month, 1, tzinfo=zone).astimezone(UTC),
    )


def local_day(instant: datetime, zone: ZoneInfo) -> Bucket:
    """The local day in `zone` holding `instant`, as UTC instants of its two midnights (23 to 25 hours apart)."""
    day = instant.astimezone(zone).date()
    following = day + timedelta(days=1)
    return (
        datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC),
        datetime(following.year, following.month, following.day, tzinfo=zone).astimezone(UTC),
    )


@dataclass(frozen=True, slots=True)
class _Reading:
    ts: datetime
    value: float
    tenancy: tuple[UUID, UUID, UUID | None]  # organization, building, unit of the reading


def summarize(sensor_id: UUID, bucket: datetime, readings: Sequence[_Reading], cumulative: bool) -> Rollup:
    """The rollup of one bucket's readings (sorted by time, at least one)."""
    values = [r.value for r in readings]
    steps = counter_steps([(r.ts, r.value) for r in readings]) if cumulative else []
    return Rollup(
        sensor_id, bucket, *readings[-1].tenancy, count=len(values), sum=math.fsum(values), min=min(values),
        max=max(values), first_ts=readings[0].ts, first_value=values[0], last_ts=readings[-1].ts,
        last_value=values[-1], increase=math.fsum(s.increase for s in steps) if cumulative else None,
        resets=sum(s.kind is StepKind.RESET for s in steps), rollovers=sum(s.kind is StepKind.ROLLOVER for s in steps),
    )  # fmt: skip


def combine(bucket: datetime, rows: Sequence[Rollup], cumulative: bool) -> Rollup:
    """The rollup of a bucket from the rollups of its sub-buckets (sorted, at least one): a day from its hours."""
    boundaries = [boundary_step(a, b) for a, b in itertools.pairwise(rows)] if cumulative else []
    increases = [r.increase or 0.0 for r in rows] + [s.increase for s in boundaries]
    first, last = rows[0], rows[-1]
    return Rollup(
        last.sensor_id, bucket, last.organization_id, last.building_id, last.unit_id,
        count=sum(r.count for r in rows), sum=math.fsum(r.sum for r in rows), min=min(r.min for r in rows),
        max=max(r.max for r in rows), first_ts=first.first_ts, first_value=first.first_value, last_ts=last.last_ts,
        last_value=last.last_value, increase=math.fsum(increases) if cumulative else None,
        resets=sum(r.resets for r in rows) + sum(s.kind is StepKind.RESET for s in boundaries),
        rollovers=sum(r.rollovers for r in rows) + sum(s.kind is StepKind.ROLLOVER for s in boundaries),
    )  # fmt: skip


async def refresh_rollups(
    db_or_store: Database | SqlStore, *, limit: int = DEFAULT_LIMIT, zone: str = DEFAULT_ZONE
) -> int:
    """Claim up to `limit` dirty marks and recompute their hourly rows and their days' daily rows; return the count."""
    db = db_or_store.db if isinstance(db_or_store, SqlStore) else db_or_store
    tz = ZoneInfo(zone)
    async with db.transaction() as tx:
        # Claimed marks are deleted in this transaction: if the refresh fails they come back with the rollback.
        skip_locked = " FOR UPDATE SKIP LOCKED" if tx.dialect == "postgres" else ""
        claimed = await tx.fetch(
            "DELETE FROM iot_rollup_dirty WHERE (sensor_id, hour) IN "
            f"(SELECT sensor_id, hour FROM iot_rollup_dirty LIMIT $1{skip_locked}) RETURNING sensor_id, hour",
            limit,
        )
        hours: dict[UUID, list[datetime]] = {}
        for row in claimed:
            hours.setdefault(as_uuid(row["sensor_id"]), []).append(as_time(row["hour"]))
        kinds = await _lock_sensors(tx, sorted(hours))
        for sensor_id, kind in kinds.items():
            await _refresh_sensor(tx, sensor_id, sorted(hours[sensor_id]), kind is MeasurementKind.CUMULATIVE, tz)
    return len(claimed)


async def rebuild_rollups(db: Database, organization_id: UUID | None = None, *, zone: str = DEFAULT_ZONE) -> int:
    """Recompute every rollup row (of one organization, or all) from the raw readings; return the hourly rows."""
    tz = ZoneInfo(zone)
    if organization_id is None:
        sensors = await db.fetch("SELECT id FROM iot_sensors ORDER BY id")
    else:
        sensors = await db.fetch("SELECT id FROM iot_sensors WHERE organization_id = $1 ORDER BY id", organization_id)
    written = 0
    for sensor in sensors:  # one transaction per sensor: a long rebuild does not hold one huge transaction
        sensor_id = as_uuid(sensor["id"])
        async with db.transaction() as tx:
            kinds = await _lock_sensors(tx, [sensor_id])
            if sensor_id not in kinds:
                continue  # deleted meanwhile
            await tx.execute("DELETE FROM iot_rollup_dirty WHERE sensor_id = $1", sensor_id)
            for table in (HOURLY, DAILY, MONTHLY):
                await tx.execute(f"DELETE FROM {table} WHERE sensor_id = $1", sensor_id)
            written += await _refresh_sensor(tx, sensor_id, None, kinds[sensor_id] is MeasurementKind.CUMULATIVE, tz)
    return written


async def run_refresher(
    db: Database, interval: float = 5.0, *, limit: int = DEFAULT_LIMIT, zone: str = DEFAULT_ZONE
) -> None:
    """Refresh rollups until cancelled: again at once while marks remain, else every `interval` seconds."""
    while True:
        try:
            done = await refresh_rollups(db, limit=limit, zone=zone)
        except StorageUnavailable as exc:
            log.warning("rollup refresh failed, retrying in %.0f s: %s", interval, exc)
            done = 0
        else:
            if done:
                log.debug("refreshed rollups of %d dirty sensor hours", done)
        if done < limit:
            await asyncio.sleep(interval)


async def _lock_sensors(tx: Executor, sensor_ids: list[UUID]) -> dict[UUID, MeasurementKind]:
    """The kind of each sensor still existing; on PostgreSQL, hold each one's refresh lock until commit."""
    if not sensor_ids:
        return {}
    if tx.dialect == "postgres":
        # Two refreshers may hold different hours of one day: the second waits here, then reads the first's hours.
        # Locks are taken in id order so two refreshers cannot deadlock.
        await tx.fetch(
            "SELECT count(pg_advisory_xact_lock(hashtextextended(s.id::text, 0))) "
            "FROM (SELECT id FROM unnest($1::uuid[]) AS id ORDER BY id) s",
            sensor_ids,
        )
    placeholders = ", ".join(f"${i}" for i in range(1, len(sensor_ids) + 1))
    rows = await tx.fetch(f"SELECT id, kind FROM iot_sensors WHERE id IN ({placeholders})", *sensor_ids)
    return {as_uuid(r["id"]): MeasurementKind(r["kind"]) for r in rows}


async def _refresh_sensor(
    tx: Executor, sensor_id: UUID, hours: list[datetime] | None, cumulative: bool, zone: ZoneInfo
) -> int:
    """Recompute the sensor's given hours (all when None) and the days holding them; return the hourly rows."""
    hour_ranges = None if hours is None else _merge((hour, hour + HOUR) for hour in hours)
    readings = await _fetch_sensor(
        tx, "SELECT ts, value, organization_id, building_id, unit_id FROM iot_readings", "ts", sensor_id, hour_ranges
    )
    by_hour: dict[datetime, list[_Reading]] = {}
    for row in readings:
        ts = as_time(row["ts"])
        tenancy = (as_uuid(row["organization_id"]), as_uuid(row["building_id"]), as_uuid_or_none(row["unit_id"]))
        by_hour.setdefault(ts.replace(minute=0, second=0, microsecond=0), []).append(
            _Reading(ts, row["value"], tenancy)
        )
    hourly = [summarize(sensor_id, hour, rows, cumulative) for hour, rows in by_hour.items()]
    await _upsert(tx, HOURLY, hourly)
    days = _merge(local_day(hour, zone) for hour in (by_hour if hours is None else hours))
    if hours is not None:
        await _delete(tx, HOURLY, sensor_id, [hour for hour in hours if hour not in by_hour])
        # The days' other hours were not recomputed: read them all back (this transaction sees its own writes).
        rows = await _fetch_sensor(tx, f"SELECT {ROLLUP_COLUMNS} FROM {HOURLY}", "bucket", sensor_id, days)
        hourly = [Rollup.from_row(row) for row in rows]
    by_day: dict[datetime, list[Rollup]] = {}
    for rollup in hourly:
        by_day.setdefault(local_day(rollup.bucket, zone)[0], []).append(rollup)
    daily = [combine(day, rows, cumulative) for day, rows in by_day.items()]
    await _upsert(tx, DAILY, daily)
    await _delete(tx, DAILY, sensor_id, [start for start, _ in days if start not in by_day])
    # Months from their days, the same way: read back the months' other days when only some were recomputed.
    months = _merge(local_month(start, zone) for start, _ in days)
    if hours is not None:
        rows = await _fetch_sensor(tx, f"SELECT {ROLLUP_COLUMNS} FROM {DAILY}", "bucket", sensor_id, months)
        daily = [Rollup.from_row(row) for row in rows]
    by_month: dict[datetime, list[Rollup]] = {}
    for rollup in sorted(daily, key=lambda r: r.bucket):
        by_month.setdefault(local_month(rollup.bucket, zone)[0], []).append(rollup)
    await _upsert(tx, MONTHLY, [combine(month, rows, cumulative) for month, rows in by_month.items()])
    await _delete(tx, MONTHLY, sensor_id, [start for start, _ in months if start not in by_month])
    return len(hourly)


async def _fetch_sensor(
    tx: Executor, select: str, column: str, sensor_id: UUID, ranges: list[Bucket] | None
) -> list[Row]:
    """One sensor's rows with `column` in any of `ranges` (all rows when None), in `column` order: one query."""
    args: list[object] = [sensor_id]
    clauses = []
    for start, end in ranges or ():
        args += [start, end]
        clauses.append(f"({column} >= ${len(args) - 1} AND {column} < ${len(args)})")
    within = f" AND ({' OR '.join(clauses)})" if ranges is not None else ""
    return await tx.fetch(f"{select} WHERE sensor_id = $1{within} ORDER BY {column}", *args)


async def _upsert(tx: Executor, table: str, rollups: list[Rollup]) -> None:
    width = len(_COLUMNS)
    for start in range(0, len(rollups), _ROWS_PER_STATEMENT):
        chunk = rollups[start : start + _ROWS_PER_STATEMENT]
        values = ", ".join(
            "(" + ", ".join(f"${i * width + j}" for j in range(1, width + 1)) + ")" for i in range(len(chunk))
        )
        await tx.execute(
            f"INSERT INTO {table} ({ROLLUP_COLUMNS}) VALUES {values} ON CONFLICT (sensor_id, bucket) DO UPDATE SET "
            f"{_UPDATE}",
            *[getattr(rollup, column) for rollup in chunk for column in _COLUMNS],
        )


async def _delete(tx: Executor, table: str, sensor_id: UUID, buckets: list[datetime]) -> None:
    """Remove rows of buckets left without readings (readings deleted or dropped by retention)."""
    for start in range(0, len(buckets), _ROWS_PER_STATEMENT):
        chunk = buckets[start : start + _ROWS_PER_STATEMENT]
        placeholders = ", ".join(f"${i}" for i in range(2, len(chunk) + 2))
        await tx.execute(f"DELETE FROM {table} WHERE sensor_id = $1 AND bucket IN ({placeholders})", sensor_id, *chunk)


def _merge(intervals: Iterable[Bucket]) -> list[Bucket]:
    """Sorted, overlapping or touching intervals merged into one."""
    merged: list[Bucket] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
