"""Rollups in the database: the stale marks ingestion leaves, and their refresh (`RollupMaintenance`).

The rollups themselves (what a row holds, how hours make a day and days a month) are `domain.rollups`. Refreshing
claims stale (sensor, hour) marks, recomputes those hours from the raw readings and the local days and months
holding them from the rows below. Any number of processes may refresh on PostgreSQL: marks are claimed with SKIP
LOCKED, and a per-sensor advisory lock orders their daily recomputations.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from koprogo_iot.domain.consumption import DEFAULT_ZONE, Bucket
from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.domain.rollups import (
    Difference,
    Observation,
    Rollup,
    Rollups,
    Verification,
    combine,
    derive,
    differences,
    local_day,
    local_month,
    summarize,
)
from koprogo_iot.domain.sensors import MeasurementKind
from koprogo_iot.storage.sql import horizons
from koprogo_iot.storage.sql.database import Database, Executor, Row
from koprogo_iot.storage.sql.rows import Table, as_time, as_uuid, placeholders

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
DEFAULT_LIMIT = 5000
HOURLY = Table("iot_rollups_hourly", Rollup)
DAILY = Table("iot_rollups_daily", Rollup)
MONTHLY = Table("iot_rollups_monthly", Rollup)
_ROWS_PER_STATEMENT = 1_000  # 21 columns: 21,000 parameters, under SQLite's 32,766 and asyncpg's 32,767
_UPDATE = ", ".join(f"{c} = excluded.{c}" for c in HOURLY.columns[2:])
# A mark that already exists is locked, not skipped: a refresher claims marks with SKIP LOCKED, so it cannot take
# this one and read the hour's readings before this transaction's reading is committed (and then lose it).
# The update never happens (WHERE false) but PostgreSQL locks the row anyway; SQLite has one writer at a time.
_MARK_CONFLICT = "ON CONFLICT (sensor_id, hour) DO UPDATE SET hour = excluded.hour WHERE false"


def stale_hours(readings: Iterable[IoTReading]) -> list[tuple[UUID, datetime]]:
    """The distinct (sensor, UTC hour) pairs of `readings`, sorted so concurrent batches lock marks in one order."""
    marks = {(r.sensor_id, r.timestamp.astimezone(UTC).replace(minute=0, second=0, microsecond=0)) for r in readings}
    return sorted(marks)


async def mark_stale(tx: Executor, readings: Iterable[IoTReading]) -> None:
    """Record the (sensor, UTC hour) pairs whose rollups new readings change, for the refresher."""
    marks = stale_hours(readings)
    if tx.dialect == "postgres":  # WITH ORDINALITY keeps the sorted order, in which concurrent batches lock marks
        await tx.execute(
            "INSERT INTO iot_rollup_dirty (sensor_id, hour) SELECT m.sensor_id, m.hour "
            "FROM unnest($1::uuid[], $2::timestamptz[]) WITH ORDINALITY AS m(sensor_id, hour, n) ORDER BY m.n "
            f"{_MARK_CONFLICT}",
            [sensor_id for sensor_id, _ in marks],
            [hour for _, hour in marks],
        )
        return
    await _insert_marks(tx, marks, _MARK_CONFLICT)


async def _insert_marks(tx: Executor, marks: list[tuple[UUID, datetime]], conflict: str) -> None:
    for start in range(0, len(marks), _ROWS_PER_STATEMENT):
        chunk = marks[start : start + _ROWS_PER_STATEMENT]
        values = ", ".join(f"(${2 * i + 1}, ${2 * i + 2})" for i in range(len(chunk)))
        await tx.execute(
            f"INSERT INTO iot_rollup_dirty (sensor_id, hour) VALUES {values} {conflict}",
            *[value for mark in chunk for value in mark],
        )


class SqlRollups:
    def __init__(self, db: Database, zone: str = DEFAULT_ZONE) -> None:
        self.db = db
        self.zone = zone

    async def refresh(self, limit: int = DEFAULT_LIMIT) -> int:
        return await refresh_rollups(self.db, limit=limit, zone=self.zone)

    async def rebuild(self, organization_id: UUID | None = None, sensor_ids: list[UUID] | None = None) -> int:
        return await rebuild_rollups(self.db, organization_id, sensor_ids, zone=self.zone)

    async def verify(
        self,
        organization_id: UUID | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        on_sensor: Callable[[int, int], None] | None = None,
    ) -> Verification:
        return await verify_rollups(self.db, organization_id, start, end, zone=self.zone, on_sensor=on_sensor)


async def refresh_rollups(db: Database, *, limit: int = DEFAULT_LIMIT, zone: str = DEFAULT_ZONE) -> int:
    """Claim up to `limit` stale marks and recompute their hours, days and months; return how many marks.

    The marks are claimed in a short transaction of their own. Ingestion marks the hours it writes in its own
    transactions (`mark_stale`), and an insert of a mark whose delete is not committed yet waits for that commit:
    claiming in the recomputing transaction held every worker's commit for the whole recomputation (seconds at
    10,000 readings/s, benchmarks/README.md, live path). A reading committed after its hour was claimed marks it
    again, for the next refresh; one still uncommitted holds its mark, which SKIP LOCKED leaves alone. If the
    recomputation fails, the claimed marks are put back.
    """
    tz = ZoneInfo(zone)
    async with db.transaction() as tx:
        skip_locked = " FOR UPDATE SKIP LOCKED" if tx.dialect == "postgres" else ""
        claimed = await tx.fetch(
            "DELETE FROM iot_rollup_dirty WHERE (sensor_id, hour) IN "
            f"(SELECT sensor_id, hour FROM iot_rollup_dirty LIMIT $1{skip_locked}) RETURNING sensor_id, hour",
            limit,
        )
    hours: dict[UUID, list[datetime]] = {}
    for row in claimed:
        hours.setdefault(as_uuid(row["sensor_id"]), []).append(as_time(row["hour"]))
    try:
        async with db.transaction() as tx:
            counters = await _lock_sensors(tx, sorted(hours))
            for sensor_id, counter in counters.items():
                await _refresh_sensor(tx, sensor_id, sorted(hours[sensor_id]), counter, tz)
    except BaseException:
        await asyncio.shield(_mark_again(db, hours))  # even when cancelled: the marks are all that says "stale"
        raise
    return len(claimed)


async def _mark_again(db: Database, hours: dict[UUID, list[datetime]]) -> None:
    marks = sorted((sensor_id, hour) for sensor_id, claimed in hours.items() for hour in claimed)
    try:
        async with db.transaction() as tx:
            await _insert_marks(tx, marks, "ON CONFLICT DO NOTHING")
    except Exception:
        # The database is gone as well: these hours stay as they were until a reading marks them again, or
        # `koprogo-iot verify-rollups --repair` finds them.
        log.exception("rollups: %d stale hour(s) could not be marked again after a failed refresh", len(marks))


async def rebuild_rollups(
    db: Database,
    organization_id: UUID | None = None,
    sensor_ids: list[UUID] | None = None,
    *,
    zone: str = DEFAULT_ZONE,
) -> int:
    """Recompute every rollup row (of one organization, or all; of some sensors only) from the raw readings; return
    the hourly rows. Rows before the sensor's organization's raw horizon (retention) are kept: their readings are
    gone."""
    tz = ZoneInfo(zone)
    written = 0
    for sensor_id in await _sensors(db, organization_id, sensor_ids):
        # One transaction per sensor: a long rebuild does not hold one huge transaction.
        async with db.transaction() as tx:
            counters = await _lock_sensors(tx, [sensor_id])
            if sensor_id not in counters:
                continue  # deleted meanwhile
            await tx.execute("DELETE FROM iot_rollup_dirty WHERE sensor_id = $1", sensor_id)
            horizon = (await horizons.of_sensors(tx, [sensor_id])).get(sensor_id)
            if horizon is not None:
                written += await _rebuild_from(tx, sensor_id, horizon, counters[sensor_id], tz)
                continue
            for table in (HOURLY, DAILY, MONTHLY):
                await tx.execute(f"DELETE FROM {table.name} WHERE sensor_id = $1", sensor_id)
            written += await _refresh_sensor(tx, sensor_id, None, counters[sensor_id], tz)
    return written


@dataclass(frozen=True, slots=True)
class _Counter:
    """What the rules of a sensor's rollups depend on."""

    cumulative: bool  # a counter; a gauge's rows have no counter columns
    rollover: float | None  # the counter's register size, None when unknown


