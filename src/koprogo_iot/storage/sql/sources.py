"""Where analytics read readings from (`ReadingSource`): the raw readings, or rollup rows where the caller's
buckets fall on rollup bounds, rebuilt into the points the domain's consumption math expects."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast
from uuid import UUID
from zoneinfo import ZoneInfo

from koprogo_iot.domain.consumption import DEFAULT_ZONE, Point, StepKind
from koprogo_iot.domain.rollups import CounterRow, GaugeRow, Rollups, local_month, virtual_index
from koprogo_iot.storage.sql.database import Database, Row
from koprogo_iot.storage.sql.rollups import DAILY, DEFAULT_LIMIT, HOURLY, MONTHLY, refresh_rollups
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
        for row in rows:
            found[as_uuid(row["sensor_id"])].append((as_time(row["ts"]), float(row["value"])))
        for points in found.values():
            points.sort()
        return found

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

    async def counter_rows(
        self, organization_id: UUID, sensor_ids: Sequence[UUID], start: datetime, end: datetime, rollup: Rollups
    ) -> dict[UUID, list[CounterRow]]:
        rows = await self._fetch(organization_id, sensor_ids, start, end, rollup, _COUNTER_COLUMNS)
        found: dict[UUID, list[CounterRow]] = {sensor_id: [] for sensor_id in sensor_ids}
        # Rows come ordered by sensor and bucket; positional access: a year of a building is ~30,000 rows.
        for sensor_id, _, count, first_ts, first_value, last_ts, last_value, *rest in cast(list[Sequence[Any]], rows):
            increase, entry, entry_kind, resets, rollovers, longest_step = rest
            found[as_uuid(sensor_id)].append(
                CounterRow(
                    count,
                    as_time(first_ts),
                    first_value,
                    as_time(last_ts),
                    last_value,
                    increase,
                    entry,
                    None if entry_kind is None else StepKind(entry_kind),
                    resets,
                    rollovers,
                    longest_step,
                )
            )
        return found

    async def gauge_rows(
        self, organization_id: UUID, sensor_id: UUID, start: datetime, end: datetime, rollup: Rollups
    ) -> list[GaugeRow]:
        """The sensor's rollup rows in [start, end), ordered: (bucket, count, sum, min, max, last value)."""
        rows = await self._fetch(organization_id, [sensor_id], start, end, rollup, _GAUGE_COLUMNS)
        return [
            (as_time(bucket), count, total, low, high, last)
            for _, bucket, count, total, low, high, last in cast(list[Sequence[Any]], rows)
            if start <= as_time(bucket) < end  # the edge rows are for counters
        ]

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
        # The background refresher runs every few seconds; catching up here makes answers include the latest
        # readings (a no-op when nothing is dirty).
        while await refresh_rollups(self.db) >= DEFAULT_LIMIT:
            pass
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
