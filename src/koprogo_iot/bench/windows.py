"""The window-rules benchmark: a fleet reporting several times a second, and the periodic alert rules judging it.

It creates (or with `--reuse`, keeps) a database next to `--postgres-url`'s, provisions `--sensors` sensors (half
water flow gauges, whose continuous-flow rule reads 6 hours; a quarter temperature gauges with a threshold held
15 minutes, spikes and stuck readings; a quarter water counters, whose hourly rules read a day and a night), loads
`--hours` of readings at `--rate` readings a second per sensor with COPY, then runs the window rules (`WindowRules`)
as the first run of an hour does (every rule) and as the other runs of the hour do (the short ones). It reports
each run's time, the longest the event loop waited meanwhile (a 1 ms ticker, as the API's requests would) and the
most CPU its thread spent between two ticks (the loop held by code), the peak of Python allocations (tracemalloc,
one run of each kind) and the process's peak RSS during the runs, and writes them to
`benchmarks/results/windows-<time>.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import sys
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import asyncpg

from koprogo_iot.alerting.evaluator import WindowRules
from koprogo_iot.bench.machine import RESULTS_DIR, create_database, describe_machine, run_benchmark, sibling_url
from koprogo_iot.bootstrap import open_database, settle_garbage_collector, storage_over
from koprogo_iot.domain.errors import NotFound
from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.domain.sensors import IoTSensor, MeasurementKind, SensorType
from koprogo_iot.domain.tenancy import Building, Organization
from koprogo_iot.progress import Progress
from koprogo_iot.storage.ports import Storage
from koprogo_iot.storage.sql.database import Database
from koprogo_iot.storage.sql.partitions import ensure_partitions
from koprogo_iot.storage.sql.postgres import PgExecutor
from koprogo_iot.storage.sql.readings import READINGS

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
_NAMESPACE = uuid.UUID("5d1c7a86-0f7e-4c1b-9b1e-1e0c5f3a7b42")
_MIB = 1024 * 1024
# The temperature gauges' rules: each reads a short window (a threshold held 15 min, spikes, 10 equal readings).
_TEMPERATURE_RULES = {
    "threshold": {"duration_s": 900},
    "spike": {"enabled": True, "max_rate_per_hour": 100.0},
    "faulty": {"stuck_readings": 10},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="an existing database on the server")
    parser.add_argument("--database", default="koprogo_windows_bench", help="the benchmark's database name")
    parser.add_argument("--reuse", action="store_true", help="keep an already loaded database instead of reloading")
    parser.add_argument("--sensors", type=int, default=200, help="sensors of the fleet (default 200)")
    parser.add_argument("--hours", type=float, default=6.0, help="hours of readings before the runs (default 6)")
    parser.add_argument("--rate", type=float, default=1.0, help="readings a second per sensor (default 1)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each kind (default 3)")
    parser.add_argument("--label", default="", help="recorded with the results, e.g. the code measured")
    parser.add_argument(
        "--results-dir", type=Path, default=RESULTS_DIR, help=f"where results go (default ./{RESULTS_DIR})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="koprogo-iot bench windows", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return execute(parser.parse_args(argv))


def execute(options: argparse.Namespace) -> int:
    """Run with parsed options (`koprogo-iot bench windows` parses them itself)."""
    return run_benchmark("windows", run, options)


async def run(options: argparse.Namespace) -> dict[str, Any]:
    url = sibling_url(options.postgres_url, options.database)
    version = await _database(options, url)
    db = await open_database(url)
    storage = storage_over(db, uuid.uuid4().hex * 2)  # seals nothing here
    # Half past an hour, so that a run a minute later is in the same hour (the short rules only).
    now = datetime.now(UTC).replace(minute=30, second=0, microsecond=0) - timedelta(hours=1)
    start = now - timedelta(hours=options.hours)
    per_sensor = math.floor(options.hours * 3600 * options.rate)
    try:
        await storage.maintenance.migrate()
        sensors = await _provision(storage, options.sensors)
        row = await db.fetchrow("SELECT COUNT(*) AS n, MAX(ts) AS last FROM iot_readings")
        loaded = int(row["n"]) if row else 0
        if loaded < per_sensor * len(sensors):
            await db.execute("DELETE FROM iot_readings")
            await _load(db, sensors, start, now, options.rate, per_sensor)
            await db.executescript("ANALYZE")
        elif row and row["last"] is not None:  # reused: judged as of the end of the readings loaded then
            now = cast(datetime, row["last"]).replace(minute=30, second=0, microsecond=0)
        settle_garbage_collector()  # as the `up`, `api` and `jobs` processes do once started
        runs = {
            "every_rule": await _measure(storage, db, now, options.repeat, hourly=True),
            "short_rules": await _measure(storage, db, now, options.repeat, hourly=False),
        }
    finally:
        await storage.close()
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "label": options.label,
        "machine": describe_machine(version),
        "parameters": {
            "sensors": len(sensors),
            "hours": options.hours,
            "rate_per_s": options.rate,
            "rows": per_sensor * len(sensors),
            "repeat": options.repeat,
        },
        "runs": runs,
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


def _fleet_sensor(org: Organization, building: Building, i: int) -> IoTSensor:
    """Sensor `i`: a flow gauge (i % 4 in 0, 1), a temperature gauge (2) or a water counter (3)."""
    device = f"WIN-{i:04d}"
    common: dict[str, Any] = {
        "id": uuid.uuid5(_NAMESPACE, device),
        "organization_id": org.id,
        "building_id": building.id,
        "sensor_id": device,
        "manufacturer": "bench",
        "model": "bench",
        "location": device,
    }
    if i % 4 in (0, 1):
        return IoTSensor(
            **common,
            sensor_type=SensorType.COLD_WATER,
            kind=MeasurementKind.INSTANTANEOUS,
            unit_of_measure="L/h",
            sampling_interval=60,
            alert_threshold_max=500.0,
        )
    if i % 4 == 2:
        return IoTSensor(
            **common,
            sensor_type=SensorType.TEMPERATURE,
            unit_of_measure="°C",
            sampling_interval=60,
            alert_threshold_max=30.0,
        )
    return IoTSensor(**common, sensor_type=SensorType.COLD_WATER, unit_of_measure="m³", sampling_interval=300)


async def _provision(storage: Storage, count: int) -> list[IoTSensor]:
    org = Organization(id=uuid.uuid5(_NAMESPACE, "organization"), name="Window rules benchmark")
    building = Building(id=uuid.uuid5(_NAMESPACE, "building"), organization_id=org.id, name="Benchmark building")
    try:
        await storage.tenancy.get_organization(org.id)
    except NotFound:
        await storage.tenancy.add_organization(org)
        await storage.tenancy.add_building(building)
        await storage.alert_rules.put_type_defaults(org.id, SensorType.TEMPERATURE, _TEMPERATURE_RULES)
        for i in range(count):
            await storage.sensors.add(_fleet_sensor(org, building, i))
    return await storage.sensors.select(org.id)


def _value(sensor: IoTSensor, i: int, rate: float) -> float:
    """Flow that never stops (20-40 L/h), a temperature swinging around 21 °C, a counter rising 30 L an hour."""
    wave = math.sin(i / rate / 600 + sensor.id.int % 7)
    if sensor.measurement_kind is MeasurementKind.CUMULATIVE:
        return round(100.0 + 0.03 * i / rate / 3600, 6)
    if sensor.sensor_type is SensorType.TEMPERATURE:
        return round(21 + wave + 0.01 * (i % 3), 2)
    return round(30 + 10 * wave, 3)


async def _load(
    db: Database, sensors: list[IoTSensor], start: datetime, end: datetime, rate: float, per_sensor: int
) -> None:
    await ensure_partitions(db, start - timedelta(days=1), end + timedelta(days=1))
    columns = list(READINGS.columns)
    ts_at, value_at, received_at = columns.index("ts"), columns.index("value"), columns.index("received_at")
    total = per_sensor * len(sensors)
    progress = Progress(total, f"loading {total:,} readings", words=("copied", None))
    done, began = 0, time.monotonic()
    copier = cast(PgExecutor, db)  # COPY straight into the table: the fastest way to load
    for sensor in sensors:
        template = list(READINGS.values(IoTReading.measured(sensor, start, 0.0)))
        rows = []
        for i in range(per_sensor):
            row = template.copy()
            row[ts_at] = row[received_at] = start + timedelta(seconds=i / rate)
            row[value_at] = _value(sensor, i, rate)
            rows.append(tuple(row))
        await copier.copy_records("iot_readings", columns, rows)
        done += len(rows)
        progress(done, done)
    progress.done()
    print(f"loaded {done:,} rows in {time.monotonic() - began:.0f} s", file=sys.stderr)


async def _measure(storage: Storage, db: Database, now: datetime, repeat: int, *, hourly: bool) -> dict[str, Any]:
    """`repeat` timed runs (the first one's time left out: it warms caches), then one under tracemalloc."""
    judge = WindowRules(storage, holder="windows-benchmark")

    async def prepare() -> None:
        await db.execute("DELETE FROM iot_job_leases WHERE name = $1", judge.lease_name)
        if not hourly:  # a run completed a minute before, in the same hour: the measured one judges the short rules
            await judge.run_once(now - timedelta(minutes=1))

    async def once() -> int:
        applied = await judge.run_once(now)
        if applied is None:
            raise RuntimeError("another process holds the window-rules lease")
        return applied

    times, lags, busy, applied = [], [], [], 0
    for attempt in range(repeat + 1):
        await prepare()
        ticker = _LoopLag()
        async with ticker:
            began = time.perf_counter()
            applied = await once()
            elapsed = time.perf_counter() - began
        if attempt:
            times.append(elapsed)
            lags.append(ticker.longest)
            busy.append(ticker.busiest)
    await prepare()
    rss_before = _status_kib("VmRSS")
    _reset_peak_rss()
    tracemalloc.start()
    try:
        await once()
        _, traced_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return {
        "times_s": times,
        "mean_s": sum(times) / len(times) if times else None,
        "longest_loop_wait_ms": max(lags) * 1000 if lags else None,
        "longest_loop_busy_ms": max(busy) * 1000 if busy else None,
        "decisions_applied": applied,
        "python_peak_mib": traced_peak / _MIB,
        "rss_before_mib": rss_before / 1024,
        "rss_peak_mib": _status_kib("VmHWM") / 1024,
    }


class _LoopLag:
    """How late a task asking to wake up every millisecond woke up, at worst: what a request would have waited
    (`longest`, wall time: on a loaded machine it includes the time the OS gave the CPU to other processes), and the
    most CPU the loop's thread spent between two of its wake-ups (`busiest`: the loop held by code, whatever the
    machine's load)."""

    def __init__(self) -> None:
        self.longest = 0.0
        self.busiest = 0.0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> None:
        self._task = asyncio.create_task(self._tick())
        await asyncio.sleep(0)  # let it start

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _tick(self) -> None:
        while True:
            began, cpu = time.perf_counter(), time.thread_time()
            await asyncio.sleep(0.001)
            self.longest = max(self.longest, time.perf_counter() - began - 0.001)
            self.busiest = max(self.busiest, time.thread_time() - cpu)


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def _reset_peak_rss() -> None:
    """Start VmHWM (peak RSS) again from the current RSS, so it measures the runs, not the loading before them."""
    # On an older kernel or in a restricted container this fails: the peak then covers the whole process.
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _report(result: dict[str, Any], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    stamp = result["date"].replace(":", "").replace("-", "").split("+")[0]
    path = folder / f"windows-{stamp}Z.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    p = result["parameters"]
    print(
        f"\nKoproGo window-rules benchmark  {result['date']}  {result['label']}  {p['rows']:,} readings: "
        f"{p['sensors']} sensors x {p['hours']} h x {p['rate_per_s']}/s"
    )
    for name, r in result["runs"].items():
        print(
            f"  {name:<12} mean {r['mean_s']:7.3f} s  longest loop wait {r['longest_loop_wait_ms']:8.1f} ms "
            f"(busy {r['longest_loop_busy_ms']:6.1f} ms)  "
            f"python peak {r['python_peak_mib']:7.1f} MiB  "
            f"RSS {r['rss_before_mib']:6.0f} -> {r['rss_peak_mib']:6.0f} MiB  ({r['decisions_applied']} decisions)"
        )
    print(f"  results written to {path}")
