"""Where analytics read readings from: the seam that lets coarse queries move from raw readings to rollups."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, cast
from uuid import UUID
from zoneinfo import ZoneInfo

from koprogo_iot.analytics.rollups import DAILY as DAILY_TABLE
from koprogo_iot.analytics.rollups import DEFAULT_LIMIT as REFRESH_LIMIT
from koprogo_iot.analytics.rollups import HOURLY as HOURLY_TABLE
from koprogo_iot.analytics.rollups import MONTHLY as MONTHLY_TABLE
from koprogo_iot.analytics.rollups import local_month, refresh_rollups
from koprogo_iot.domain.consumption import DEFAULT_ZONE, Bucket, CounterResult, Point, step_increase
from koprogo_iot.storage.database import Database, Executor, Row
from koprogo_iot.storage.sql_store import as_time, as_uuid


class ReadingSource(Protocol):
    """Readings of some sensors of one organization around a period."""

    async def points(
        self,
        organization_id: UUID,
        sensor_ids: Sequence[UUID],
        start: datetime,
        end: datetime,
        rollup: Rollups | None = None,
    ) -> dict[UUID, list[Point]]:
        """Per sensor, its readings in [start, end) plus the last one before `start` and the first at/after `end`.

        The two edge readings let a counter's consumption be interpolated at the period's bounds; gauges ignore them.
        Every requested sensor is a key, with an empty list when it has no reading. `rollup` says the caller's
        buckets all start and end on that rollup's bounds, so a source may answer from rollups instead.
        """
        ...


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


class Rollups(StrEnum):
    HOURLY = "hourly"  # UTC hours
    DAILY = "daily"  # local days (Europe/Brussels)
    MONTHLY = "monthly"  # local months, with daily rows for the partial months at the period's edges


class RawReadings:
    """`ReadingSource` over the `iot_readings` table: one portable SQL query per call, scoped by organization."""

    def __init__(self, db: Executor) -> None:
        self.db = db

    async def points(
        self,
        organization_id: UUID,
        sensor_ids: Sequence[UUID],
        start: datetime,
        end: datetime,
        rollup: Rollups | None = None,
    ) -> dict[UUID, list[Point]]:
        found: dict[UUID, list[Point]] = {sensor_id: [] for sensor_id in sensor_ids}
        if not found:
            return found
        ids = list(found)
        placeholders = ", ".join(f"${i}" for i in range(4, 4 + len(ids)))
        rows = await self.db.fetch(_POINTS.format(ids=placeholders), organization_id, start, end, *ids)
        for row in rows:
            found[as_uuid(row["sensor_id"])].append((as_time(row["ts"]), float(row["value"])))
        for points in found.values():
            points.sort()
        return found


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
GaugeRow = tuple[datetime, int, float, float, float, float]  # bucket, count, sum, min, max, last value
# What a counter's consumption needs of a rollup row: its first and last readings and the increase between them.
_COUNTER_COLUMNS = "r.sensor_id, r.bucket, r.count, r.first_ts, r.first_value, r.last_ts, r.last_value, r.increase"
# readings, first_ts, first_value, last_ts, last_value, increase
CounterRow = tuple[int, datetime, float, datetime, float, float | None]


def virtual_index(rows: Sequence[CounterRow]) -> list[Point]:
    """Points of a reset-free index rebuilt from rollup rows: consumption over them equals the raw readings'.

    Each row contributes its first and last reading; the index climbs by the row's own `increase` between them
    and by the boundary step (counter rules on the real values) from one row to the next. Resets and jitter are
    thus already resolved, which the domain math, seeing a monotonic index, keeps.
    """
    points: list[Point] = []
    index, previous_value = (rows[0][2] if rows else 0.0), None
    for count, first_ts, first_value, last_ts, last_value, increase in rows:
        if previous_value is not None:
            index += step_increase(previous_value, first_value)[0]
        points.append((first_ts, index))
        if count > 1:  # (comparing the two aware datetimes instead cost a third of a year's query)
            index += increase or 0.0
            points.append((last_ts, index))
        previous_value = last_value
    return points


def index_results(points: list[Point], grid: Sequence[Bucket]) -> list[CounterResult]:
    """Consumption per bucket of a reset-free (virtual) index: its interpolated value at the end minus at the start.

    For a monotonic index this is exactly what `domain.consumption.consumption_by_bucket` computes (each step's
    increase spread linearly over its span), in one cheap pass: a year of hourly buckets costs milliseconds.
    """
    if len(points) < 2:
        return [_UNKNOWN] * len(grid)
    times = [t.timestamp() for t, _ in points]
    values = [v for _, v in points]
    first, last, n = times[0], times[-1], len(times)

    def bound(moment: float, low: int) -> tuple[int, float]:
        """The first point at or after `moment` (searched from `low`), and the index interpolated there."""
        i = bisect.bisect_left(times, moment, low)
        if i < n and times[i] == moment:
            return i, values[i]
        if i == 0:
            return 0, values[0]
        if i == n:
            return n, values[-1]
        t0 = times[i - 1]
        return i, values[i - 1] + (values[i] - values[i - 1]) * (moment - t0) / (times[i] - t0)

    results = []
    # Grids are sorted and usually contiguous: each bucket's start is the previous one's end, found once.
    previous_end: datetime | None = None
    end_position, end_index = 0, values[0]
    for start, end in grid:
        s = start.timestamp()
        if start == previous_end:
            low_position, low_index = end_position, end_index
        else:
            low_position, low_index = bound(s, 0)
        e = end.timestamp()
        end_position, end_index = bound(e, low_position)
        previous_end = end
        if max(s, first) >= min(e, last):
            results.append(_UNKNOWN)
            continue
        # Before the first point or after the last, the index is flat: the bounds clamp to the covered part.
        any_inside = end_position > low_position
        results.append(
            CounterResult(
                consumption=end_index - low_index,
                first=points[low_position] if any_inside else None,
                last=points[end_position - 1] if any_inside else None,
                readings=end_position - low_position,
                resets=0,
                rollovers=0,
                gaps=(),
                complete=first <= s and last >= e,
            )  # fmt: skip
        )
    return results


_UNKNOWN = CounterResult(None, None, None, 0, 0, 0, (), False)


class AnalyticsSource:
    """Raw readings for fine grids; rollup rows when the caller's buckets fall on rollup bounds (hours, days)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.raw = RawReadings(db)

    async def points(
        self,
        organization_id: UUID,
        sensor_ids: Sequence[UUID],
        start: datetime,
        end: datetime,
        rollup: Rollups | None = None,
    ) -> dict[UUID, list[Point]]:
        if rollup is None:
            return await self.raw.points(organization_id, sensor_ids, start, end)
        rows = await self._fetch(organization_id, sensor_ids, start, end, rollup, _COUNTER_COLUMNS)
        found: dict[UUID, list[CounterRow]] = {sensor_id: [] for sensor_id in sensor_ids}
        # Rows come ordered by sensor and bucket; positional access: a year of a building is ~30,000 rows.
        for sensor_id, _, count, first_ts, first_value, last_ts, last_value, increase in cast(
            list[Sequence[Any]], rows
        ):
            found[as_uuid(sensor_id)].append(
                (count, as_time(first_ts), first_value, as_time(last_ts), last_value, increase)
            )
        return {sensor_id: virtual_index(rolled) for sensor_id, rolled in found.items()}

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
        while await refresh_rollups(self.db) >= REFRESH_LIMIT:
            pass
        if rollup is Rollups.MONTHLY:
            zone = ZoneInfo(DEFAULT_ZONE)
            first = local_month(start, zone)
            months = (start if first[0] == start else first[1], local_month(end, zone)[0])
            if months[0] < months[1]:
                return await self._select(
                    _MONTHS_AND_DAYS, DAILY_TABLE, columns, [organization_id, start, end, *months], sensor_ids
                )
            rollup = Rollups.DAILY  # no whole month in the period
        table = HOURLY_TABLE if rollup is Rollups.HOURLY else DAILY_TABLE
        return await self._select(_PERIOD_ROWS, table, columns, [organization_id, start, end], sensor_ids)

    async def _select(
        self, period_rows: str, table: str, columns: str, args: list[object], sensor_ids: Sequence[UUID]
    ) -> list[Row]:
        placeholders = ", ".join(f"${i}" for i in range(len(args) + 1, len(args) + 1 + len(sensor_ids)))
        rows = period_rows.format(columns=columns, table=table, monthly=MONTHLY_TABLE)
        sql = _ROLLUPS.format(ids=placeholders, table=table, columns=columns, period_rows=rows)
        return await self.db.fetch(sql, *args, *sensor_ids)
