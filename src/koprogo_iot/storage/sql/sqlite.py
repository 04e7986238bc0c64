"""SQLite adapter: the embedded mode's database, one file, no server."""

from __future__ import annotations

import asyncio
import functools
import re
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import aiosqlite

from koprogo_iot.storage.sql import failures
from koprogo_iot.storage.sql.database import Executor, Row

_PLACEHOLDER = re.compile(r"\$(\d+)")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # fixed width, so text order is time order


def _encode(value: object) -> object:
    """SQLite stores ids and times as text; Python 3.12 deprecates sqlite3's implicit datetime adapter.

    Called for every parameter of every statement (millions when rollups are rebuilt): one lookup by exact type.
    """
    encode = _ENCODERS.get(type(value), _encode_other)
    return value if encode is None else encode(value)


def _time(value: datetime) -> str:
    return value.astimezone(UTC).strftime(TIME_FORMAT)


def _encode_other(value: object) -> object:
    """Subclasses (enums, and any of a UUID or a datetime), by the type they derive from."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return _time(value)
    return value


_ENCODERS: dict[type, Callable[[Any], object] | None] = {
    **dict.fromkeys((float, int, str, bool, bytes, type(None))),
    UUID: str,
    datetime: _time,
}


@functools.lru_cache(maxsize=128)
def _positional(sql: str) -> str:
    """`$1` (PostgreSQL's placeholders, which the shared SQL uses) as SQLite's `?1`. Cached: a batch statement has
    thousands of placeholders, and re-translating them cost a sixth of the demo's first start."""
    return _PLACEHOLDER.sub(r"?\1", sql)


def _statements(script: str) -> list[str]:
    """Split a script into statements; `executescript` would commit the surrounding transaction."""
    statements, pending = [], ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):  # the `;` was not inside a string or a trigger body
            code = "\n".join(line for line in pending.splitlines() if not line.strip().startswith("--"))
            if code.strip(" \n;"):
                statements.append(pending.strip())
            pending = ""
    return statements


class _Connection(Executor):
    """Statements on the one connection; the caller holds the lock."""

    dialect = "sqlite"

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def _run(self, sql: str, args: tuple[object, ...]) -> aiosqlite.Cursor:
        with failures.classified(failures.sqlite):
            return await self._conn.execute(_positional(sql), [_encode(a) for a in args])

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        cursor = await self._run(sql, args)
        return cast(list[Row], await cursor.fetchall())  # sqlite3.Row reads by column name, like a Mapping

    async def fetchrow(self, sql: str, *args: object) -> Row | None:
        cursor = await self._run(sql, args)
        return cast(Row | None, await cursor.fetchone())

    async def execute(self, sql: str, *args: object) -> int:
        cursor = await self._run(sql, args)
        return cursor.rowcount

    async def executescript(self, sql: str) -> None:
        for statement in _statements(sql):
            await self._run(statement, ())


class SqliteDatabase(_Connection):
    """One connection in autocommit mode; a lock serializes transactions (SQLite has one writer anyway)."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        super().__init__(conn)
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path | str) -> SqliteDatabase:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(str(path), isolation_level=None)
        conn.row_factory = sqlite3.Row
        db = cls(conn)
        # WAL lets the API read while ingestion writes; NORMAL sync is durable across process crashes.
        await db.executescript(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;"
        )
        return db

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        async with self._lock:
            return await super().fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: object) -> Row | None:
        async with self._lock:
            return await super().fetchrow(sql, *args)

    async def execute(self, sql: str, *args: object) -> int:
        async with self._lock:
            return await super().execute(sql, *args)

    async def executescript(self, sql: str) -> None:
        async with self._lock:
            await super().executescript(sql)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Executor]:
        async with self._lock:
            inner = _Connection(self._conn)
            await inner.execute("BEGIN IMMEDIATE")
            try:
                yield inner
            except BaseException:
                await self._conn.rollback()
                raise
            await inner.execute("COMMIT")

    async def close(self) -> None:
        await self._conn.close()