async def _lock_sensors(tx: Executor, sensor_ids: list[UUID]) -> dict[UUID, _Counter]:
    """The rules of each sensor still existing; on PostgreSQL, hold each one's refresh lock until commit."""
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
    rows = await tx.fetch(
        f"SELECT id, kind, rollover FROM iot_sensors WHERE id IN ({placeholders(len(sensor_ids))})", *sensor_ids
    )
    return {
        as_uuid(r["id"]): _Counter(MeasurementKind(r["kind"]) is MeasurementKind.CUMULATIVE, r["rollover"])
        for r in rows
    }


async def _refresh_sensor(
    tx: Executor, sensor_id: UUID, hours: list[datetime] | None, counter: _Counter, zone: ZoneInfo
) -> int:
    """Recompute the sensor's given hours (all when None), the later hours whose starting baseline they move, and
    the days and months holding them; return the hourly rows written."""
    if hours is None:
        by_hour = await _observations(tx, sensor_id, None)
        hourly, baseline = [], None
        for hour, readings in by_hour.items():
            hourly.append(summarize(sensor_id, hour, readings, counter.cumulative, baseline, counter.rollover))
            baseline = hourly[-1].baseline
        await _upsert(tx, HOURLY, hourly)
        await _roll_up(tx, sensor_id, list(by_hour), counter, zone)
        return len(hourly)
    hourly, emptied = await _rehour(tx, sensor_id, hours, counter)
    await _upsert(tx, HOURLY, hourly)
    await _delete(tx, HOURLY, sensor_id, emptied)
    await _roll_up(tx, sensor_id, [r.bucket for r in hourly] + emptied, counter, zone)
    return len(hourly)


