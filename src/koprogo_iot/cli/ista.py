"""`koprogo-iot ista import FILE` and `koprogo-iot ista report`: the ISTA cross-check from the command line."""

from __future__ import annotations

import argparse
import uuid
from datetime import date
from pathlib import Path
from uuid import UUID

from koprogo_iot import bootstrap
from koprogo_iot.config import Settings
from koprogo_iot.domain.access import Principal
from koprogo_iot.domain.tenancy import Role
from koprogo_iot.ista.report import DEFAULT_THRESHOLD_PERCENT, IstaReport, PeriodComparison
from koprogo_iot.services.ista import ImportResult, IstaService

# The command line is the operator's tool: it acts as a superadmin of the organization it names, like
# `create-admin` and `dead-letters` do. This id marks the actions as the command line's.
OPERATOR_ID = uuid.UUID(int=0)


def operator(organization_id: UUID) -> Principal:
    """The command line acting in `organization_id`."""
    return Principal(OPERATOR_ID, organization_id, Role.SUPERADMIN, frozenset(), frozenset())


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `ista import` and `ista report` to the `koprogo-iot` subcommands (an argparse subparsers action)."""
    ista = commands.add_parser("ista", help="import ISTA readings and cross-check them against the IoT meters")
    actions = ista.add_subparsers(dest="ista_command", required=True, metavar="ACTION")
    imported = actions.add_parser("import", help="import an ISTA CSV file (layout: docs/ista-import.md)")
    imported.add_argument("file", type=Path)
    report = actions.add_parser("report", help="ISTA against IoT consumption, per meter and period")
    report.add_argument("--start", type=date.fromisoformat, help="periods ending after this date (YYYY-MM-DD)")
    report.add_argument("--end", type=date.fromisoformat, help="periods starting before this date (YYYY-MM-DD)")
    report.add_argument(
        "--threshold", type=float, default=DEFAULT_THRESHOLD_PERCENT, help="flag deviations beyond this percentage"
    )
    report.add_argument("--building", type=UUID, help="only this building's meters")
    for action in (imported, report):
        action.add_argument("--organization", type=UUID, required=True, help="the organization's id")
        action.add_argument("--data-dir", help="where embedded data lives (KOPROGO_DATA_DIR, default ./data)")
        action.add_argument("--database-url", help="postgresql://... or sqlite:///path (KOPROGO_DATABASE_URL)")


async def execute(settings: Settings, args: argparse.Namespace) -> int:
    """Run the `ista` action; the exit status is 1 when an import refused some rows."""
    data = args.file.read_bytes() if args.ista_command == "import" else b""
    storage = await bootstrap.open_storage(settings.resolved_database_url, settings.encryption_secret())
    try:
        await storage.tenancy.get_organization(args.organization)
        principal = operator(args.organization)
        ista = IstaService(storage.ista, storage.tenancy, storage.sensors, storage.source)
        if args.ista_command == "import":
            result = await ista.import_csv(principal, data)
            print(format_import(result))
            return 1 if result.errors else 0
        print(format_report(await ista.report(principal, args.start, args.end, args.threshold, args.building)))
        return 0
    finally:
        await storage.close()


def format_import(result: ImportResult) -> str:
    lines = [f"imported {result.imported}, skipped {result.skipped_duplicates} already stored"]
    if result.errors:
        lines.append(f"{len(result.errors)} row(s) refused:")
        lines += [f"  line {error.line}: {error.message}" for error in result.errors]
    return "\n".join(lines)


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:,.3f}"


def _period_line(period: PeriodComparison) -> str:
    deviation = "-" if period.deviation_percent is None else f"{period.deviation_percent:+.1f} %"
    flag = "  <-- FLAGGED" if period.flagged else ""
    ista, iot = _figure(period.ista_consumption), _figure(period.iot_consumption)
    return (
        f"  {period.start} .. {period.end}  {ista:>12}  {iot:>12}  {period.unit_of_measure:<5} {deviation:>9}"
        f"  {period.status.value}{flag}"
    )


def format_report(report: IstaReport) -> str:
    """A plain-text table: one block per meter, one line per period, estimated readings and notes below."""
    span = f"{report.start or 'first reading'} to {report.end or 'last reading'}"
    lines = [
        f"ISTA cross-check, {span}, threshold {report.threshold_percent:g} %: {report.flagged} period(s) flagged",
        f"  {'period':<24}  {'ISTA':>12}  {'IoT':>12}  {'unit':<5} {'deviation':>9}  status",
    ]
    for meter in report.meters:
        place = meter.building_name + (f" / {meter.unit_name}" if meter.unit_name else " (common)")
        sensor = f"sensor {meter.meter.sensor_id}" if meter.meter.sensor_id else "no IoT sensor"
        lines.append(f"meter {meter.meter.meter_number}  {meter.meter.meter_type.value}  {place}  {sensor}")
        if not meter.periods:
            lines.append("  no period between two actual readings")
        for period in meter.periods:
            lines.append(_period_line(period))
            if period.note:
                lines.append(f"      {period.note}")
        lines += [
            f"  estimated {r.reading_date}: {r.value:g} {r.unit_of_measure} (left out of the check)"
            for r in meter.estimated
        ]
    return "\n".join(lines)
