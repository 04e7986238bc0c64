"""Job leases in the database: of all processes running a periodic job, one at a time does the work.

A lease is a row of `iot_job_leases` holding the holder's name and an expiry; the holder renews it on each run,
another process takes it over only once it has expired (its holder died or hangs). One upsert, on PostgreSQL
and SQLite alike.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from koprogo_iot.storage.database import Executor
from koprogo_iot.storage.sql_store import as_time_or_none

_ACQUIRE = (
    "INSERT INTO iot_job_leases (name, holder, expires_at) VALUES ($1, $2, $3) "
    "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at "
    "WHERE iot_job_leases.holder = excluded.holder OR iot_job_leases.expires_at < $4 "
    "RETURNING last_run_at"
)


class Lease:
    """`name`'s lease as seen by `holder`."""

    def __init__(self, db: Executor, name: str, holder: str, ttl: timedelta) -> None:
        self.db, self.name, self.holder, self.ttl = db, name, holder, ttl

    async def acquire(self, now: datetime) -> tuple[bool, datetime | None]:
        """Whether this holder has the lease until `now + ttl`, and when the job last completed a run."""
        row = await self.db.fetchrow(_ACQUIRE, self.name, self.holder, now + self.ttl, now)
        return (row is not None, as_time_or_none(row["last_run_at"]) if row else None)

    async def completed(self, at: datetime) -> None:
        """Record a completed run (kept with the lease so that a successor knows where the job stands)."""
        await self.db.execute(
            "UPDATE iot_job_leases SET last_run_at = $3 WHERE name = $1 AND holder = $2", self.name, self.holder, at
        )
