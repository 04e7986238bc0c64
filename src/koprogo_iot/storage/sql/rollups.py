"""Rollups in the database: the stale marks ingestion leaves, and their refresh (`RollupMaintenance`).

The rollups themselves (what a row holds, how hours make a day and days a month) are `domain.rollups`. Refreshing
claims stale (sensor, hour) marks, recomputes those hours from the raw readings and the local days and months
holding them from the rows below. Any number of processes may refresh on PostgreSQL: marks are claimed with SKIP
LOCKED, and a per-sensor advisory lock orders their daily recomputations.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import Enum
from uuid import UUID
from zoneinfo import ZoneInfo

from prometheus_client import Counter

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
    extend,
    joined,
    local_day,
    local_month,
    summarize,
)
from koprogo_iot.domain.sensors import MeasurementKind
from koprogo_iot.offload import decoded
from koprogo_iot.storage.sql import horizons
from koprogo_iot.storage.sql.database import Database, Executor, Row
from koprogo_iot.storage.sql.rows import Table, as_time, as_uuid, placeholders, row_placeholders

log = logging.getLogger(__name__)

# What keeping rollups current costs: wall time of refreshes, and the raw readings they read, folded in after the
# latest rows or read again to recompute hours (late readings, rule changes). The live benchmark reports both.
REFRESH_SECONDS = Counter("koprogo_rollup_refresh_seconds_total", "Wall time spent refreshing rollups")
REFRESH_READINGS = Counter(
    "koprogo_rollup_refresh_readings_total", "Raw readings read by rollup refreshes, by how", ["path"]
)

HOUR = timedelta(hours=1)
DEFAULT_LIMIT = 5000
HOURLY = Table("iot_rollups_hourly", Rollup)
DAILY = Table("iot_rollups_daily", Rollup)
MONTHLY = Table("iot_rollups_monthly", Rollup)
# 21 columns: 5,250 parameters (SQLite; PostgreSQL upserts by arrays). Encoding a statement's parameters holds the
# event loop: with 1,000 rows, 50-100 ms at a time while an API folded 2,000 sensors' readings (bench live).
_ROWS_PER_STATEMENT = 250
_UPDATE = ", ".join(f"{c} = excluded.{c}" for c in HOURLY.columns[2:])
# A mark that already exists is locked, not skipped: a refresher claims marks with SKIP LOCKED, so it cannot take
# this one and read the hour's readings before this transaction's reading is committed (and then lose it).
# It is updated only when this batch brings an earlier reading (rare: in time order, the existing mark's is the
# earliest), but PostgreSQL locks the row either way; SQLite has one writer at a time. A NULL `since` (the whole
# hour) stays NULL, and a mark put back after a failed refresh may bring one.
_MARK_CONFLICT = (
    "ON CONFLICT (sensor_id, hour) DO UPDATE SET since = excluded.since "
    "WHERE excluded.since IS NULL OR iot_rollup_dirty.since > excluded.since"
)


def stale_hours(readings: Iterable[IoTReading]) -> list[tuple[UUID, datetime, datetime]]:
    """The distinct (sensor, UTC hour) pairs of `readings` with the earliest reading of each, sorted so that
    concurrent batches lock marks in one order."""
    earliest: dict[tuple[UUID, datetime], datetime] = {}
    for r in readings:
        ts = r.timestamp.astimezone(UTC)
        key = (r.sensor_id, ts.replace(minute=0, second=0, microsecond=0))
        if key not in earliest or ts < earliest[key]:
            earliest[key] = ts
    return sorted((sensor_id, hour, since) for (sensor_id, hour), since in earliest.items())


async def mark_stale(tx: Executor, readings: Iterable[IoTReading]) -> None:
    """Record the (sensor, UTC hour) pairs whose rollups new readings change, and the earliest new reading of each,
    for the refresher."""
    marks = stale_hours(readings)
    if tx.dialect == "postgres":  # WITH ORDINALITY keeps the sorted order, in which concurrent batches lock marks
        await tx.execute(
            "INSERT INTO iot_rollup_dirty (sensor_id, hour, since) SELECT m.sensor_id, m.hour, m.since "
            "FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[]) "
            f"WITH ORDINALITY AS m(sensor_id, hour, since, n) ORDER BY m.n {_MARK_CONFLICT}",
            [sensor_id for sensor_id, _, _ in marks],
            [hour for _, hour, _ in marks],
            [since for _, _, since in marks],
        )
        return
    await _insert_marks(tx, marks, _MARK_CONFLICT)


async def _insert_marks(tx: Executor, marks: Sequence[tuple[UUID, datetime, datetime | None]], conflict: str) -> None:
    for start in range(0, len(marks), _ROWS_PER_STATEMENT):
        chunk = marks[start : start + _ROWS_PER_STATEMENT]
        values = row_placeholders(len(chunk), 3)
        await tx.execute(
            f"INSERT INTO iot_rollup_dirty (sensor_id, hour, since) VALUES {values} {conflict}",
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


async def refresh_rollups(
    db: Database, *, limit: int = DEFAULT_LIMIT, zone: str = DEFAULT_ZONE, sensor_ids: Sequence[UUID] | None = None
) -> int:
    """Claim up to `limit` stale marks (only those of `sensor_ids` if given) and bring their hours, days and months
    up to date; return how many marks.

    The marks are claimed in a short transaction of their own. Ingestion marks the hours it writes in its own
    transactions (`mark_stale`), and an insert of a mark whose delete is not committed yet waits for that commit:
    claiming in the recomputing transaction held every worker's commit for the whole recomputation (seconds at
    10,000 readings/s, benchmarks/README.md, live path). A reading committed after its hour was claimed marks it
    again, for the next refresh; one still uncommitted holds its mark, which SKIP LOCKED leaves alone. If the
    recomputation fails, the claimed marks are put back.

    A sensor whose new readings all come after its latest rollup (readings in time order: the common case) has
    them folded into its latest hour, day and month (`extend`, `joined`), reading nothing but them; any other (a late
    reading, a rule change) has its stale hours recomputed from the raw readings (`_refresh_sensor`).
    """
    started = time.perf_counter()
    try:
        return await _refresh(db, limit, ZoneInfo(zone), sensor_ids)
    finally:
        REFRESH_SECONDS.inc(time.perf_counter() - started)


async def catch_up(db: Database, *, zone: str = DEFAULT_ZONE, sensor_ids: Sequence[UUID] | None = None) -> None:
    """Refresh until no stale mark is left (of `sensor_ids` if given): before answering from the rollups, before
    rebuilding or verifying them, before the retention deletes readings."""
    while await refresh_rollups(db, zone=zone, sensor_ids=sensor_ids) >= DEFAULT_LIMIT:
        pass


async def _refresh(db: Database, limit: int, tz: ZoneInfo, sensor_ids: Sequence[UUID] | None) -> int:
    async with db.transaction() as tx:
        postgres = tx.dialect == "postgres"
        skip_locked = " FOR UPDATE SKIP LOCKED" if postgres else ""
        only, args = "", [limit]  # type: tuple[str, list[object]]
        if sensor_ids is not None and postgres:
            only, args = " WHERE sensor_id = ANY($2::uuid[])", [limit, list(sensor_ids)]
        elif sensor_ids is not None:
            only, args = f" WHERE sensor_id IN ({placeholders(len(sensor_ids), 2)})", [limit, *sensor_ids]
        claimed = await tx.fetch(
            "DELETE FROM iot_rollup_dirty WHERE (sensor_id, hour) IN "
            f"(SELECT sensor_id, hour FROM iot_rollup_dirty{only} LIMIT $1{skip_locked}) "
            "RETURNING sensor_id, hour, since",
            *args,
        )
    marks: dict[UUID, dict[datetime, datetime | None]] = {}
    for row in claimed:
        since = None if row["since"] is None else as_time(row["since"])
        marks.setdefault(as_uuid(row["sensor_id"]), {})[as_time(row["hour"])] = since
    try:
        async with db.transaction() as tx:
            await _recompute(tx, marks, tz)
    except BaseException:
        await asyncio.shield(_mark_again(db, marks))  # even when cancelled: the marks are all that says "stale"
        raise
    return len(claimed)


async def _recompute(tx: Executor, marks: dict[UUID, dict[datetime, datetime | None]], zone: ZoneInfo) -> None:
    """Bring the rollups of the claimed marks up to date: by folding where the readings extend them, else by
    recomputing the stale hours."""
    counters = await _lock_sensors(tx, sorted(marks))
    # An hour before the raw horizon (retention) lost its readings: recomputed from a late one alone, its rollup
    # would lose every reading retention deleted. Its rows stay as they are.
    for sensor_id, horizon in (await horizons.of_sensors(tx, list(counters))).items():
        marks[sensor_id] = {hour: since for hour, since in marks[sensor_id].items() if hour >= horizon}
        if not marks[sensor_id]:
            del counters[sensor_id]
    tails = await _tails(tx, {sensor_id: marks[sensor_id] for sensor_id in counters})
    await _fold(tx, tails, counters, zone)
    for sensor_id, counter in counters.items():
        if sensor_id not in tails:
            await _refresh_sensor(tx, sensor_id, sorted(marks[sensor_id]), counter, zone)


async def _mark_again(db: Database, marks: dict[UUID, dict[datetime, datetime | None]]) -> None:
    again = sorted((sensor_id, hour, since) for sensor_id, hours in marks.items() for hour, since in hours.items())
    try:
        async with db.transaction() as tx:
            await _insert_marks(tx, again, _MARK_CONFLICT)
    except Exception:
        # The database is gone as well: these hours stay as they were until a reading marks them again, or
        # `koprogo-iot verify-rollups --repair` finds them.
        log.exception("rollups: %d stale hour(s) could not be marked again after a failed refresh", len(again))


@dataclass(slots=True)
class _Tail:
    """A sensor whose stale readings all come after its latest rollup rows, which they extend."""

    hour: Rollup | None  # the latest hourly row, and the daily and monthly rows holding it (None: no rollups yet)
    day: Rollup | None
    month: Rollup | None
    readings: list[Observation] = field(default_factory=list)  # the readings after `hour`, in time order


async def _tails(tx: Executor, marks: dict[UUID, dict[datetime, datetime | None]]) -> dict[UUID, _Tail]:
    """The sensors whose marks stand only for readings after their latest rollup, with those readings.

    A mark's `since` is its earliest reading when ingestion made it. Readings committed between the claim and the
    reads below are read too (and their marks, made after the claim, look late at the next refresh): for a mark
    whose `since` is not after the latest row's last reading, the row's count against the readings up to that
    reading tells whether one is missing from it (readings of a sensor are only added: a deletion goes with the
    sensor, or with retention, months before any sensor's latest hour)."""
    latest = await _rows_at(tx, HOURLY, dict.fromkeys(marks, _LATEST))
    tails: dict[UUID, _Tail] = {}
    doubtful: list[Rollup] = []
    for sensor_id, hours in marks.items():
        row = latest.get(sensor_id)
        if row is None:
            tails[sensor_id] = _Tail(None, None, None)
            continue
        if min(hours) < row.bucket:
            continue  # an hour before the latest row: a late reading
        since = hours.get(row.bucket, _AFTER)
        if since is None:
            continue  # the whole hour, on purpose
        if since <= row.last_ts:
            doubtful.append(row)
        else:
            tails[sensor_id] = _Tail(row, None, None)
    counted = await _counts(tx, doubtful)
    tails |= {row.sensor_id: _Tail(row, None, None) for row in doubtful if counted.get(row.sensor_id) == row.count}
    latest_hours = {sensor_id: tail.hour for sensor_id, tail in tails.items() if tail.hour is not None}
    at = {sensor_id: row.bucket for sensor_id, row in latest_hours.items()}
    days, months = await _rows_at(tx, DAILY, at), await _rows_at(tx, MONTHLY, at)
    for sensor_id, row in latest_hours.items():
        day, month = days.get(sensor_id), months.get(sensor_id)
        if day is None or month is None or not row.last_ts == day.last_ts == month.last_ts:
            del tails[sensor_id]  # rows that do not end together (the day or month being recomputed): recompute
            continue
        tails[sensor_id].day, tails[sensor_id].month = day, month
    readings = await _readings_after(
        tx, {s: (_EARLIEST if t.hour is None else t.hour.last_ts, max(marks[s]) + HOUR) for s, t in tails.items()}
    )
    for sensor_id, tail in tails.items():
        tail.readings = readings.get(sensor_id, [])
    REFRESH_READINGS.labels("folded").inc(sum(len(found) for found in readings.values()))
    return tails


_SLICE = 0.005  # seconds of folding between two yields to the event loop
_AFTER = datetime.max.replace(tzinfo=UTC)  # an hour after the latest row has no row: its readings are all new


async def _counts(tx: Executor, rows: list[Rollup]) -> dict[UUID, int]:
    """For each row (the latest of its sensor), how many readings its hour holds up to its last one."""
    if not rows:
        return {}
    if tx.dialect == "postgres":  # one key range count per sensor (LATERAL, as `_readings_after`)
        found = await tx.fetch(
            "SELECT s.id, c.n FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[]) AS s(id, start, last) "
            "CROSS JOIN LATERAL (SELECT count(*) AS n FROM iot_readings "
            "WHERE sensor_id = s.id AND ts >= s.start AND ts <= s.last OFFSET 0) c",
            [row.sensor_id for row in rows],
            [row.bucket for row in rows],
            [row.last_ts for row in rows],
        )
    else:
        found = []
        for row in rows:
            found += await tx.fetch(
                "SELECT sensor_id AS id, count(*) AS n FROM iot_readings "
                "WHERE sensor_id = $1 AND ts >= $2 AND ts <= $3",
                row.sensor_id,
                row.bucket,
                row.last_ts,
            )
    return {as_uuid(r["id"]): r["n"] for r in found}


async def _fold(tx: Executor, tails: dict[UUID, _Tail], counters: dict[UUID, _Counter], zone: ZoneInfo) -> None:
    """Extend each sensor's latest hourly, daily and monthly rows with its new readings, and start the rows of the
    buckets after them: every level from the readings themselves, as `summarize` would over the whole bucket."""
    rows: dict[Table[Rollup], list[Rollup]] = {HOURLY: [], DAILY: [], MONTHLY: []}
    yielded = time.perf_counter()
    for sensor_id, tail in tails.items():
        if time.perf_counter() - yielded > _SLICE:
            await asyncio.sleep(0)  # the loop may be the API's (`up`, or jobs in the API): let it answer meanwhile
            yielded = time.perf_counter()
        if not tail.readings:
            continue  # its readings were folded by the previous refresh already
        counter = counters[sensor_id]
        hours = list(_grouped(tail.readings, _utc_hour))
        if len(hours) == 1:
            # The common case (a refresh every few seconds): one hour's new readings, summarized once for the
            # hour, its local day and its local month (UTC hours never straddle a Brussels midnight).
            hour, group = hours[0]
            baseline = None if tail.hour is None else tail.hour.baseline
            piece = summarize(sensor_id, hour, group, counter.cumulative, baseline, counter.rollover)
            for table, latest, start in (
                (HOURLY, tail.hour, hour),
                (DAILY, tail.day, local_day(hour, zone)[0]),
                (MONTHLY, tail.month, local_month(hour, zone)[0]),
            ):
                if latest is not None and latest.bucket == start:
                    rows[table].append(joined(latest, piece, counter.cumulative))
                else:
                    rows[table].append(piece if start == hour else replace(piece, bucket=start))
            continue
        levels = (
            (HOURLY, tail.hour, _utc_hour),
            (DAILY, tail.day, lambda ts: local_day(ts, zone)),
            (MONTHLY, tail.month, lambda ts: local_month(ts, zone)),
        )
        for table, latest, bucket_of in levels:
            for bucket, group in hours if table is HOURLY else _grouped(tail.readings, bucket_of):
                if latest is not None and latest.bucket == bucket:
                    latest = extend(latest, group, counter.cumulative, counter.rollover)
                else:
                    baseline = None if latest is None else latest.baseline
                    latest = summarize(sensor_id, bucket, group, counter.cumulative, baseline, counter.rollover)
                rows[table].append(latest)
    for table, written in rows.items():
        await _upsert(tx, table, written)


def _utc_hour(instant: datetime) -> Bucket:
    start = instant.replace(minute=0, second=0, microsecond=0)
    return start, start + HOUR


def _grouped(
    readings: list[Observation], bucket_of: Callable[[datetime], Bucket]
) -> Iterator[tuple[datetime, list[Observation]]]:
    """Readings (in time order) by bucket, the bucket computed once per bucket, not once per reading (a local day
    or month costs a time zone conversion)."""
    if not readings:
        return
    start, end = bucket_of(readings[0].ts)
    group: list[Observation] = []
    for reading in readings:
        if reading.ts >= end:
            yield start, group
            (start, end), group = bucket_of(reading.ts), []
        group.append(reading)
    yield start, group


async def _rows_at(tx: Executor, table: Table[Rollup], instants: dict[UUID, datetime]) -> dict[UUID, Rollup]:
    """Each sensor's row of `table` holding its instant: the latest one starting at or before it (none for a sensor
    without rows)."""
    if not instants:
        return {}
    if tx.dialect == "postgres":
        rows = await tx.fetch(
            f"SELECT {table.column_list('r')} FROM unnest($1::uuid[], $2::timestamptz[]) AS s(id, at) CROSS JOIN "
            f"LATERAL ({table.select('sensor_id = s.id AND bucket <= s.at')} ORDER BY bucket DESC LIMIT 1) r",
            list(instants),
            list(instants.values()),
        )
    else:
        rows = []
        for sensor_id, at in instants.items():
            found = await tx.fetchrow(
                table.select("sensor_id = $1 AND bucket <= $2") + " ORDER BY bucket DESC LIMIT 1", sensor_id, at
            )
            rows += [found] if found is not None else []
    return {row.sensor_id: row for row in await decoded(table.decode, rows)}


async def _readings_after(tx: Executor, spans: dict[UUID, tuple[datetime, datetime]]) -> dict[UUID, list[Observation]]:
    """Each sensor's readings after the first instant of its span and before the second, in time order."""
    columns = "r.ts, r.value, r.organization_id, r.building_id, r.unit_id"
    if not spans:
        return {}
    if tx.dialect == "postgres":
        # One range scan of the (sensor_id, ts) key per sensor: joined to the unnest, the readings were a hash join
        # over a scan of the whole partition, every refresh (a LATERAL kept apart by OFFSET 0 is not merged into
        # the join); the overall bounds let PostgreSQL skip the other months' partitions.
        afters, befores = [after for after, _ in spans.values()], [before for _, before in spans.values()]
        rows = await tx.fetch(
            f"SELECT s.id AS sensor_id, {columns} FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[]) "
            "AS s(id, after, before) CROSS JOIN LATERAL (SELECT ts, value, organization_id, building_id, unit_id "
            "FROM iot_readings WHERE sensor_id = s.id AND ts > s.after AND ts < s.before AND ts > $4 AND ts < $5 "
            "OFFSET 0) r ORDER BY s.id, r.ts",
            list(spans),
            afters,
            befores,
            min(afters),
            max(befores),
        )
    else:
        rows = []
        for sensor_id, (after, before) in spans.items():
            rows += await tx.fetch(
                f"SELECT r.sensor_id, {columns} FROM iot_readings r "
                "WHERE r.sensor_id = $1 AND r.ts > $2 AND r.ts < $3 ORDER BY r.ts",
                sensor_id,
                after,
                before,
            )
    found: dict[UUID, list[Observation]] = {}
    for sensor_id, observation in await decoded(_keyed_observation, rows):
        found.setdefault(sensor_id, []).append(observation)
    return found


def _keyed_observation(row: Row) -> tuple[UUID, Observation]:
    return as_uuid(row["sensor_id"]), _observation(row)


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
        by_hour = await _reread(tx, sensor_id, None)
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
    by_hour = await _reread(tx, sensor_id, _merge((hour, hour + HOUR) for hour in hours))
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
    readings = (await _reread(tx, sensor_id, [(hour, hour + HOUR)]))[hour]
    return summarize(sensor_id, hour, readings, counter.cumulative, baseline, counter.rollover)


async def _reread(tx: Executor, sensor_id: UUID, ranges: list[Bucket] | None) -> dict[datetime, list[Observation]]:
    """`_observations`, for a recomputation: counted."""
    by_hour = await _observations(tx, sensor_id, ranges)
    REFRESH_READINGS.labels("recomputed").inc(sum(len(readings) for readings in by_hour.values()))
    return by_hour


async def _observations(
    tx: Executor, sensor_id: UUID, ranges: list[Bucket] | None
) -> dict[datetime, list[Observation]]:
    """The sensor's readings in `ranges` (all when None) by UTC hour, in time order."""
    readings = await _fetch_sensor(
        tx, "SELECT ts, value, organization_id, building_id, unit_id FROM iot_readings", "ts", sensor_id, ranges
    )
    by_hour: dict[datetime, list[Observation]] = {}
    for row in readings:
        observed = _observation(row)
        by_hour.setdefault(observed.ts.replace(minute=0, second=0, microsecond=0), []).append(observed)
    return by_hour


def _observation(row: Row) -> Observation:
    """A raw reading's row (ts, value and its tenancy columns) as a rollup sees it."""
    unit = None if row["unit_id"] is None else as_uuid(row["unit_id"])
    tenancy = (as_uuid(row["organization_id"]), as_uuid(row["building_id"]), unit)
    return Observation(as_time(row["ts"]), row["value"], tenancy)


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
    if tx.dialect == "postgres":
        # One statement of one array per column, whatever the number of rows: its text never changes (prepared
        # once), and the driver encodes 21 arrays instead of 21 parameters per row.
        if rollups:
            columns = zip(*(table.values(rollup) for rollup in rollups), strict=True)
            arrays = [[v.value if isinstance(v, Enum) else v for v in column] for column in columns]
            await tx.execute(_unnest_upsert_sql(table.name, table.column_list()), *arrays)
        return
    width = len(table.columns)
    for start in range(0, len(rollups), _ROWS_PER_STATEMENT):
        chunk = rollups[start : start + _ROWS_PER_STATEMENT]
        sql = _upsert_sql(table.name, table.column_list(), width, len(chunk))
        await tx.execute(sql, *[value for rollup in chunk for value in table.values(rollup)])


# The PostgreSQL types of the rollup tables' columns (`Rollup`'s fields in order), for the arrays of `_upsert`.
_PG_TYPES = (
    "uuid", "timestamptz", "uuid", "uuid", "uuid", "integer", "float8", "float8", "float8", "timestamptz", "float8",
    "timestamptz", "float8", "float8", "integer", "integer", "float8", "float8", "float8", "text", "float8",
)  # fmt: skip


@functools.lru_cache(maxsize=8)
def _unnest_upsert_sql(name: str, columns: str) -> str:
    arrays = ", ".join(f"${i}::{kind}[]" for i, kind in enumerate(_PG_TYPES, 1))
    return (
        f"INSERT INTO {name} ({columns}) SELECT * FROM unnest({arrays}) "
        f"ON CONFLICT (sensor_id, bucket) DO UPDATE SET {_UPDATE}"
    )


@functools.lru_cache(maxsize=64)
def _upsert_sql(name: str, columns: str, width: int, rows: int) -> str:
    """The upsert of `rows` rows, written once per table and size (also what the driver's statement cache keys)."""
    values = row_placeholders(rows, width)
    return f"INSERT INTO {name} ({columns}) VALUES {values} ON CONFLICT (sensor_id, bucket) DO UPDATE SET {_UPDATE}"


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
    await catch_up(db, zone=zone)
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
