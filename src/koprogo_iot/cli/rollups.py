"""`koprogo-iot verify-rollups`: recompute a period's rollups from the raw readings and report every stored row
that differs (for operators after an upgrade or a crash); `--repair` rebuilds the sensors found wrong."""

from __future__ import annotations

import argparse
from datetime import datetime
from uuid import UUID

from koprogo_iot import bootstrap
from koprogo_iot.config import Settings
from koprogo_iot.domain.clock import require_aware
from koprogo_iot.domain.errors import InvalidValue
from koprogo_iot.domain.rollups import Verification
from koprogo_iot.progress import Progress

SHOWN = 20  # differences listed one by one; the summary counts them all


def instant(text: str) -> datetime:
    """An ISO 8601 time with its zone (a bare time would be read in whatever zone the operator's machine has)."""
    try:
        return require_aware(datetime.fromisoformat(text), "time")
    except InvalidValue as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--organization", type=UUID, help="only this organization's sensors (default: all)")
    parser.add_argument("--start", type=instant, help="e.g. 2026-01-01T00:00:00+01:00; default: the first reading")
    parser.add_argument("--end", type=instant, help="excluded; default: after the last reading")
    parser.add_argument("--repair", action="store_true", help="rebuild the rollups of the sensors found wrong")


async def execute(settings: Settings, args: argparse.Namespace) -> int:
    """Exit status 0 when the rollups are right (or were repaired), 1 when differences remain."""
    storage = await bootstrap.open_storage(settings.resolved_database_url, settings.encryption_secret())
    bar: Progress | None = None

    def on_sensor(done: int, total: int) -> None:
        nonlocal bar
        bar = bar or Progress(total, "verifying rollups", words=("sensors", None))
        bar(done, 0)

    try:
        found = await storage.rollups.verify(args.organization, args.start, args.end, on_sensor)
        if bar is not None:
            bar.done()
        print(report(found))
        if not found.differences:
            return 0
        if args.repair:
            wrong = sorted({sensor_id for sensor_id, _ in found.differences})
            await storage.rollups.rebuild(args.organization, wrong)
            again = await storage.rollups.verify(args.organization, args.start, args.end)
            print(f"rebuilt the rollups of {len(wrong)} sensor(s): {len(again.differences)} difference(s) left")
            return 0 if not again.differences else 1
        return 1
    finally:
        await storage.close()


def report(found: Verification) -> str:
    period = f"{_bound(found.start, 'the first reading')} to {_bound(found.end, 'the last reading')}"
    lines = [
        f"{d.table.value} {sensor_id} {d.bucket.isoformat()} {d.field}: stored {d.stored!r}, expected {d.expected!r}"
        for sensor_id, d in found.differences[:SHOWN]
    ]
    if len(found.differences) > SHOWN:
        lines.append(f"... and {len(found.differences) - SHOWN} more")
    lines.append(
        f"{found.sensors} sensor(s), {found.readings:,} readings, {found.rows:,} rollup rows from {period}: "
        f"{len(found.differences)} difference(s)"
    )
    return "\n".join(lines)


def _bound(moment: datetime | None, otherwise: str) -> str:
    return otherwise if moment is None else moment.isoformat()
