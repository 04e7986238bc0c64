"""Backups of either store, taken while the platform runs, and their restore.

SQLite: the library's online backup API copies a consistent snapshot page by page while writers go on (a file copy
could catch a transaction half written). PostgreSQL: `pg_dump --format=custom` (consistent: one snapshot) and
`pg_restore` into an empty database; the PostgreSQL client programs must be installed where this runs.
A restored database is brought up to date by the migrations, and ingests on: a reading delivered again after the
restore is stored once, by the (sensor, timestamp) key.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path

from koprogo_iot.domain.errors import InvalidValue

SQLITE_PREFIX = "sqlite:///"


def _sqlite_path(url: str) -> Path | None:
    return Path(url.removeprefix(SQLITE_PREFIX)) if url.startswith(SQLITE_PREFIX) else None


def _copy_sqlite(source: Path, target: Path) -> None:
    with sqlite3.connect(source) as origin, sqlite3.connect(target) as copy:
        origin.backup(copy, pages=4096)  # in steps: writers are held up for one step at a time, not the whole copy
    copy.close()
    origin.close()


async def backup(url: str, target: Path) -> None:
    """A consistent copy of the database of `url` in the file `target` (which must not exist)."""
    if target.exists():
        raise InvalidValue(f"{target} exists: a backup never overwrites a file")
    if (path := _sqlite_path(url)) is not None:
        if not path.exists():
            raise InvalidValue(f"no database at {path}")
        await asyncio.to_thread(_copy_sqlite, path, target)
        return
    await _run("pg_dump", "--format=custom", "--no-owner", f"--file={target}", f"--dbname={url}")


async def restore(source: Path, url: str) -> None:
    """The backup `source` into the database of `url`, which must be empty (a new file, or a new database)."""
    if not source.is_file():
        raise InvalidValue(f"no backup at {source}")
    if (path := _sqlite_path(url)) is not None:
        if path.exists() and path.stat().st_size > 0:
            raise InvalidValue(f"{path} exists: restore into a new file, then point KOPROGO_DATABASE_URL at it")
        await asyncio.to_thread(_copy_sqlite, source, path)
        return
    await _run("pg_restore", "--no-owner", "--exit-on-error", "--single-transaction", f"--dbname={url}", str(source))


async def _run(program: str, *args: str) -> None:
    if shutil.which(program) is None:
        raise InvalidValue(f"{program} is not installed: it comes with the PostgreSQL client programs")
    process = await asyncio.create_subprocess_exec(
        program, *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await process.communicate()
    if process.returncode != 0:
        # pg_restore into a database that already holds the schema fails here, naming the first existing object
        lines = err.decode(errors="replace").strip().splitlines() or [f"exit status {process.returncode}"]
        raise InvalidValue(f"{program} failed: {lines[0]}")
