"""`koprogo-iot storage`: what the database holds and how fast it grows; backups and their restore."""

from __future__ import annotations

import argparse
from pathlib import Path

from koprogo_iot import bootstrap
from koprogo_iot.config import Settings
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.errors import InvalidValue
from koprogo_iot.storage.ports import StorageReport
from koprogo_iot.storage.sql import backup


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    storage = commands.add_parser("storage", help="the database: size report, backup, restore")
    actions = storage.add_subparsers(dest="storage_command", required=True, metavar="ACTION")
    report = actions.add_parser("report", help="rows and bytes per table and partition, and the raw readings' growth")
    taken = actions.add_parser("backup", help="a consistent copy while the platform runs (SQLite file, or pg_dump)")
    taken.add_argument("file", type=Path, help="where to write it (never overwritten)")
    back = actions.add_parser("restore", help="a backup into an empty database, then its migrations")
    back.add_argument("file", type=Path, help="a file `storage backup` wrote")
    for action in (report, taken, back):
        action.add_argument("--data-dir", help="where embedded data lives (KOPROGO_DATA_DIR, default ./data)")
        action.add_argument("--database-url", help="postgresql://... or sqlite:///path (KOPROGO_DATABASE_URL)")


def _size(count: int | None) -> str:
    if count is None:
        return "?"
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:,.1f} TiB"


def render(report: StorageReport) -> str:
    lines = [f"{'table':<34} {'rows':>14} {'size':>12}"]
    for table in report.tables:
        name = table.name if table.part_of is None else f"{table.name} (of {table.part_of})"
        lines.append(f"{name:<34} {table.rows:>14,} {_size(table.bytes):>12}")
    rows, size = report.reading_bytes
    oldest = "none" if report.oldest_reading is None else f"{report.oldest_reading:%Y-%m-%d %H:%M} UTC"
    lines += [
        "",
        f"raw readings: {rows:,} rows, {_size(size)}; the oldest from {oldest}",
        f"stored in the last 24 h: {report.readings_last_day:,} readings",
        "projected growth of raw readings: "
        + (
            "unknown (no readings yet)"
            if (growth := report.projected_bytes_per_month) is None
            else f"{_size(growth)} per 30 days at that rate"
        ),
    ]
    return "\n".join(lines)


async def execute(settings: Settings, args: argparse.Namespace) -> int:
    url = settings.resolved_database_url
    if args.storage_command == "backup":
        await backup.backup(url, args.file)
        print(f"backup written to {args.file}")
        return 0
    if args.storage_command == "restore":
        await backup.restore(args.file, url)
    storage = await bootstrap.open_storage(url, settings.encryption_secret(), apply_migrations=False)
    try:
        if args.storage_command == "restore":
            applied = await storage.maintenance.migrate()
            print(f"restored {args.file}; {len(applied)} migration(s) applied since the backup")
        elif pending := await storage.maintenance.pending_migrations():
            raise InvalidValue(f"the database is not up to date ({len(pending)} migrations pending): run migrate first")
        else:
            print(render(await storage.maintenance.report(utcnow())))
    finally:
        await storage.close()
    return 0
