"""Monthly range partitions of `iot_readings` on PostgreSQL without TimescaleDB: created ahead, dropped when old.

Migration 0001 makes `iot_readings` a table partitioned by `ts`, with a DEFAULT partition that catches readings of
months without a partition of their own. Run `maintain_partitions` at startup and then daily: it creates the
months around now (moving any of their rows out of the default partition). The retention (`retention.py`) drops
the months every organization's raw readings have expired in. SQLite has no partitions: every function here does
nothing there.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime, timedelta

from koprogo_iot.domain.clock import require_aware
from koprogo_iot.storage.sql.database import Database

log = logging.getLogger(__name__)

MONTHS_AHEAD = 3
_PREFIX = "iot_readings_p"  # iot_readings_p202603 holds March 2026 (UTC)
_NAME = re.compile(rf"^{_PREFIX}(\d{{4}})(\d{{2}})$")


def partition_name(month: date) -> str:
    return f"{_PREFIX}{month.year:04d}{month.month:02d}"


def _month_start(month: date) -> datetime:
    return datetime(month.year, month.month, 1, tzinfo=UTC)


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _months(start: datetime, end: datetime) -> list[date]:
    """The UTC months overlapping [start, end)."""
    start, end = require_aware(start, "start").astimezone(UTC), require_aware(end, "end").astimezone(UTC)
    month, months = date(start.year, start.month, 1), []
    while _month_start(month) < end:
        months.append(month)
        month = _next_month(month)
    return months


async def ensure_partitions(db: Database, start: datetime, end: datetime) -> list[str]:
    """Create the missing monthly partitions overlapping [start, end); return the ones created. Idempotent."""
    if db.dialect != "postgres":
        return []
    created = []
    for month in _months(start, end):
        name = partition_name(month)
        low, high = _month_start(month), _month_start(_next_month(month))
        async with db.transaction() as tx:
            # Inserts go through the parent: locking it (not its partitions) stops rows landing in the default
            # partition between the move and the attach, while reads go on. Two callers queue here.
            await tx.execute("LOCK TABLE ONLY iot_readings IN SHARE ROW EXCLUSIVE MODE")
            existing = await tx.fetchrow("SELECT to_regclass($1) IS NOT NULL AS found", name)
            if existing is not None and existing["found"]:
                continue
            bounds = f"FROM ('{low.isoformat()}') TO ('{high.isoformat()}')"  # our own datetimes, not input
            # PostgreSQL refuses a partition whose rows the default partition holds: move them first, then attach.
            await tx.execute(f"CREATE TABLE {name} (LIKE iot_readings INCLUDING DEFAULTS)")
            moved = await tx.execute(
                f"WITH moved AS (DELETE FROM iot_readings_default WHERE ts >= $1 AND ts < $2 RETURNING *) "
                f"INSERT INTO {name} SELECT * FROM moved",
                low,
                high,
            )
            await tx.execute(f"ALTER TABLE iot_readings ATTACH PARTITION {name} FOR VALUES {bounds}")
        log.info("created partition %s (%d readings moved from the default partition)", name, moved)
        created.append(name)
    return created


async def drop_partitions_before(db: Database, cutoff: datetime) -> list[str]:
    """Drop the monthly partitions that end on or before `cutoff`; return their names. Rows of the default
    partition are left to the retention's batched deletes (a drop takes no time; a delete is bounded)."""
    cutoff = require_aware(cutoff, "cutoff")
    dropped = []
    for name in await partition_names(db):
        match = _NAME.match(name)
        assert match is not None  # partition_names keeps only the monthly ones
        if _month_start(_next_month(date(int(match[1]), int(match[2]), 1))) <= cutoff:
            await db.execute(f"DROP TABLE {name}")
            log.info("dropped partition %s (retention)", name)
            dropped.append(name)
    return dropped


async def partition_names(db: Database) -> list[str]:
    """The monthly partitions of `iot_readings`, oldest first (none on SQLite)."""
    if db.dialect != "postgres":
        return []
    rows = await db.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'iot_readings'::regclass ORDER BY c.relname"
    )
    return [row["relname"] for row in rows if _NAME.match(row["relname"])]


async def maintain_partitions(db: Database, now: datetime) -> None:
    """Partitions from last month to MONTHS_AHEAD ahead."""
    await ensure_partitions(db, now - timedelta(days=31), now + timedelta(days=31 * MONTHS_AHEAD))
