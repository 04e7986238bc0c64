"""Raw readings expire; rollups stay (`DatabaseMaintenance.apply_retention`).

Each organization keeps its raw readings for its own number of months, or the platform's
(`domain.retention.raw_cutoff`). A run:
1. brings the rollups up to date, so that every expiring reading is in them;
2. moves each organization's horizon (`horizons.py`) to its cutoff, before anything is deleted;
3. on PostgreSQL, drops the monthly partitions every organization's readings have expired in: a drop is cheap
   whatever the month holds, where deleting 25 billion rows (10,000 readings/s for a month) is not;
4. deletes, in bounded transactions, the expired rows left: those of organizations whose retention is shorter
   than the longest one (in the partitions still kept), those in PostgreSQL's default partition, and every expired
   row on SQLite, which has no partitions. A transaction deletes at most `batch` rows, so ingestion (one writer at
   a time on SQLite) waits for one batch at most, not for the whole run;
5. forgets the stale-hour marks of readings ingested for an expired hour meanwhile: recomputed from what is left,
   they would replace the hour's rollup with one of those late readings alone.
Rollup rows are never deleted here.
"""

from __future__ import annotations

import logging
from datetime import datetime
from uuid import UUID

from koprogo_iot.domain.retention import raw_cutoff
from koprogo_iot.storage.ports import RetentionRun
from koprogo_iot.storage.sql import horizons
from koprogo_iot.storage.sql.database import Database
from koprogo_iot.storage.sql.partitions import drop_partitions_before
from koprogo_iot.storage.sql.rollups import catch_up, forget_marks_before
from koprogo_iot.storage.sql.rows import as_uuid

log = logging.getLogger(__name__)

# Rows per delete transaction. PostgreSQL's writers only wait for the rows they touch (~50 ms a batch). SQLite has
# one writer: ingestion waits for the batch in progress, and on a loaded machine for its commit mostly: 2,000-row
# batches deleted 3.4 times slower than 10,000-row ones without shortening the wait (benchmarks/README.md).
BATCH = 10_000
# A sensor's `$3`-th oldest expired reading: the batch deletes up to it, one range of the primary key (sensor_id,
# ts) that PostgreSQL prunes to the partitions before it (an `IN (SELECT ... LIMIT)` probed every row's key: slower).
_BATCH_END = "SELECT ts FROM iot_readings WHERE sensor_id = $1 AND ts < $2 ORDER BY ts LIMIT 1 OFFSET $3"
_DELETE_TO = "DELETE FROM iot_readings WHERE sensor_id = $1 AND ts < $2 AND ts <= $3"


async def apply_retention(db: Database, now: datetime, default_months: int, batch: int = BATCH) -> RetentionRun:
    """Expire the raw readings of every organization as of `now` (see the module's steps); `default_months` for
    the organizations without their own retention; `batch` rows per delete transaction."""
    orgs = await db.fetch("SELECT id, raw_retention_months FROM organizations ORDER BY id")
    cutoffs = {as_uuid(r["id"]): raw_cutoff(now, r["raw_retention_months"] or default_months) for r in orgs}
    await catch_up(db)
    for organization_id, cutoff in cutoffs.items():
        await horizons.advance(db, organization_id, cutoff)
    # A month goes whole only once the organization keeping readings longest no longer needs it.
    dropped = await drop_partitions_before(db, min(cutoffs.values(), default=raw_cutoff(now, default_months)))
    deleted: dict[UUID, int] = {}
    for organization_id, cutoff in cutoffs.items():
        sensors = await db.fetch("SELECT id FROM iot_sensors WHERE organization_id = $1 ORDER BY id", organization_id)
        deleted[organization_id] = await _delete_before(db, [as_uuid(r["id"]) for r in sensors], cutoff, batch)
        await forget_marks_before(db, organization_id, cutoff)
        if deleted[organization_id]:
            log.info(
                "retention: deleted %d raw reading(s) of organization %s before %s",
                deleted[organization_id],
                organization_id,
                cutoff.isoformat(),
            )
    log.info(
        "retention: %d partition(s) dropped%s, %d raw reading(s) deleted row by row",
        len(dropped),
        f" ({', '.join(dropped)})" if dropped else "",
        sum(deleted.values()),
    )
    return RetentionRun(dropped, deleted, cutoffs)


async def _delete_before(db: Database, sensor_ids: list[UUID], cutoff: datetime, batch: int) -> int:
    """Delete the sensors' readings before `cutoff`, at most `batch` rows per transaction; return how many."""
    total, pending = 0, list(sensor_ids)
    while pending:
        budget = batch
        async with db.transaction() as tx:
            while pending and budget > 0:
                end = await tx.fetchrow(_BATCH_END, pending[0], cutoff, budget - 1)
                if end is None:  # fewer than the budget left: all of them
                    deleted = await tx.execute(_DELETE_TO, pending[0], cutoff, cutoff)
                    pending.pop(0)
                else:
                    deleted = await tx.execute(_DELETE_TO, pending[0], cutoff, end["ts"])
                total, budget = total + deleted, budget - deleted
    return total
