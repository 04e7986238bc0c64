"""Where analytics read readings from (`ReadingSource`): the raw readings, or rollup rows where the caller's
buckets fall on rollup bounds, rebuilt into the points the domain's consumption math expects."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast
from uuid import UUID
from zoneinfo import ZoneInfo

from koprogo_iot.domain.consumption import DEFAULT_ZONE, Point, StepKind
from koprogo_iot.domain.rollups import CounterRow, GaugeRow, Rollups, local_month, virtual_index
from koprogo_iot.offload import decoded
from koprogo_iot.storage.sql import horizons
from koprogo_iot.storage.sql.database import Database, Row
from koprogo_iot.storage.sql.rollups import DAILY, HOURLY, MONTHLY, catch_up
from koprogo_iot.storage.sql.rows import as_time, as_uuid, placeholders

# The edge readings are found by one index probe per sensor (`MAX(ts) ... ts < start` on the (sensor_id, ts) key),
# not by a GROUP BY over the sensor's whole history, and their values by one primary-key probe each: joining them
# back on `ts = before OR ts = after` made PostgreSQL bitmap-scan every monthly partition by sensor (13 ms a sensor).
# The period's rows come from one range scan per sensor.
_POINTS = """
WITH wanted AS (
    SELECT id FROM iot_sensors WHERE organization_id = $1 AND id IN ({ids})
), edges AS (
    SELECT w.id AS sensor_id, (SELECT MAX(r.ts) FROM iot_readings r WHERE r.sensor_id = w.id AND r.ts < $2) AS ts
    FROM wanted w
    UNION ALL
    SELECT w.id, (SELECT MIN(r.ts) FROM iot_readings r WHERE r.sensor_id = w.id AND r.ts >= $3) FROM wanted w
)
SELECT r.sensor_id, r.ts, r.value FROM iot_readings r JOIN wanted w ON r.sensor_id = w.id
WHERE r.organization_id = $1 AND r.ts >= $2 AND r.ts < $3
UNION ALL
SELECT e.sensor_id, e.ts, (SELECT r.value FROM iot_readings r WHERE r.sensor_id = e.sensor_id AND r.ts = e.ts)
FROM edges e WHERE e.ts IS NOT NULL
"""


# The window alert rules' read (`thinned_points`): per sensor and `resolution`-wide bucket, only the first, last, lowest
# and highest readings leave the database, so what reaches Python is bounded by the window's length, not by how often
# sensors report. Two window orderings (time, value) and a count per bucket; the edges as in `_POINTS`.
_THINNED = """
WITH wanted AS (
    SELECT id FROM iot_sensors WHERE organization_id = $1 AND id IN ({ids})
), period AS (
    SELECT w.id AS sensor_id, r.ts, r.value, {bucket} AS bucket FROM {readings}
), ranked AS (
    SELECT sensor_id, ts, value,
        ROW_NUMBER() OVER (PARTITION BY sensor_id, bucket ORDER BY ts) AS by_time,
        ROW_NUMBER() OVER (PARTITION BY sensor_id, bucket ORDER BY value, ts) AS by_value,
        COUNT(*) OVER (PARTITION BY sensor_id, bucket) AS n
    FROM period
), edges AS (
    SELECT w.id AS sensor_id, (SELECT MAX(r.ts) FROM iot_readings r WHERE r.sensor_id = w.id AND r.ts < $2) AS ts
    FROM wanted w
    UNION ALL
    SELECT w.id, (SELECT MIN(r.ts) FROM iot_readings r WHERE r.sensor_id = w.id AND r.ts >= $3) FROM wanted w
)
SELECT sensor_id, ts, value FROM ranked WHERE by_time = 1 OR by_time = n OR by_value = 1 OR by_value = n
UNION ALL
SELECT e.sensor_id, e.ts, (SELECT r.value FROM iot_readings r WHERE r.sensor_id = e.sensor_id AND r.ts = e.ts)
FROM edges e WHERE e.ts IS NOT NULL
"""
# The period's readings, one range scan of the (sensor_id, ts) key per sensor. PostgreSQL needs it spelled out: a
# join of the few sensors of a query to the readings was a hash join over a scan of the whole month's partition (5 s
# for 6 sensors among 200); a LATERAL subquery kept apart by OFFSET 0 (not merged into the join) is a range scan each.
_THINNED_READINGS = {
    "postgres": """wanted w CROSS JOIN LATERAL (
        SELECT ts, value FROM iot_readings
        WHERE sensor_id = w.id AND organization_id = $1 AND ts >= $2 AND ts < $3 OFFSET 0
    ) r""",
    "sqlite": "iot_readings r JOIN wanted w ON r.sensor_id = w.id "
    "WHERE r.organization_id = $1 AND r.ts >= $2 AND r.ts < $3",
}
# A reading's bucket: whole `resolution`s ($4, in seconds) since `start`. SQLite's julianday() is exact to ~0.1 ms,
# enough for a partition of the period into consecutive buckets (a reading on a bound may fall either side of it).
_BUCKET = {
    "postgres": "FLOOR(EXTRACT(EPOCH FROM (r.ts - $2::timestamptz))::float8 / $4::float8)",
    "sqlite": "CAST((julianday(r.ts) - julianday($2)) * 86400.0 / $4 AS INTEGER)",
}

# Rows of a rollup table in the period ({period_rows}), plus each sensor's row before it and after it (for the
# edge steps). `{table}` is the table the edge rows come from.
_ROLLUPS = """
WITH wanted AS (
    SELECT id FROM iot_sensors WHERE organization_id = $1 AND id IN ({ids})
), edges AS (
    SELECT w.id AS sensor_id,
        (SELECT MAX(r.bucket) FROM {table} r WHERE r.sensor_id = w.id AND r.bucket < $2) AS before_bucket,
        (SELECT MIN(r.bucket) FROM {table} r WHERE r.sensor_id = w.id AND r.bucket >= $3) AS after_bucket
    FROM wanted w
)
{period_rows}
UNION ALL
SELECT {columns} FROM edges e JOIN {table} r ON r.sensor_id = e.sensor_id
WHERE r.organization_id = $1 AND (r.bucket = e.before_bucket OR r.bucket = e.after_bucket)
ORDER BY sensor_id, bucket
"""
_PERIOD_ROWS = """SELECT {columns} FROM {table} r JOIN wanted w ON r.sensor_id = w.id
WHERE r.organization_id = $1 AND r.bucket >= $2 AND r.bucket < $3"""
# The whole months [$4, $5) of the period from monthly rows, its partial months at either edge from daily rows:
# rows of different lengths in a row still make one virtual index (`virtual_index` only needs them in order).
_MONTHS_AND_DAYS = """SELECT {columns} FROM {table} r JOIN wanted w ON r.sensor_id = w.id
WHERE r.organization_id = $1 AND ((r.bucket >= $2 AND r.bucket < $4) OR (r.bucket >= $5 AND r.bucket < $3))
UNION ALL
SELECT {columns} FROM {monthly} r JOIN wanted w ON r.sensor_id = w.id
WHERE r.organization_id = $1 AND r.bucket >= $4 AND r.bucket < $5"""


# A step kind as stored (or None), as the domain's enum: a dictionary lookup, not an Enum call per row.
_STEP_KINDS: dict[str | None, StepKind | None] = {None: None, **{kind.value: kind for kind in StepKind}}
_GAUGE_COLUMNS = "r.sensor_id, r.bucket, r.count, r.sum, r.min, r.max, r.last_value"
# What a counter's consumption needs of a rollup row: its first and last readings and the increase between them.
_COUNTER_COLUMNS = (
    "r.sensor_id, r.bucket, r.count, r.first_ts, r.first_value, r.last_ts, r.last_value, r.increase, r.entry, "
    "r.entry_kind, r.resets, r.rollovers, r.longest_step"
)


class SqlReadingSource:
    """Raw readings for fine grids; rollup rows when the caller's buckets fall on rollup bounds (hours, days)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def _raw_points(
        self,
        organization_id: UUID,
        sensor_ids: Sequence[UUID],
        start: datetime,
        end: datetime,
    ) -> dict[UUID, list[Point]]:
        found: dict[UUID, list[Point]] = {sensor_id: [] for sensor_id in sensor_ids}
        if not found:
            return found
        ids = list(found)
        rows = await self.db.fetch(_POINTS.format(ids=placeholders(len(ids), 4)), organization_id, start, end, *ids)
        for sensor_id, point in await decoded(_keyed_point, rows):
            found[sensor_id].append(point)
        for points in found.values():
            points.sort()
        await self._seed_baselines(found, start)
        return found

    async def _seed_baselines(self, found: dict[UUID, list[Point]], start: datetime) -> None:
        """Give each counter's points the state the counter rules had before its edge reading (the last one before
        `start`), so that a jitter before the period keeps its higher baseline, as on the whole history.

        That state is the hourly rollup's `baseline_in` of the edge reading's hour (None for the sensor's first hour),
        followed by the hour's readings before the edge one. It rides on a point 1 µs before the hour's first
        reading: the step from it lies before `start`, so it adds nothing to any bucket of the period; it only sets
        the baseline. Gauges' rows (no `increase`) are left out.
        """
        edges = {
            sensor_id: points[0][0].replace(minute=0, second=0, microsecond=0)
            for sensor_id, points in found.items()
            if points and points[0][0] < start
        }
        if not edges:
            return
        # The background refresher runs every 15 s; the edge hours must be current.
        await catch_up(self.db, sensor_ids=list(edges))
        pairs = list(edges.items())
        where = " OR ".join(f"(sensor_id = ${2 * i + 1} AND bucket = ${2 * i + 2})" for i in range(len(pairs)))
        args = [value for pair in pairs for value in pair]
        rows = await self.db.fetch(
            f"SELECT sensor_id, first_ts, baseline_in FROM {HOURLY.name} WHERE ({where}) AND increase IS NOT NULL",
            *args,
        )
        # A counter's edge hour: its state before the hour (None: the hour holds the sensor's first reading).
        seeds = {as_uuid(r["sensor_id"]): (as_time(r["first_ts"]), r["baseline_in"]) for r in rows}
        if not seeds:
            return
        spans = [(sensor_id, edges[sensor_id], found[sensor_id][0][0]) for sensor_id in seeds]
        where = " OR ".join(
            f"(sensor_id = ${3 * i + 1} AND ts >= ${3 * i + 2} AND ts < ${3 * i + 3})" for i in range(len(spans))
        )
        earlier = await self.db.fetch(
            f"SELECT sensor_id, ts, value FROM iot_readings WHERE {where}", *[v for span in spans for v in span]
        )
        for sensor_id, (first_ts, baseline) in seeds.items():
            if baseline is not None:
                found[sensor_id].insert(0, (first_ts - timedelta(microseconds=1), float(baseline)))
        for row in earlier:
            found[as_uuid(row["sensor_id"])].append((as_time(row["ts"]), float(row["value"])))
        for sensor_id in seeds:
            found[sensor_id].sort()

    async def points(
        self,
        organization_id: UUID,
        sensor_ids: Sequence[UUID],
        start: datetime,
        end: datetime,
        rollup: Rollups | None = None,
    ) -> dict[UUID, list[Point]]:
        if rollup is None:
            return await self._raw_points(organization_id, sensor_ids, start, end)
        rows = await self.counter_rows(organization_id, sensor_ids, start, end, rollup)
        return {sensor_id: virtual_index(rolled) for sensor_id, rolled in rows.items()}

    async def thinned_points(
        self, organization_id: UUID, sensor_ids: Sequence[UUID], start: datetime, end: datetime, resolution: timedelta
    ) -> dict[UUID, list[Point]]:
        found: dict[UUID, list[Point]] = {sensor_id: [] for sensor_id in sensor_ids}
        if not found:
            return found
        if resolution <= timedelta(0):
            raise ValueError(f"resolution must be positive, got {resolution}")
        ids = list(found)
        dialect = self.db.dialect
        ids_list, readings = placeholders(len(ids), 5), _THINNED_READINGS[dialect]
        sql = _THINNED.format(ids=ids_list, bucket=_BUCKET[dialect], readings=readings)
        rows = await self.db.fetch(sql, organization_id, start, end, resolution.total_seconds(), *ids)
        for sensor_id, point in await decoded(_keyed_point, rows):
            found[sensor_id].append(point)
        for points in found.values():
            points.sort()
        return found

    async def counter_rows(
        self, organization_id: UUID, sensor_ids: Sequence[UUID], start: datetime, end: datetime, rollup: Rollups
    ) -> dict[UUID, list[CounterRow]]:
        rows = await self._fetch(organization_id, sensor_ids, start, end, rollup, _COUNTER_COLUMNS)
        found: dict[UUID, list[CounterRow]] = {sensor_id: [] for sensor_id in sensor_ids}
        for sensor_id, row in await decoded(_counter_row, rows):  # ordered by sensor and bucket
            found[sensor_id].append(row)
        return found

    async def gauge_rows(
        self, organization_id: UUID, sensor_id: UUID, start: datetime, end: datetime, rollup: Rollups
    ) -> list[GaugeRow]:
        """The sensor's rollup rows in [start, end), ordered: (bucket, count, sum, min, max, last value)."""
        rows = await self._fetch(organization_id, [sensor_id], start, end, rollup, _GAUGE_COLUMNS)
        return [row for row in await decoded(_gauge_row, rows) if start <= row[0] < end]  # edge rows: for counters

    async def raw_kept_from(self, organization_id: UUID) -> datetime | None:
        return await horizons.kept_from(self.db, organization_id)

    async def _fetch(
        self,
        organization_id: UUID,
        sensor_ids: Sequence[UUID],
        start: datetime,
        end: datetime,
        rollup: Rollups,
        columns: str,
    ) -> list[Row]:
        if not sensor_ids:
            return []
        # The background refresher runs every 15 s; catching up here makes answers include the latest readings
        # (a no-op when nothing is dirty). Only the asked sensors': a sensor's rollups depend on its readings alone,
        # and a dashboard asking for one sensor's year does not fold the whole fleet's readings first.
        await catch_up(self.db, sensor_ids=sensor_ids)
        if rollup is Rollups.MONTHLY:
            zone = ZoneInfo(DEFAULT_ZONE)
            first = local_month(start, zone)
            months = (start if first[0] == start else first[1], local_month(end, zone)[0])
            if months[0] < months[1]:
                return await self._select(
                    _MONTHS_AND_DAYS, DAILY.name, columns, [organization_id, start, end, *months], sensor_ids
                )
            rollup = Rollups.DAILY  # no whole month in the period
        table = HOURLY.name if rollup is Rollups.HOURLY else DAILY.name
        return await self._select(_PERIOD_ROWS, table, columns, [organization_id, start, end], sensor_ids)

    async def _select(
        self, period_rows: str, table: str, columns: str, args: list[object], sensor_ids: Sequence[UUID]
    ) -> list[Row]:
        ids = placeholders(len(sensor_ids), len(args) + 1)
        rows = period_rows.format(columns=columns, table=table, monthly=MONTHLY.name)
        sql = _ROLLUPS.format(ids=ids, table=table, columns=columns, period_rows=rows)
        return await self.db.fetch(sql, *args, *sensor_ids)


def _keyed_point(row: Row) -> tuple[UUID, Point]:
    sensor_id, ts, value = cast(Sequence[Any], row)[:3]
    return as_uuid(sensor_id), (as_time(ts), float(value))


def _counter_row(row: Row) -> tuple[UUID, CounterRow]:
    """A rollup row of `_COUNTER_COLUMNS`, by position (a year of a building is ~30,000 rows)."""
    sensor_id, _, count, first_ts, first_value, last_ts, last_value, *rest = cast(Sequence[Any], row)
    increase, entry, entry_kind, resets, rollovers, longest_step = rest
    counter = CounterRow(
        count,
        as_time(first_ts),
        first_value,
        as_time(last_ts),
        last_value,
        increase,
        entry,
        _STEP_KINDS[entry_kind],
        resets,
        rollovers,
        longest_step,
    )
    return as_uuid(sensor_id), counter


def _gauge_row(row: Row) -> GaugeRow:
    _, bucket, count, total, low, high, last = cast(Sequence[Any], row)
    return as_time(bucket), count, total, low, high, last
