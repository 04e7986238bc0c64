"""PostgreSQL adapter (asyncpg): the production database."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from enum import Enum
from typing import Any

import asyncpg

from koprogo_iot.storage.sql import failures
from koprogo_iot.storage.sql.database import Executor, Row


class _WithoutTraceback(logging.Filter):
    """asyncpg's pool reconnects in the background while the server is away, and logs each failed attempt with a
    traceback: an outage we report ourselves (storage unavailable, retrying) is not a bug. Its reason stays."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.getMessage()} ({record.exc_info[1]})"
            record.args, record.exc_info, record.exc_text = None, None, None
        return True


logging.getLogger("asyncpg.pool").addFilter(_WithoutTraceback())


def _encode(value: object) -> object:
    return value.value if isinstance(value, Enum) else value


def _rowcount(status: str) -> int:
    """asyncpg returns the command tag ("INSERT 0 3", "UPDATE 2"): the count is its last word."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class PgExecutor(Executor):
    """Statements on one asyncpg connection, or on the pool (one connection per statement)."""

    dialect = "postgres"

    def __init__(self, conn: Any) -> None:  # an asyncpg Connection or Pool: both run statements
        self._conn = conn

    async def _call(self, method: str, sql: str, args: tuple[object, ...]) -> Any:
        with failures.classified(failures.postgres):
            return await getattr(self._conn, method)(sql, *[_encode(a) for a in args])

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        return list(await self._call("fetch", sql, args))

    async def fetchrow(self, sql: str, *args: object) -> Row | None:
        row: Row | None = await self._call("fetchrow", sql, args)
        return row

    async def execute(self, sql: str, *args: object) -> int:
        return _rowcount(await self._call("execute", sql, args))

    async def executescript(self, sql: str) -> None:
        await self._call("execute", sql, ())

    async def copy_records(self, table: str, columns: list[str], records: Sequence[tuple[object, ...]]) -> None:
        """Binary COPY: the fastest way to load rows (~95,000 rows/s on one connection here)."""
        with failures.classified(failures.postgres):
            await self._conn.copy_records_to_table(table, records=records, columns=columns)


class PostgresDatabase(PgExecutor):
    """A connection pool; each transaction holds one connection."""

    @classmethod
    async def open(cls, url: str, min_size: int = 1, max_size: int = 10) -> PostgresDatabase:
        with failures.classified(failures.postgres_connecting):
            # JIT compilation pays off for long analytical scans only: our queries are short, and the planner's
            # cost estimates over many partitions made PostgreSQL compile some for half a second (measured on the
            # window rules' look-back query: 1.8 s with JIT, see benchmarks/README.md).
            pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size, server_settings={"jit": "off"})
        return cls(pool)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Executor]:
        # Connecting, BEGIN and COMMIT are classified too (a serialization failure may come at COMMIT).
        with failures.classified(failures.postgres):
            async with self._conn.acquire() as conn, conn.transaction():
                yield PgExecutor(conn)

    async def close(self) -> None:
        await self._conn.close()
