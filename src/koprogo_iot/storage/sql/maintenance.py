"""The database's own upkeep (`DatabaseMaintenance`): migrations, monthly partitions, closing."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from koprogo_iot.storage.sql.database import Database
from koprogo_iot.storage.sql.migrations import DataStep, migrate, pending
from koprogo_iot.storage.sql.partitions import maintain_partitions


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

    async def close(self) -> None:
        await self.db.close()
