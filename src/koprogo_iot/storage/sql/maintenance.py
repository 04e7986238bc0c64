"""The database's own upkeep (`DatabaseMaintenance`): migrations, monthly partitions, retention, closing."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from koprogo_iot.storage.ports import RetentionRun, StorageReport, TableSize
from koprogo_iot.storage.sql.database import Database
from koprogo_iot.storage.sql.migrations import DataStep, migrate, pending
from koprogo_iot.storage.sql.partitions import maintain_partitions
from koprogo_iot.storage.sql.retention import apply_retention
from koprogo_iot.storage.sql.rows import as_time


class SqlMaintenance:
    def __init__(self, db: Database, steps: Mapping[int, DataStep] | None = None) -> None:
        self.db = db
        self.steps = dict(steps or {})

    async def migrate(self) -> list[str]:
        return [f"{m.version:04d}_{m.name}" for m in await migrate(self.db, self.steps)]

    async def pending_migrations(self) -> list[str]:
        return [f"{m.version:04d}_{m.name}" for m in await pending(self.db)]

    async def maintain_partitions(self, now: datetime) -> None:
        await maintain_partitions(self.db, now)

    async def apply_retention(self, now: datetime, default_months: int) -> RetentionRun:
        return await apply_retention(self.db, now, default_months)

    async def report(self, now: datetime) -> StorageReport:
        tables = await (self._postgres_tables() if self.db.dialect == "postgres" else self._sqlite_tables())
        oldest = await self.db.fetchrow("SELECT min(ts) AS ts FROM iot_readings")
        recent = await self.db.fetchrow(
            "SELECT count(*) AS n FROM iot_readings WHERE ts >= $1", now - timedelta(days=1)
        )
        assert oldest is not None and recent is not None
        return StorageReport(tables, None if oldest["ts"] is None else as_time(oldest["ts"]), recent["n"])

    async def _postgres_tables(self) -> list[TableSize]:
        rows = await self.db.fetch(
            "SELECT c.relname AS name, greatest(c.reltuples, 0)::bigint AS rows, "
            "pg_total_relation_size(c.oid) AS bytes, p.relname AS part_of "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_inherits i ON i.inhrelid = c.oid LEFT JOIN pg_class p ON p.oid = i.inhparent "
            "WHERE n.nspname = current_schema() AND c.relkind = 'r' ORDER BY bytes DESC, name"
        )
        return [TableSize(r["name"], r["rows"], r["bytes"], r["part_of"]) for r in rows]

    async def _sqlite_tables(self) -> list[TableSize]:
        names = [
            r["name"]
            for r in await self.db.fetch(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        sizes: dict[str, int] = {}
        try:  # a table's pages and those of its indexes; dbstat exists only when SQLite was built with it
            for r in await self.db.fetch(
                "SELECT coalesce(m.tbl_name, s.name) AS name, sum(s.pgsize) AS bytes FROM dbstat s "
                "LEFT JOIN sqlite_master m ON m.name = s.name GROUP BY 1"
            ):
                sizes[r["name"]] = r["bytes"]
        except Exception:  # noqa: BLE001 - "no such table: dbstat": sizes unknown, rows still counted
            sizes = {}
        tables = []
        for name in names:
            counted = await self.db.fetchrow(f'SELECT count(*) AS n FROM "{name}"')
            assert counted is not None
            tables.append(TableSize(name, counted["n"], sizes.get(name) if sizes else None))
        return sorted(tables, key=lambda t: (-(t.bytes or 0), t.name))

    async def close(self) -> None:
        await self.db.close()