async def _rehour(
    tx: Executor, sensor_id: UUID, hours: list[datetime], counter: _Counter
) -> tuple[list[Rollup], list[datetime]]:
    """The new rows of the stale `hours` (sorted) and of the later hours whose `baseline_in` is no longer the
    baseline before them, and the stale hours left without readings. Hours are walked in order from the row before
    the first stale one, carrying the baseline, and the walk stops at the first later row that already starts from
    the baseline it follows: every row after it was computed from the baselines that still hold."""
    by_hour = await _observations(tx, sensor_id, _merge((hour, hour + HOUR) for hour in hours))
    before = await tx.fetchrow(
        HOURLY.select("sensor_id = $1 AND bucket < $2") + " ORDER BY bucket DESC LIMIT 1", sensor_id, hours[0]
    )
    baseline = HOURLY.decode(before).baseline if before is not None else None
    stored = {
        row.bucket: row
        for row in map(
            HOURLY.decode, await _fetch_sensor(tx, HOURLY.select(), "bucket", sensor_id, [(hours[0], hours[-1] + HOUR)])
        )
    }
    stale = set(hours)
    written: list[Rollup] = []
    emptied: list[datetime] = []
    for hour in sorted(stale | set(stored)):
        if hour in by_hour:
            written.append(summarize(sensor_id, hour, by_hour[hour], counter.cumulative, baseline, counter.rollover))
            baseline = written[-1].baseline
        elif hour not in stored:
            continue  # stale, but neither readings nor a row (readings deleted before any refresh)
        elif hour in stale:
            emptied.append(hour)  # its readings were deleted: the baseline before it goes on to the next row
        elif stored[hour].baseline_in != baseline and counter.cumulative:
            written.append(await _rehour_one(tx, sensor_id, hour, counter, baseline))
            baseline = written[-1].baseline
        else:
            baseline = stored[hour].baseline
    # After the last stale hour, recompute the following rows one by one while the baseline they start from moved.
    hour = hours[-1]
    while counter.cumulative:
        following = await tx.fetchrow(
            HOURLY.select("sensor_id = $1 AND bucket > $2") + " ORDER BY bucket LIMIT 1", sensor_id, hour
        )
        if following is None:
            break
        row = HOURLY.decode(following)
        if row.baseline_in == baseline:
            break
        hour = row.bucket
        written.append(await _rehour_one(tx, sensor_id, hour, counter, baseline))
        baseline = written[-1].baseline
    return written, emptied


