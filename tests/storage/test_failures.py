"""Database errors classified (storage/sql/failures.py): unavailable and contention are retried, the rest is not.

The unit half feeds every error the classification names; the contract half makes the real servers raise them.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from pathlib import Path

import asyncpg
import pytest

from koprogo_iot.bench.machine import allow_connections, refuse_connections
from koprogo_iot.bench.services import free_port
from koprogo_iot.domain.errors import Conflict, StorageContention, StorageRefused, StorageUnavailable
from koprogo_iot.storage.sql import failures
from koprogo_iot.storage.sql.database import Database
from koprogo_iot.storage.sql.postgres import PostgresDatabase
from koprogo_iot.storage.sql.sqlite import SqliteDatabase
from tests.conftest import POSTGRES_ADMIN_URL

UNAVAILABLE = [
    ConnectionRefusedError(111, "Connection refused"),
    TimeoutError(),
    asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.CannotConnectNowError("the database system is starting up"),
    asyncpg.ObjectNotInPrerequisiteStateError('database "x" is not currently accepting connections'),
    asyncpg.TooManyConnectionsError("sorry, too many clients already"),
    asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.CrashShutdownError("terminating connection because of crash of another server process"),
    asyncpg.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only transaction"),
    asyncpg.DiskFullError("could not extend file"),
    asyncpg.InterfaceError("connection is closed"),
    # backends terminated mid-transaction: now and then the driver's protocol state is left inconsistent (seen in CI
    # in tests/faults/test_database_faults.py: a worker exited on it; asyncpg #784, SQLAlchemy #13241)
    asyncpg.InternalClientError("cannot switch to state 11; another operation (2) is in progress"),
]
CONTENTION = [
    asyncpg.DeadlockDetectedError("deadlock detected"),
    asyncpg.SerializationError("could not serialize access due to concurrent update"),
    asyncpg.InvalidCachedStatementError("cached statement plan is invalid due to a database schema change"),
    asyncpg.exceptions.OutdatedSchemaCacheError("the schema changed under a cached statement"),
]
PERMANENT = [
    asyncpg.PostgresSyntaxError('syntax error at or near "SELEC"'),
    asyncpg.UndefinedTableError('relation "nowhere" does not exist'),
    asyncpg.DataError("invalid input for query argument $1"),
    asyncpg.exceptions.CharacterNotInRepertoireError("invalid byte sequence for encoding UTF8: 0x00"),
    ValueError("a bug"),
]


@pytest.mark.parametrize("error", UNAVAILABLE, ids=lambda e: type(e).__name__)
def test_postgres_outages_are_unavailable(error: Exception) -> None:
    found = failures.postgres(error)
    assert isinstance(found, StorageUnavailable) and not isinstance(found, StorageContention)


@pytest.mark.parametrize("error", CONTENTION, ids=lambda e: type(e).__name__)
def test_postgres_deadlocks_and_serialization_failures_are_contention(error: Exception) -> None:
    assert isinstance(failures.postgres(error), StorageContention)


@pytest.mark.parametrize("error", PERMANENT, ids=lambda e: type(e).__name__)
def test_postgres_statement_errors_are_permanent(error: Exception) -> None:
    assert failures.postgres(error) is None


def test_postgres_constraint_violations_are_conflicts() -> None:
    assert isinstance(failures.postgres(asyncpg.ForeignKeyViolationError("fk")), Conflict)


def test_wrong_login_or_database_is_refused_at_connection_not_waited_for() -> None:
    assert isinstance(failures.postgres_connecting(asyncpg.InvalidPasswordError("bad")), StorageRefused)
    assert isinstance(failures.postgres_connecting(asyncpg.InvalidCatalogNameError("no db")), StorageRefused)
    assert isinstance(failures.postgres_connecting(asyncpg.TooManyConnectionsError("full")), StorageUnavailable)


def _sqlite_error(code: int, message: str) -> sqlite3.OperationalError:
    error = sqlite3.OperationalError(message)
    error.sqlite_errorcode = code
    return error


def test_sqlite_locked_is_unavailable_and_sql_bugs_are_permanent() -> None:
    assert isinstance(failures.sqlite(_sqlite_error(5, "database is locked")), StorageUnavailable)
    assert isinstance(failures.sqlite(_sqlite_error(6, "database table is locked")), StorageUnavailable)
    assert failures.sqlite(_sqlite_error(1, "no such table: nowhere")) is None
    assert isinstance(failures.sqlite(sqlite3.IntegrityError("FOREIGN KEY constraint failed")), Conflict)


# --- the same, raised by the real servers


async def test_a_statement_the_database_rejects_is_not_retried(db: Database) -> None:
    with pytest.raises((sqlite3.OperationalError, asyncpg.UndefinedTableError)) as raised:
        await db.execute("INSERT INTO nowhere VALUES (1)")
    assert not isinstance(raised.value, StorageUnavailable)


async def test_a_foreign_key_violation_is_a_conflict(db: Database) -> None:
    with pytest.raises(Conflict):
        await db.execute(
            "INSERT INTO buildings (id, organization_id, name, created_at) VALUES ($1, $2, 'b', CURRENT_TIMESTAMP)",
            uuid.uuid4(),
            uuid.uuid4(),
        )


async def test_a_locked_sqlite_file_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    db = await SqliteDatabase.open(path)
    await db.executescript("PRAGMA busy_timeout=50; CREATE TABLE t (x INTEGER);")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process writing
    try:
        with pytest.raises(StorageUnavailable, match="locked"):
            await db.execute("INSERT INTO t VALUES (1)")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert await db.execute("INSERT INTO t VALUES (1)") == 1  # and it passes once the lock is gone
    await db.close()


@pytest.mark.postgres
async def test_a_database_refusing_connections_is_unavailable(postgres_url: str) -> None:
    name = postgres_url.rsplit("/", 1)[1]
    db = await PostgresDatabase.open(postgres_url)
    try:
        await refuse_connections(POSTGRES_ADMIN_URL, name)
        causes = []
        for _ in range(2):  # the terminated connection, then a new one the database refuses
            with pytest.raises(StorageUnavailable) as raised:
                await db.fetch("SELECT 1")
            causes.append(type(raised.value.__cause__))
        assert asyncpg.ObjectNotInPrerequisiteStateError in causes
        await allow_connections(POSTGRES_ADMIN_URL, name)
        row = await db.fetchrow("SELECT 1 AS one")
        assert row is not None and row["one"] == 1
    finally:
        await allow_connections(POSTGRES_ADMIN_URL, name)
        await db.close()


@pytest.mark.postgres
async def test_a_read_only_transaction_is_unavailable_as_after_a_failover(postgres_url: str) -> None:
    db = await PostgresDatabase.open(postgres_url)
    try:
        with pytest.raises(StorageUnavailable) as raised:
            async with db.transaction() as tx:
                await tx.execute("SET TRANSACTION READ ONLY")
                await tx.execute("CREATE TABLE t (x INTEGER)")
        assert isinstance(raised.value.__cause__, asyncpg.ReadOnlySQLTransactionError)
    finally:
        await db.close()


@pytest.mark.postgres
async def test_a_deadlock_is_contention(postgres_url: str) -> None:
    db = await PostgresDatabase.open(postgres_url)
    await db.executescript("CREATE TABLE t (id INTEGER PRIMARY KEY, x INTEGER); INSERT INTO t VALUES (1, 0), (2, 0);")
    both_locked_one = asyncio.Barrier(2)

    async def lock(first: int, second: int) -> None:
        async with db.transaction() as tx:
            await tx.execute("UPDATE t SET x = x + 1 WHERE id = $1", first)
            await both_locked_one.wait()
            await tx.execute("UPDATE t SET x = x + 1 WHERE id = $1", second)

    try:
        results = await asyncio.gather(lock(1, 2), lock(2, 1), return_exceptions=True)
        losers = [r for r in results if isinstance(r, BaseException)]
        assert len(losers) == 1 and isinstance(losers[0], StorageContention), results
    finally:
        await db.close()


@pytest.mark.postgres
async def test_opening_a_missing_database_is_refused_and_a_closed_port_unavailable() -> None:
    with pytest.raises(StorageRefused):
        await PostgresDatabase.open(POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/missing_{uuid.uuid4().hex[:8]}")
    with pytest.raises(StorageUnavailable):
        await PostgresDatabase.open(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres")


@pytest.mark.postgres
async def test_a_table_changed_under_a_cached_statement_is_contention_and_passes_again(postgres_url: str) -> None:
    db = await PostgresDatabase.open(postgres_url, max_size=1)  # one connection: its statement cache is reused
    other = await asyncpg.connect(postgres_url)
    try:
        await db.executescript("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);")
        async with db.transaction() as tx:
            await tx.fetch("SELECT * FROM t")
        await other.execute("ALTER TABLE t ADD COLUMN y INTEGER")  # a migration of a rolling deploy
        with pytest.raises(StorageContention):
            async with db.transaction() as tx:
                await tx.fetch("SELECT * FROM t")
        async with db.transaction() as tx:
            assert len(await tx.fetch("SELECT * FROM t")) == 1
    finally:
        await other.close()
        await db.close()
