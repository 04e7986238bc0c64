"""Versioned schema migrations: numbered SQL files per dialect, each applied once, in order."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from importlib import resources

from koprogo_iot.storage.sql.database import Database, Executor

log = logging.getLogger(__name__)


# What SQL cannot do in a migration (encrypting stored secrets): run in its transaction, after its SQL.
DataStep = Callable[[Executor], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def available(dialect: str) -> list[Migration]:
    """The migrations shipped for `dialect`, sorted by version (`0001_initial.sql` is version 1)."""
    folder = resources.files("koprogo_iot.storage.sql") / "schema" / dialect
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number, _, rest = entry.name.partition("_")
            found.append(Migration(int(number), rest.removesuffix(".sql"), entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


async def pending(db: Database) -> list[Migration]:
    """The migrations shipped that `db` has not applied (all of them on a database never migrated)."""
    tables = (
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        if db.dialect == "sqlite"
        else "SELECT to_regclass('schema_migrations')::text AS name"
    )
    found = await db.fetchrow(tables)
    if found is None or found["name"] is None:
        return available(db.dialect)
    done = {row["version"] for row in await db.fetch("SELECT version FROM schema_migrations")}
    return [m for m in available(db.dialect) if m.version not in done]


async def migrate(db: Database, steps: Mapping[int, DataStep] | None = None) -> list[Migration]:
    """Apply the migrations `db` has not seen yet, each with its data step if `steps` has one; return them."""
    await db.executescript(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL)"
    )
    done = {row["version"] for row in await db.fetch("SELECT version FROM schema_migrations")}
    applied = []
    for migration in available(db.dialect):
        if migration.version in done:
            continue
        async with db.transaction() as tx:
            await tx.executescript(migration.sql)
            if steps and migration.version in steps:
                await steps[migration.version](tx)
            await tx.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )
        log.info("applied migration %04d_%s", migration.version, migration.name)
        applied.append(migration)
    return applied