async def _rehour_one(
    tx: Executor, sensor_id: UUID, hour: datetime, counter: _Counter, baseline: float | None
) -> Rollup:
    """The row of an hour that has readings, recomputed from the baseline before it."""
    readings = (await _observations(tx, sensor_id, [(hour, hour + HOUR)]))[hour]
    return summarize(sensor_id, hour, readings, counter.cumulative, baseline, counter.rollover)


async def _observations(
    tx: Executor, sensor_id: UUID, ranges: list[Bucket] | None
) -> dict[datetime, list[Observation]]:
    """The sensor's readings in `ranges` (all when None) by UTC hour, in time order."""
    readings = await _fetch_sensor(
        tx, "SELECT ts, value, organization_id, building_id, unit_id FROM iot_readings", "ts", sensor_id, ranges
    )
    by_hour: dict[datetime, list[Observation]] = {}
    for row in readings:
        ts = as_time(row["ts"])
        unit = None if row["unit_id"] is None else as_uuid(row["unit_id"])
        tenancy = (as_uuid(row["organization_id"]), as_uuid(row["building_id"]), unit)
        by_hour.setdefault(ts.replace(minute=0, second=0, microsecond=0), []).append(
            Observation(ts, row["value"], tenancy)
        )
    return by_hour


async def _roll_up(tx: Executor, sensor_id: UUID, hours: list[datetime], counter: _Counter, zone: ZoneInfo) -> None:
    """Recompute the local days holding `hours` from their hourly rows, and those days' months from their days."""
    days = _merge(local_day(hour, zone) for hour in hours)
    if not days:
        return  # a sensor without readings
    # The days' other hours were not recomputed: read them all back (this transaction sees its own writes).
    hourly = [HOURLY.decode(row) for row in await _fetch_sensor(tx, HOURLY.select(), "bucket", sensor_id, days)]
    by_day: dict[datetime, list[Rollup]] = {}
    for rollup in hourly:
        by_day.setdefault(local_day(rollup.bucket, zone)[0], []).append(rollup)
    await _upsert(tx, DAILY, [combine(day, rows, counter.cumulative, counter.rollover) for day, rows in by_day.items()])
    await _delete(tx, DAILY, sensor_id, [start for start, _ in days if start not in by_day])
    # Months from their days, the same way: read back the months' other days.
    months = _merge(_months(days, zone))
    daily = [DAILY.decode(row) for row in await _fetch_sensor(tx, DAILY.select(), "bucket", sensor_id, months)]
    by_month: dict[datetime, list[Rollup]] = {}
    for rollup in daily:
        by_month.setdefault(local_month(rollup.bucket, zone)[0], []).append(rollup)
    monthly = [combine(month, rows, counter.cumulative, counter.rollover) for month, rows in by_month.items()]
    await _upsert(tx, MONTHLY, monthly)
    await _delete(tx, MONTHLY, sensor_id, [start for start, _ in months if start not in by_month])


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


