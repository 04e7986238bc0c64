"""Every database error, classified in one place: what a caller may retry and what it may not.

Callers see three outcomes (domain/errors.py):
- `StorageUnavailable`: the server is not there or not serving right now (refused or lost connection, database not
  accepting connections, too many connections, shutdown, read-only after a failover, disk full, a locked SQLite
  file). Retry later, with backoff; nothing was written.
- `StorageContention` (a `StorageUnavailable`): the transaction lost a deadlock or a serialization race against
  another writer, or a migration changed a table under a cached statement. Retry it at once; nothing was written.
- anything else is permanent: the same statement with the same data fails again (`Conflict` for a constraint, the
  driver's own error for a statement the server rejects). A caller must isolate the data at fault, not retry.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import asyncpg

from koprogo_iot.domain.errors import Conflict, StorageContention, StorageRefused, StorageUnavailable

# SQLSTATE classes and codes (PostgreSQL appendix A) that say "not now" rather than "never".
_UNAVAILABLE_CLASSES = (
    "08",  # connection exception: refused, lost, failed
    "53",  # insufficient resources: too many connections, disk full, out of memory
    "55",  # object not in prerequisite state: the database does not accept connections (ALLOW_CONNECTIONS false)
    "57",  # operator intervention: admin or crash shutdown, cannot connect now (starting up), query cancelled
    "58",  # system error: I/O error
)
_UNAVAILABLE_CODES = frozenset({"25006"})  # read-only SQL transaction: the server became a standby (failover)
_CONTENTION_CODES = frozenset({"40001", "40P01"})  # serialization failure, deadlock detected
# Refusals when connecting that waiting does not cure: a wrong login, a database that does not exist.
_REFUSED_CLASSES = ("28", "3D")

# SQLite's primary result codes that a moment later may not repeat (https://sqlite.org/rescode.html).
_SQLITE_TRANSIENT = frozenset(
    {
        5,  # SQLITE_BUSY: "database is locked" by another connection, past busy_timeout
        6,  # SQLITE_LOCKED: a conflict within the same connection's shared cache
        7,  # SQLITE_NOMEM
        10,  # SQLITE_IOERR
        13,  # SQLITE_FULL: disk full
        14,  # SQLITE_CANTOPEN
    }
)


def postgres(exc: BaseException) -> Exception | None:
    """The classified error to raise for an error of asyncpg (or of the socket under it); None: let it through."""
    if isinstance(exc, asyncpg.InvalidCachedStatementError | asyncpg.OutdatedSchemaCacheError):
        # A migration changed a table under a prepared statement (a rolling deploy): asyncpg has dropped its
        # statement cache, so the same transaction again succeeds.
        return StorageContention(f"PostgreSQL: {exc}")
    if isinstance(exc, asyncpg.PostgresError):
        state = exc.sqlstate or ""
        if state in _CONTENTION_CODES:
            return StorageContention(f"PostgreSQL: {exc}")
        if state in _UNAVAILABLE_CODES or state.startswith(_UNAVAILABLE_CLASSES):
            return StorageUnavailable(f"PostgreSQL: {exc}")
        if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
            return Conflict(exc.detail or str(exc))
        return None  # a statement the server rejects: the caller's bug or its data
    if isinstance(exc, asyncpg.InterfaceError) and not isinstance(exc, ValueError):
        return StorageUnavailable(f"PostgreSQL: {exc}")  # the connection is closed, the pool is closing
    if isinstance(exc, asyncpg.InternalClientError):
        # The server ended the session mid-operation and the driver's protocol state was left inconsistent ("cannot
        # switch to state 11; another operation (2) is in progress", asyncpg #784): the pool terminates that
        # connection on release, so the next attempt gets a sound one.
        return StorageUnavailable(f"PostgreSQL: {exc}")
    if isinstance(exc, OSError):  # refused, reset, unreachable, timed out (TimeoutError is an OSError)
        return StorageUnavailable(f"PostgreSQL: {exc or type(exc).__name__}")
    return None


def postgres_connecting(exc: BaseException) -> Exception | None:
    """`postgres` for an error while opening the pool, where a wrong login or database must not be waited for."""
    if isinstance(exc, asyncpg.PostgresError) and (exc.sqlstate or "").startswith(_REFUSED_CLASSES):
        return StorageRefused(f"PostgreSQL refused the connection: {exc}")
    return postgres(exc)


def sqlite(exc: BaseException) -> Exception | None:
    """The classified error to raise for an error of sqlite3; None: let it through (a bug in the statement)."""
    if isinstance(exc, sqlite3.IntegrityError):
        return Conflict(str(exc))
    if isinstance(exc, sqlite3.OperationalError) and (exc.sqlite_errorcode & 0xFF) in _SQLITE_TRANSIENT:
        return StorageUnavailable(f"SQLite: {exc}")
    return None


@contextmanager
def classified(classify: Callable[[BaseException], Exception | None]) -> Iterator[None]:
    """Raise what `classify` makes of an error in the block (the driver's error as its cause), else the error."""
    try:
        yield
    except Exception as exc:
        found = classify(exc)
        if found is None:
            raise
        raise found from exc
