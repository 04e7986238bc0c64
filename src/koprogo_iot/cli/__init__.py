"""`koprogo-iot`: run the platform, or one of its parts, from the command line."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from uuid import UUID

from pydantic import ValidationError

from koprogo_iot import __version__, bootstrap, demo, logs
from koprogo_iot.cli import credentials as credentials_cli
from koprogo_iot.cli import ista as ista_cli
from koprogo_iot.cli import options, supervisor
from koprogo_iot.cli import reference as reference_cli
from koprogo_iot.cli import rollups as rollups_cli
from koprogo_iot.cli import sensors as sensors_cli
from koprogo_iot.cli import storage as storage_cli
from koprogo_iot.config import Mode, Settings
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.errors import KoproGoError
from koprogo_iot.domain.tenancy import Organization, Role, User
from koprogo_iot.loadgen.fleet import provision_fleet
from koprogo_iot.loadgen.publisher import run_load
from koprogo_iot.progress import Progress
from koprogo_iot.services.accounts import MIN_PASSWORD_LENGTH, change_instant, hash_password
from koprogo_iot.startup import StartupError

# Benchmarks are an optional extra (`pip install 'koprogo-iot[bench]'`): imported only when `bench` runs.
BENCHMARKS = {
    "ingest": "Mosquitto + PostgreSQL + Redis + ingest workers under a steady load: rate, latency, memory",
    "analytics": "a year of 5-minute readings for 100 sensors in PostgreSQL: query latency",
    "live": "MQTT publish to WebSocket latency and the dashboard's REST calls, idle and under ingest load",
    "faults": "a fault under ingest load (sensor deleted, database refusing, overlapping workers), counted key by key",
    "windows": "the window alert rules over a fleet reporting several times a second: run time, loop waits, memory",
    "retention": "raw readings expired on PostgreSQL and SQLite: partitions dropped, rows deleted, ingestion's wait",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="koprogo-iot", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        options.add_flags(sub, name)
        return sub

    up = command("up", "run everything in one process: MQTT broker, ingestion and API (embedded mode)")
    up.add_argument("--demo", action="store_true", help="provision a demo building and simulate its sensors")

    command("api", "run the HTTP API alone")
    ingest = command("ingest", "run ingest workers against an external MQTT broker")
    ingest.add_argument(
        "--workers",
        type=int,
        default=1,
        choices=range(1, 65),
        metavar="N",
        help="run N worker processes and restart any that exits, with client ids KOPROGO_MQTT_CLIENT_ID-1..N and "
        "probes on KOPROGO_INGEST_METRICS_PORT..+N-1 (default 1: this process is the worker)",
    )
    ingest.add_argument(
        "--release",
        nargs="+",
        metavar="CLIENT_ID",
        help="instead of ingesting: give the share of these workers, gone for good, back to the live ones (resume "
        "each one's session, unsubscribe it, store and acknowledge what it held), then exit",
    )
    command(
        "jobs", "run the background jobs alone: rollups, window alert rules, notifier, daily maintenance, device logins"
    )
    command("migrate", "create or upgrade the database schema")

    load = command("loadgen", "publish realistic native readings at a steady rate (QoS 1) to load ingestion")
    load.add_argument("--rate", type=float, default=1000, help="messages per second in total (default 1000)")
    load.add_argument("--sensors", type=int, default=1000, help="simulated meters, registered if missing")
    load.add_argument("--duration", type=float, default=60, help="seconds (default 60)")

    poller = command("bacnet", "poll Siemens BMS controllers over BACnet/IP and publish native readings (QoS 1)")
    poller.add_argument("--organization", type=UUID, required=True, help="the organization whose points to poll")
    poller.add_argument(
        "--building",
        type=UUID,
        action="append",
        default=[],
        help="only this building's points (repeat for several; default: every building of the organization)",
    )

    bench = commands.add_parser(
        "bench",
        help="benchmarks, run apart from the test suite (needs koprogo-iot[bench])",
        description="; ".join(f"{name}: {what}" for name, what in BENCHMARKS.items())
        + ". `koprogo-iot bench NAME --help` lists a benchmark's options.",
    )
    bench.add_argument("benchmark", choices=sorted(BENCHMARKS), metavar="BENCHMARK", help=", ".join(sorted(BENCHMARKS)))
    bench.add_argument("options", nargs=argparse.REMAINDER, help="the benchmark's own options")

    ista_cli.register(commands)
    sensors_cli.register(commands)
    credentials_cli.register(commands)
    storage_cli.register(commands)
    reference_cli.register(commands)

    verify = command("verify-rollups", "recompute a period's rollups from the raw readings and report differences")
    rollups_cli.add_arguments(verify)

    letters = command("dead-letters", "list the messages ingestion refused, newest first, and counts by reason")
    letters.add_argument("--reason", help="only this reason, e.g. invalid_json, unknown_sensor")
    letters.add_argument("--organization", type=UUID, help="only this organization's (default: all)")
    letters.add_argument("--limit", type=int, default=20)

    admin = command("create-admin", "create an organization and its first superadmin on a new installation")
    admin.add_argument("--organization", required=True, help="the operating organization's name")
    admin.add_argument("--email", required=True)
    admin.add_argument("--password", required=True)
    admin.add_argument("--name", default="Administrator", help="full name")

    reset = command(
        "set-password", "give a user a new password (the operator's way back in for a superadmin who forgot theirs)"
    )
    reset.add_argument("--email", required=True)
    reset.add_argument("--password", required=True)
    return parser


def _banner(running: bootstrap.Running) -> None:
    lines = [
        "",
        "KoproGo IoT is running (embedded mode)",
        f"  Web app       {running.http_url}/",
        f"  API and docs  {running.http_url}/docs",
        f"  MQTT broker   {running.mqtt}",
    ]
    if running.demo is not None:
        org, building = running.demo.organization, running.demo.building
        lines += [
            f"  Demo          {building.name}: {len(running.demo.sensors)} simulated sensors",
            f"  Log in as     {demo.SYNDIC_EMAIL} / {demo.DEMO_PASSWORD}  (syndic)",
            f"                {demo.OWNER_EMAIL} / {demo.DEMO_PASSWORD}  (owner of App. 1.1)",
            f"  Publish to    koprogo/{org.id}/{building.id}/<sensor_id>/readings",
        ]
    if running.device is not None:
        lines.append(f"  MQTT login    {running.device.username} / {running.device.password}")
    lines.append("Press Ctrl-C to stop.")
    print("\n".join(lines), flush=True)


async def _migrate(settings: Settings) -> None:
    storage = await bootstrap.open_storage(
        settings.resolved_database_url, settings.encryption_secret(), apply_migrations=False
    )
    try:
        applied = await storage.maintenance.migrate()
        print(f"applied {len(applied)} migration(s)" if applied else "schema is up to date")
    finally:
        await storage.close()


async def _dead_letters(settings: Settings, args: argparse.Namespace) -> None:
    storage = await bootstrap.open_storage(
        settings.resolved_database_url, settings.encryption_secret(), apply_migrations=False
    )
    try:
        counts = await storage.dead_letters.counts(args.organization)
        letters = await storage.dead_letters.recent(args.organization, args.reason, args.limit)
    finally:
        await storage.close()
    print("by reason: " + (", ".join(f"{r} {n}" for r, n in sorted(counts.items())) or "none"))
    for letter in letters:
        print(f"{letter.received_at:%Y-%m-%d %H:%M:%S}  {letter.reason:<20} {letter.topic}")
        print(f"    {letter.detail}")
        print(f"    payload ({letter.payload_size} bytes): {letter.payload_excerpt[:160]!r}")


LOADGEN_LOGIN = "Générateur de charge"  # the load test organization's device login, renewed at each run


async def _loadgen(settings: Settings, args: argparse.Namespace) -> None:
    storage = await bootstrap.open_storage(settings.resolved_database_url, settings.encryption_secret())
    try:
        fleet = await provision_fleet(storage, args.sensors)
        endpoint = await bootstrap.device_login(settings, storage, fleet.organization.id, LOADGEN_LOGIN)
    finally:
        await storage.close()
    per_sensor = args.rate / args.sensors
    if per_sensor > settings.ingest.rate_per_sensor:
        print(
            f"note: each sensor sends {per_sensor:g} messages/s but ingestion allows "
            f"{settings.ingest.rate_per_sensor:g}/s (KOPROGO_INGEST_RATE_PER_SENSOR): use more --sensors",
            file=sys.stderr,
        )
    tls = settings.mqtt.tls_context() if endpoint.tls else None
    progress = Progress(int(args.rate * args.duration), f"{args.rate:g}/s to {endpoint}")
    try:
        result = await run_load(endpoint, fleet.topics, args.rate, args.duration, on_progress=progress, tls=tls)
    finally:
        progress.done()
    cost = result.cpu_seconds / max(result.published, 1) * 1e6
    print(
        f"published {result.published:,}, acknowledged {result.acknowledged:,} in {result.elapsed:.1f} s "
        f"({result.per_second():,.0f}/s); publisher CPU {cost:.1f} µs/message"
    )


async def _create_admin(settings: Settings, args: argparse.Namespace) -> None:
    if len(args.password) < MIN_PASSWORD_LENGTH:
        raise KoproGoError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    storage = await bootstrap.open_storage(settings.resolved_database_url, settings.encryption_secret())
    try:
        organization = Organization(name=args.organization)
        user = User(organization.id, args.email, args.name, Role.SUPERADMIN, hash_password(args.password))
        await storage.tenancy.add_organization(organization)
        await storage.tenancy.add_user(user)
        print(f"created organization {organization.id} and superadmin {user.email}")
    finally:
        await storage.close()


async def _set_password(settings: Settings, args: argparse.Namespace) -> None:
    """As a manager's reset (`Provisioning.reset_password`): the user's sessions end."""
    if len(args.password) < MIN_PASSWORD_LENGTH:
        raise KoproGoError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    storage = await bootstrap.open_storage(settings.resolved_database_url, settings.encryption_secret())
    try:
        user = await storage.tenancy.find_user_by_email(args.email)
        if user is None:
            raise KoproGoError(f"no user has the email {args.email}")
        changed_at = change_instant(utcnow())
        await storage.tenancy.set_password(user.organization_id, user.id, hash_password(args.password), changed_at)
        print(f"new password set for {user.email} ({user.role.value}); their sessions have ended")
    finally:
        await storage.close()


def _bench(name: str, options: list[str]) -> int:
    try:
        module = importlib.import_module(f"koprogo_iot.bench.{name}")
    except ImportError as exc:
        print(
            f"koprogo-iot bench: error: {exc}; install the benchmarks: pip install 'koprogo-iot[bench]'",
            file=sys.stderr,
        )
        return 2
    status: int = module.main(options)
    return status


def main(argv: list[str] | None = None) -> int:
    """Run a command; every failure it expects (bad configuration, a port taken, a service unreachable) is one
    line on stderr and exit status 2."""
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    if args.command == "bench":
        return _bench(args.benchmark, args.options)
    if args.command == "config":
        return reference_cli.execute(args)
    try:
        # `up` is the embedded mode whatever KOPROGO_MODE says.
        settings = options.settings_from(args, **({"mode": Mode.EMBEDDED} if args.command == "up" else {}))
    except ValidationError as exc:
        return _failed(args.command, options.configuration_error(exc))
    logs.configure(settings.resolved_log_format, "DEBUG" if args.verbose else settings.log_level)
    try:
        return _run(args, settings, argv)
    except ValidationError as exc:
        return _failed(args.command, options.configuration_error(exc))
    except (StartupError, ValueError, OSError, ConnectionError, TimeoutError, KoproGoError) as exc:
        return _failed(args.command, str(exc) or type(exc).__name__)
    except KeyboardInterrupt:
        return 0


def _failed(command: str, message: str) -> int:
    line = " ".join(message.split())  # one line, whatever the message held
    print(f"koprogo-iot {command}: error: {line}", file=sys.stderr)
    return 2


def _run(args: argparse.Namespace, settings: Settings, argv: list[str]) -> int:
    if args.command == "up":
        asyncio.run(bootstrap.run_embedded(settings, with_demo=args.demo, on_ready=_banner))
    elif args.command == "api":
        asyncio.run(bootstrap.run_api(settings))
    elif args.command == "ingest" and args.release:
        for client_id, stored in asyncio.run(bootstrap.release_sessions(settings, args.release)).items():
            print(f"released the session of {client_id}: {stored} messages it held stored and acknowledged")
    elif args.command == "ingest" and args.workers > 1:
        return asyncio.run(supervisor.supervise(argv, settings, args.workers))
    elif args.command == "ingest":
        asyncio.run(bootstrap.run_ingest(settings))
    elif args.command == "jobs":
        asyncio.run(bootstrap.run_jobs(settings))
    elif args.command == "migrate":
        asyncio.run(_migrate(settings))
    elif args.command == "bacnet":
        asyncio.run(bootstrap.run_bacnet(settings, args.organization, args.building))
    elif args.command == "loadgen":
        asyncio.run(_loadgen(settings, args))
    elif args.command == "ista":
        return asyncio.run(ista_cli.execute(settings, args))
    elif args.command in ("sensors", "devices"):
        return asyncio.run(sensors_cli.execute(settings, args))
    elif args.command in ("credentials", "broker"):
        return asyncio.run(credentials_cli.execute(settings, args))
    elif args.command == "storage":
        return asyncio.run(storage_cli.execute(settings, args))
    elif args.command == "verify-rollups":
        return asyncio.run(rollups_cli.execute(settings, args))
    elif args.command == "dead-letters":
        asyncio.run(_dead_letters(settings, args))
    elif args.command == "create-admin":
        asyncio.run(_create_admin(settings, args))
    elif args.command == "set-password":
        asyncio.run(_set_password(settings, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