async def _upsert(tx: Executor, table: Table[Rollup], rollups: list[Rollup]) -> None:
    width = len(table.columns)
    for start in range(0, len(rollups), _ROWS_PER_STATEMENT):
        chunk = rollups[start : start + _ROWS_PER_STATEMENT]
        values = ", ".join(f"({placeholders(width, 1 + i * width)})" for i in range(len(chunk)))
        await tx.execute(
            f"INSERT INTO {table.name} ({table.column_list()}) VALUES {values} "
            f"ON CONFLICT (sensor_id, bucket) DO UPDATE SET {_UPDATE}",
            *[value for rollup in chunk for value in table.values(rollup)],
        )


async def _delete(tx: Executor, table: Table[Rollup], sensor_id: UUID, buckets: list[datetime]) -> None:
    """Remove rows of buckets left without readings (readings deleted or dropped by retention)."""
    for start in range(0, len(buckets), _ROWS_PER_STATEMENT):
        chunk = buckets[start : start + _ROWS_PER_STATEMENT]
        await tx.execute(
            f"DELETE FROM {table.name} WHERE sensor_id = $1 AND bucket IN ({placeholders(len(chunk), 2)})",
            sensor_id,
            *chunk,
        )


async def _sensors(db: Database, organization_id: UUID | None, sensor_ids: list[UUID] | None) -> list[UUID]:
    """The ids of the sensors (of one organization, or all), in id order; only those of `sensor_ids` if given."""
    if organization_id is None:
        rows = await db.fetch("SELECT id FROM iot_sensors ORDER BY id")
    else:
        rows = await db.fetch("SELECT id FROM iot_sensors WHERE organization_id = $1 ORDER BY id", organization_id)
    found = [as_uuid(row["id"]) for row in rows]
    return found if sensor_ids is None else [sensor_id for sensor_id in found if sensor_id in set(sensor_ids)]


# Bounds that hold every reading the API accepts (api/inputs: 2000 to 2100), for an unbounded period.
_EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
_LATEST = datetime(3000, 1, 1, tzinfo=UTC)


async def verify_rollups(
    db: Database,
    organization_id: UUID | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    zone: str = DEFAULT_ZONE,
    on_sensor: Callable[[int, int], None] | None = None,
) -> Verification:
    """Recompute the hourly, daily and monthly rows of [start, end) from the raw readings and compare them with the
    stored ones (after refreshing the stale hours, as queries do). The period is widened to whole local months, so
    that every day and month compared is recomputed whole. Without `start`, the counter rules run from each
    sensor's first reading; with it, from the state the stored row before the period left (verify from the start
    to check that too). A sensor whose organization's raw readings expired (retention) is checked from the first
    whole local month after its horizon: the rows before are kept as they are. `on_sensor(done, total)` follows the
    progress."""
    tz = ZoneInfo(zone)
    while await refresh_rollups(db, zone=zone) >= DEFAULT_LIMIT:
        pass
    first = None if start is None else local_month(start, tz)[0]
    last = None if end is None else local_month(end - timedelta(microseconds=1), tz)[1]
    sensors = await _sensors(db, organization_id, None)
    kept = await horizons.of_sensors(db, sensors)
    readings = rows = 0
    found: list[tuple[UUID, Difference]] = []
    for done, sensor_id in enumerate(sensors, 1):
        # Months holding readings retention deleted cannot be recomputed: the check starts after them.
        sensor_first = _verifiable_from(first, kept.get(sensor_id), tz)
        span = [(sensor_first or _EARLIEST, last or _LATEST)]
        async with db.transaction() as tx:  # the sensor's refresh lock: no refresh changes its rows meanwhile
            counters = await _lock_sensors(tx, [sensor_id])
            if sensor_id in counters:
                counter = counters[sensor_id]
                baseline = None
                if sensor_first is not None:
                    before = await tx.fetchrow(
                        HOURLY.select("sensor_id = $1 AND bucket < $2") + " ORDER BY bucket DESC LIMIT 1",
                        sensor_id,
                        sensor_first,
                    )
                    baseline = None if before is None else HOURLY.decode(before).baseline
                by_hour = await _observations(tx, sensor_id, span)
                readings += sum(len(observed) for observed in by_hour.values())
                expected = derive(sensor_id, by_hour, counter.cumulative, counter.rollover, baseline, tz)
                for rollup, table in ((Rollups.HOURLY, HOURLY), (Rollups.DAILY, DAILY), (Rollups.MONTHLY, MONTHLY)):
                    stored = [
                        table.decode(row) for row in await _fetch_sensor(tx, table.select(), "bucket", sensor_id, span)
                    ]
                    rows += len(stored)
                    found += [(sensor_id, d) for d in differences(rollup, stored, expected[rollup])]
        if on_sensor is not None:
            on_sensor(done, len(sensors))
    return Verification(first, last, len(sensors), readings, rows, found)


