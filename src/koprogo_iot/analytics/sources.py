"""Where analytics read readings from: the seam that lets coarse queries move from raw readings to rollups."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol
from uuid import UUID

from koprogo_iot.domain.consumption import Point
from koprogo_iot.storage.database import Executor
from koprogo_iot.storage.sql_store import _time, _uuid  # the row decoding SqlStore uses


class ReadingSource(Protocol):
    """Readings of some sensors of one organization around a period."""

    async def points(
        self, organization_id: UUID, sensor_ids: Sequence[UUID], start: datetime, end: datetime
    ) -> dict[UUID, list[Point]]:
        """Per sensor, its readings in [start, end) plus the last one before `start` and the first at/after `end`.

        The two edge readings let a counter's consumption be interpolated at the period's bounds; gauges ignore them.
        Every requested sensor is a key, with an empty list when it has no reading.
        """
        ...


# The edge readings are found by one index probe per sensor (`MAX(ts) ... ts < start` on the (sensor_id, ts) key),
# not by a GROUP BY over the sensor's whole history; the period's rows come from one range scan per sensor.
_POINTS = """
WITH wanted AS (
    SELECT id FROM iot_sensors WHERE organization_id = $1 AND id IN ({ids})
), edges AS (
    SELECT w.id AS sensor_id,
        (SELECT MAX(r.ts) FROM iot_readings r WHERE r.sensor_id = w.id AND r.ts < $2) AS before_ts,
        (SELECT MIN(r.ts) FROM iot_readings r WHERE r.sensor_id = w.id AND r.ts >= $3) AS after_ts
    FROM wanted w
)
SELECT r.sensor_id, r.ts, r.value FROM iot_readings r JOIN wanted w ON r.sensor_id = w.id
WHERE r.organization_id = $1 AND r.ts >= $2 AND r.ts < $3
UNION ALL
SELECT r.sensor_id, r.ts, r.value FROM edges e JOIN iot_readings r ON r.sensor_id = e.sensor_id
WHERE r.organization_id = $1 AND (r.ts = e.before_ts OR r.ts = e.after_ts)
"""


class RawReadings:
    """`ReadingSource` over the `iot_readings` table: one portable SQL query per call, scoped by organization."""

    def __init__(self, db: Executor) -> None:
        self.db = db

    async def points(
        self, organization_id: UUID, sensor_ids: Sequence[UUID], start: datetime, end: datetime
    ) -> dict[UUID, list[Point]]:
        found: dict[UUID, list[Point]] = {sensor_id: [] for sensor_id in sensor_ids}
        if not found:
            return found
        ids = list(found)
        placeholders = ", ".join(f"${i}" for i in range(4, 4 + len(ids)))
        rows = await self.db.fetch(_POINTS.format(ids=placeholders), organization_id, start, end, *ids)
        for row in rows:
            found[_uuid(row["sensor_id"])].append((_time(row["ts"]), float(row["value"])))
        for points in found.values():
            points.sort()
        return found
