"""The analytics benchmark: a year of 5-minute readings for 100 sensors (~10 M rows) in PostgreSQL, then queried.

It creates (or with `--reuse`, keeps) a database next to `--postgres-url`'s, provisions a building of 25 units with
four sensors each (cold and hot water, electricity counters; a temperature gauge), loads the readings with COPY,
builds the rollups, and times through the API (in-process, no network): one sensor's year at hourly resolution, a
building's monthly consumption over the year, and a day of raw readings of one sensor; then one run of the window
alert rules over the building. It prints p50/p95 and writes them to `benchmarks/results/analytics-<time>.json`.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import asyncpg
import httpx

from koprogo_iot.alerting.evaluator import WindowRules
from koprogo_iot.api.app import create_app
from koprogo_iot.bench.machine import RESULTS_DIR, create_database, describe_machine, run_benchmark, sibling_url
from koprogo_iot.bootstrap import build_services, open_database, settle_garbage_collector, storage_over
from koprogo_iot.domain.errors import NotFound
from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.domain.sensors import IoTSensor, MeasurementKind, SensorType
from koprogo_iot.domain.tenancy import Building, Organization, Role, Unit, User
from koprogo_iot.progress import Progress
from koprogo_iot.services.accounts import hash_password
from koprogo_iot.storage.ports import Storage
from koprogo_iot.storage.sql.database import Database
from koprogo_iot.storage.sql.partitions import ensure_partitions
from koprogo_iot.storage.sql.postgres import PgExecutor
from koprogo_iot.storage.sql.readings import READINGS

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET_P95 = 0.2  # seconds: the acceptance for the year-hourly and building-monthly queries
_NAMESPACE = uuid.UUID("0b7a5d52-2f0c-4c55-9a43-7d1f3f0f9d21")
EMAIL, PASSWORD = "syndic@analytics.bench", "analytics-bench"
_KINDS = (
    (SensorType.COLD_WATER, "m³", 0.012),  # per hour at the day's peak
    (SensorType.HOT_WATER, "m³", 0.006),
    (SensorType.ELECTRICITY, "kWh", 0.6),
    (SensorType.TEMPERATURE, "°C", 0.0),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="an existing database on the server")
    parser.add_argument("--database", default="koprogo_analytics_bench", help="the benchmark's database name")
    parser.add_argument("--reuse", action="store_true", help="keep an already loaded database instead of reloading")
    parser.add_argument("--units", type=int, default=25, help="units of the building, four sensors each")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--interval", type=int, default=300, help="seconds between readings (default 300)")
    parser.add_argument("--repeat", type=int, default=30, help="timed runs of each query (default 30)")
    parser.add_argument(
        "--results-dir", type=Path, default=RESULTS_DIR, help=f"where results go (default ./{RESULTS_DIR})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="koprogo-iot bench analytics", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return execute(parser.parse_args(argv))


def execute(options: argparse.Namespace) -> int:
    """Run with parsed options (`koprogo-iot bench analytics` parses them itself)."""
    return run_benchmark("analytics", run, options)


async def run(options: argparse.Namespace) -> dict[str, Any]:
    url = sibling_url(options.postgres_url, options.database)
    version = await _database(options, url)
    db = await open_database(url)
    storage = storage_over(db, uuid.uuid4().hex * 2)  # seals nothing here
    try:
        await storage.maintenance.migrate()
        end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        start = end - timedelta(days=options.days)
        org, building, sensors = await _provision(storage, options.units)
        expected = len(sensors) * options.days * 86_400 // options.interval
        row = await db.fetchrow("SELECT COUNT(*) AS n FROM iot_readings")
        loaded = int(row["n"]) if row else 0
        if loaded < expected:
            await _load(db, sensors, start, end, options.interval, expected)
        if loaded < expected or not await db.fetchrow("SELECT 1 FROM iot_rollups_monthly LIMIT 1"):
            await _prepare_queries(storage, db)  # also when reusing rows loaded before a new rollup table
        timings = await _time_queries(storage, building, sensors, start, end, options.repeat)
        timings["window_rules_hourly_run"] = await _time_window_rules(storage, db, end, options.repeat)
    finally:
        await storage.close()
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": describe_machine(version),
        "parameters": {
            "sensors": len(sensors),
            "days": options.days,
            "interval_s": options.interval,
            "rows": expected,
            "repeat": options.repeat,
        },
        "queries": timings,
        "acceptance": {name: t["p95_s"] < TARGET_P95 for name, t in timings.items() if t["target"]},
    }
    _report(result, options.results_dir)
    return result


async def _database(options: argparse.Namespace, url: str) -> str:
    admin = await asyncpg.connect(options.postgres_url)
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", options.database)
        if exists and not options.reuse:
            await admin.execute(f'DROP DATABASE "{options.database}" WITH (FORCE)')
        version = str(await admin.fetchval("SHOW server_version"))
    finally:
        await admin.close()
    if not exists or not options.reuse:
        await create_database(options.postgres_url, options.database)
    return version


async def _provision(storage: Storage, units: int) -> tuple[Organization, Building, list[IoTSensor]]:
    org = Organization(id=uuid.uuid5(_NAMESPACE, "organization"), name="Analytics benchmark")
    building = Building(id=uuid.uuid5(_NAMESPACE, "building"), organization_id=org.id, name="Benchmark building")
    try:
        await storage.tenancy.get_organization(org.id)
    except NotFound:
        await storage.tenancy.add_organization(org)
        await storage.tenancy.add_building(building)
        await storage.tenancy.add_user(User(org.id, EMAIL, "Bench Syndic", Role.SYNDIC, hash_password(PASSWORD)))
        for u in range(units):
            unit = Unit(
                id=uuid.uuid5(_NAMESPACE, f"unit {u}"),
                organization_id=org.id,
                building_id=building.id,
                name=f"App. {u:02d}",
                floor=u // 4,
            )
            await storage.tenancy.add_unit(unit)
            for kind, uom, _ in _KINDS:
                device = f"BENCH-{u:02d}-{kind.value}"
                await storage.sensors.add(
                    IoTSensor(
                        id=uuid.uuid5(_NAMESPACE, device),
                        organization_id=org.id,
                        building_id=building.id,
                        unit_id=unit.id,
                        sensor_id=device,
                        sensor_type=kind,
                        manufacturer="bench",
                        model="bench",
                        location=unit.name,
                        unit_of_measure=uom,
                    )
                )
    return org, building, await storage.sensors.select(org.id)


def _values(sensor: IoTSensor, start: datetime, count: int, interval: int) -> list[tuple[datetime, float]]:
    """Plausible values: consumption follows the hour of the day; temperatures swing a little."""
    peak = next(rate for kind, _, rate in _KINDS if kind is sensor.sensor_type)
    seed = sensor.id.int % 1000 / 1000
    index, out = 1000.0 * (1 + seed), []
    for i in range(count):
        ts = start + timedelta(seconds=i * interval)
        hour = (ts.hour + ts.minute / 60) / 24
        if sensor.measurement_kind is MeasurementKind.CUMULATIVE:
            index += peak * interval / 3600 * (0.2 + max(0.0, math.sin((hour - 0.25) * 2 * math.pi)))
            out.append((ts, round(index, 4)))
        else:
            out.append((ts, round(20 + 2 * math.sin((hour + seed) * 2 * math.pi), 2)))
    return out


async def _load(
    db: Database, sensors: list[IoTSensor], start: datetime, end: datetime, interval: int, total: int
) -> None:
    await ensure_partitions(db, start, end)
    columns = list(READINGS.columns)
    per_sensor = int((end - start).total_seconds()) // interval
    progress = Progress(total, f"loading {total:,} readings", words=("copied", None))
    done, began = 0, time.monotonic()
    copier = cast(PgExecutor, db)  # COPY straight into the table: the fastest way to load
    for sensor in sensors:
        rows = [
            READINGS.values(
                IoTReading(
                    organization_id=sensor.organization_id,
                    sensor_id=sensor.id,
                    building_id=sensor.building_id,
                    unit_id=sensor.unit_id,
                    timestamp=ts,
                    value=value,
                    unit_of_measure=sensor.unit_of_measure,
                    battery_level=80.0,
                    signal_strength=-70,
                    received_at=ts,
                )
            )
            for ts, value in _values(sensor, start, per_sensor, interval)
        ]
        await copier.copy_records("iot_readings", columns, rows)
        done += len(rows)
        progress(done, done)  # COPY commits each sensor's rows at once
    progress.done()
    print(f"loaded {done:,} rows in {time.monotonic() - began:.0f} s", file=sys.stderr)


async def _prepare_queries(storage: Storage, db: Database) -> None:
    began = time.monotonic()
    print(
        "building the hourly, daily and monthly rollups from the raw readings (a few minutes for 10 M rows)...",
        file=sys.stderr,
    )
    await storage.rollups.rebuild()
    await db.executescript("ANALYZE")
    print(f"rollups rebuilt and statistics updated in {time.monotonic() - began:.0f} s", file=sys.stderr)


async def _time_queries(
    storage: Storage, building: Building, sensors: list[IoTSensor], start: datetime, end: datetime, repeat: int
) -> dict[str, dict[str, Any]]:
    services = build_services(storage, "analytics-benchmark-secret-" + "x" * 32)
    transport = httpx.ASGITransport(app=create_app(services))
    settle_garbage_collector()  # as the `api` and `up` processes do once started
    async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=60) as client:
        login = await client.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        counter = next(s for s in sensors if s.measurement_kind is MeasurementKind.CUMULATIVE)
        gauge = next(s for s in sensors if s.measurement_kind is MeasurementKind.INSTANTANEOUS)
        day = end - timedelta(days=1)
        span = {"start": start.isoformat(), "end": end.isoformat()}

        def get(path: str, params: dict[str, Any]) -> Callable[[], Awaitable[httpx.Response]]:
            return lambda: client.get(path, params=params, headers=headers)

        queries = {
            "counter_year_hourly": (
                get(f"/api/v1/iot/sensors/{counter.id}/time-series", span | {"aggregation_interval": 3600}),
                True,
            ),
            "gauge_year_hourly": (
                get(f"/api/v1/iot/sensors/{gauge.id}/time-series", span | {"aggregation_interval": 3600}),
                True,
            ),
            "building_monthly_year": (
                get(
                    "/api/v1/iot/consumption",
                    span | {"group_by": "building", "period": "month", "building_id": str(building.id)},
                ),
                True,
            ),
            "raw_day_one_sensor": (
                get(
                    f"/api/v1/iot/sensors/{counter.id}/readings",
                    {"start": day.isoformat(), "end": end.isoformat(), "limit": 1000},
                ),
                False,
            ),
        }
        return {name: await _timed(call, repeat) | {"target": target} for name, (call, target) in queries.items()}


async def _time_window_rules(storage: Storage, db: Database, end: datetime, repeat: int) -> dict[str, Any]:
    """One run of the window alert rules over the building with the hourly rules (night leak, a day of counter
    steps) included, as the first run of each hour does: the lease is reset before each run."""
    judge = WindowRules(storage, holder="analytics-benchmark")
    times = []
    for _ in range(repeat + 1):
        await db.execute("DELETE FROM iot_job_leases WHERE name = $1", judge.lease_name)
        began = time.perf_counter()
        await judge.run_once(end - timedelta(minutes=1))
        times.append(time.perf_counter() - began)
    return _percentiles(times[1:]) | {"target": False}  # the first run warms caches


async def _timed(call: Callable[[], Awaitable[httpx.Response]], repeat: int) -> dict[str, Any]:
    first = await call()  # warms caches; its status tells whether the query works at all
    if first.status_code != 200:
        raise RuntimeError(f"{first.request.url} answered {first.status_code}: {first.text[:300]}")
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        response = await call()
        times.append(time.perf_counter() - began)
        response.raise_for_status()
    return _percentiles(times) | {"response_bytes": len(first.content)}


def _percentiles(times: list[float]) -> dict[str, Any]:
    times = sorted(times)
    return {
        "p50_s": statistics.median(times),
        "p95_s": times[min(len(times) - 1, math.ceil(0.95 * len(times)) - 1)],
        "max_s": times[-1],
    }


def _report(result: dict[str, Any], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    stamp = result["date"].replace(":", "").replace("-", "").split("+")[0]
    path = folder / f"analytics-{stamp}Z.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    p = result["parameters"]
    print(
        f"\nKoproGo analytics benchmark  {result['date']}  {p['rows']:,} readings, {p['sensors']} sensors, "
        f"{p['days']} days every {p['interval_s']} s"
    )
    for name, t in result["queries"].items():
        verdict = ("PASS" if t["p95_s"] < TARGET_P95 else "FAIL") if t["target"] else "    "
        print(f"  {name:<24} p50 {t['p50_s'] * 1000:7.1f} ms  p95 {t['p95_s'] * 1000:7.1f} ms  {verdict}")
    print(f"  results written to {path}")