def _months(spans: list[Bucket], zone: ZoneInfo) -> Iterator[Bucket]:
    """The local months overlapping any of `spans` (merged days may run over many months)."""
    for start, end in spans:
        month = local_month(start, zone)
        while month[0] < end:
            yield month
            month = local_month(month[1], zone)


def _merge(intervals: Iterable[Bucket]) -> list[Bucket]:
    """Sorted, overlapping or touching intervals merged into one."""
    merged: list[Bucket] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


# --- Retention (storage/sql/retention.py) and the raw horizon (storage/sql/horizons.py). Rollup rows are kept for
# good: their raw readings expire, and what is before an organization's horizon can no longer be recomputed.


async def forget_marks_before(db: Database, organization_id: UUID, horizon: datetime) -> int:
    """Drop the organization's stale-hour marks before `horizon` (readings ingested for an hour whose other
    readings retention deleted); return how many."""
    return await db.execute(
        "DELETE FROM iot_rollup_dirty WHERE hour < $2 AND sensor_id IN "
        "(SELECT id FROM iot_sensors WHERE organization_id = $1)",
        organization_id,
        horizon,
    )


async def _rebuild_from(tx: Executor, sensor_id: UUID, horizon: datetime, counter: _Counter, zone: ZoneInfo) -> int:
    """`rebuild_rollups` of a sensor whose readings before `horizon` are gone: its rows from `horizon` on are
    recomputed, from the counter state the last row before it left; the rows before are kept, and the local day
    and month straddling `horizon` are recombined from their kept and new rows. Return the hourly rows written."""
    for table in (HOURLY, DAILY, MONTHLY):
        await tx.execute(f"DELETE FROM {table.name} WHERE sensor_id = $1 AND bucket >= $2", sensor_id, horizon)
    before = await tx.fetchrow(
        HOURLY.select("sensor_id = $1 AND bucket < $2") + " ORDER BY bucket DESC LIMIT 1", sensor_id, horizon
    )
    baseline = None if before is None else HOURLY.decode(before).baseline
    by_hour = await _observations(tx, sensor_id, [(horizon, _LATEST)])
    hourly = []
    for hour, observed in by_hour.items():
        hourly.append(summarize(sensor_id, hour, observed, counter.cumulative, baseline, counter.rollover))
        baseline = hourly[-1].baseline
    await _upsert(tx, HOURLY, hourly)
    await _roll_up(tx, sensor_id, [horizon, *by_hour], counter, zone)
    return len(hourly)


def _verifiable_from(first: datetime | None, horizon: datetime | None, zone: ZoneInfo) -> datetime | None:
    """Where `verify_rollups` starts for a sensor: `first`, or the first whole local month from `horizon` on when
    that is later (a month holding hours before `horizon` lost some of its readings)."""
    if horizon is None:
        return first
    month_start, month_end = local_month(horizon, zone)
    whole = month_start if month_start >= horizon else month_end
    return whole if first is None or first < whole else first
