"""Job leases (`LeaseRepository`): of all processes running a periodic job, one at a time does the work.

A lease is a row of `iot_job_leases` holding the holder's name and an expiry; the holder renews it on each run,
another process takes it over only once it has expired (its holder died or hangs). One upsert, on PostgreSQL
and SQLite alike. Membership leases (`renew`, `expired`, `released`) use the same rows: `last_run_at` then records
when an expired member was dealt with (released), and a lease counts as expired again only once renewed since.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from koprogo_iot.storage.sql.database import Executor
from koprogo_iot.storage.sql.rows import as_time

_ACQUIRE = (
    "INSERT INTO iot_job_leases (name, holder, expires_at) VALUES ($1, $2, $3) "
    "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at "
    "WHERE iot_job_leases.holder = excluded.holder OR iot_job_leases.expires_at < $4 "
    "RETURNING last_run_at"
)


class SqlLeases:
    def __init__(self, db: Executor) -> None:
        self.db = db

    async def acquire(self, name: str, holder: str, now: datetime, ttl: timedelta) -> tuple[bool, datetime | None]:
        row = await self.db.fetchrow(_ACQUIRE, name, holder, now + ttl, now)
        if row is None:
            return False, None
        return True, None if row["last_run_at"] is None else as_time(row["last_run_at"])

    async def completed(self, name: str, holder: str, at: datetime) -> None:
        """Record a completed run (kept with the lease so that a successor knows where the job stands)."""
        await self.db.execute(
            "UPDATE iot_job_leases SET last_run_at = $3 WHERE name = $1 AND holder = $2", name, holder, at
        )

    async def renew(self, name: str, holder: str, now: datetime, ttl: timedelta) -> None:
        await self.db.execute(
            "INSERT INTO iot_job_leases (name, holder, expires_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at",
            name,
            holder,
            now + ttl,
        )

    async def expired(self, prefix: str, now: datetime) -> list[str]:
        rows = await self.db.fetch(
            "SELECT name FROM iot_job_leases WHERE substr(name, 1, length($1)) = $1 AND expires_at < $2 "
            "AND (last_run_at IS NULL OR last_run_at < expires_at) ORDER BY name",
            prefix,
            now,
        )
        return [str(row["name"]) for row in rows]

    async def released(self, name: str, holder: str, at: datetime) -> None:
        await self.db.execute(
            "UPDATE iot_job_leases SET last_run_at = $3, expires_at = $3 WHERE name = $1 AND holder = $2",
            name,
            holder,
            at,
        )
