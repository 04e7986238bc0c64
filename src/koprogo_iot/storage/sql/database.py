"""The small driver interface `SqlStore` is written against; SQLite and PostgreSQL each implement it."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

Row = Mapping[str, Any]


class Executor(Protocol):
    """Runs SQL written with PostgreSQL-style `$1` placeholders; rows are read by column name."""

    dialect: str  # "sqlite" or "postgres": the migrations folder to use

    async def fetch(self, sql: str, *args: object) -> list[Row]: ...
    async def fetchrow(self, sql: str, *args: object) -> Row | None: ...
    async def execute(self, sql: str, *args: object) -> int:
        """Run a statement; return the number of rows it changed."""
        ...

    async def executescript(self, sql: str) -> None:
        """Run several `;`-separated statements without parameters (migrations)."""
        ...


class Database(Executor, Protocol):
    def transaction(self) -> AbstractAsyncContextManager[Executor]:
        """An executor whose statements commit together, or not at all."""
        ...

    async def close(self) -> None: ...
