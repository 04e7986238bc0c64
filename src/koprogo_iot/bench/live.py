"""The live benchmark: how fast a reading reaches a dashboard, and how fast the dashboard's calls answer, idle and
while ingestion runs at full rate.

It starts its own Mosquitto, Redis, W ingest workers and one API process (production mode, PostgreSQL), provisions a
fleet for the load, probe sensors a WebSocket client watches, and one sensor with a year of hourly history. Probes
publish a reading each second each (QoS 1, a device login); the latency is from the publish call to the reading in
the WebSocket, matched by sensor and timestamp, and to the live bus (Redis, read beside the API: the part of it that
is ingestion's). Meanwhile a client calls the dashboard's REST endpoints one after another (`--rest-pause` between
two rounds; none with `--no-rest`, the live path alone). First `--idle` seconds without load, then `--duration`
seconds with the load generator at `--rate`. Results go to `benchmarks/results/` (JSON, a row appended to `live.md`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import paho.mqtt.client as mqtt
import websockets
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client.parser import text_string_to_metric_families

from koprogo_iot.bench.machine import (
    RESULTS_DIR,
    create_database,
    describe_machine,
    drop_database,
    run_benchmark,
    sibling_url,
)
from koprogo_iot.bench.services import IngestWorker, MosquittoServer, RedisServer, Service, wait_for_port
from koprogo_iot.bootstrap import open_storage
from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.domain.sensors import IoTSensor, SensorType
from koprogo_iot.domain.tenancy import Role, User
from koprogo_iot.live.redis_streams import RedisStreamBus
from koprogo_iot.loadgen.fleet import Fleet, provision_fleet
from koprogo_iot.loadgen.publisher import LoadResult, run_load
from koprogo_iot.mqtt_url import MqttEndpoint
from koprogo_iot.progress import Progress
from koprogo_iot.services.accounts import hash_password
from koprogo_iot.storage.ports import Ingested, Storage

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PASSWORD = "bench-password"
EMAIL = "syndic@bench.koprogo.be"
# The targets.
TARGET_WS_P99_LOADED = 0.5
TARGET_WS_P99_IDLE = 0.1
TARGET_REST_P95 = 0.3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rate", type=float, default=10_000, help="load in messages per second (default 10000)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds under load (default 60)")
    parser.add_argument("--idle", type=float, default=20.0, help="seconds measured before the load (default 20)")
    parser.add_argument("--sensors", type=int, default=2000, help="simulated meters of the load (default 2000)")
    parser.add_argument("--workers", type=int, default=2, help="ingest worker processes (default 2)")
    parser.add_argument("--probes", type=int, default=20, help="sensors the WebSocket client watches (default 20)")
    parser.add_argument("--history-days", type=int, default=365, help="hourly history of one sensor (default 365)")
    parser.add_argument(
        "--rest-pause",
        type=float,
        default=0.0,
        help="seconds between two rounds of the dashboard's REST calls (default 0: back to back, the worst case; "
        "a dashboard makes them once when opened, then follows the WebSocket)",
    )
    parser.add_argument(
        "--no-rest",
        action="store_true",
        help="the live path alone: no REST calls during the phases (the issue's live-latency benchmark; the "
        "default run measures the dashboard's calls under load at the same time)",
    )
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="admin database of the server")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help=f"default ./{RESULTS_DIR}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="koprogo-iot bench live", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run_benchmark("live", run, parser.parse_args(argv))


class ApiServer(Service):
    """`koprogo-iot api` in its own process."""

    name = "api"

    def __init__(self, env: dict[str, str], log: Path) -> None:
        super().__init__()
        self.env = env | {"KOPROGO_HTTP_PORT": str(self.port)}
        self.log = log

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log, "ab") as output:
            command = [sys.executable, "-m", "koprogo_iot.cli", "api"]
            self.process = subprocess.Popen(command, env=os.environ | self.env, stdout=output, stderr=output)
        wait_for_port(self.port, self.process, self.name, timeout=60)


# --- set-up


@dataclass(frozen=True, slots=True)
class _Setup:
    fleet: Fleet
    probes: list[IoTSensor]
    history: IoTSensor  # hourly readings over --history-days


def _sensor(fleet: Fleet, device: str, sensor_type: SensorType, unit: str, kind: str) -> IoTSensor:
    return IoTSensor(
        organization_id=fleet.organization.id,
        building_id=fleet.building.id,
        sensor_id=device,
        sensor_type=sensor_type,
        kind=kind,  # type: ignore[arg-type]
        manufacturer="KoproGo",
        model="bench",
        location=device,
        unit_of_measure=unit,
        sampling_interval=60,
    )


async def _provision(storage: Storage, options: argparse.Namespace) -> _Setup:
    fleet = await provision_fleet(storage, options.sensors)
    user = User(fleet.organization.id, EMAIL, "Bench syndic", Role.SYNDIC, hash_password(PASSWORD))
    await storage.tenancy.add_user(user)
    probes = [
        _sensor(fleet, f"PROBE-{i:03d}", SensorType.TEMPERATURE, "°C", "instantaneous") for i in range(options.probes)
    ]
    history = _sensor(fleet, "HISTORY-1", SensorType.COLD_WATER, "m³", "cumulative")
    for sensor in (*probes, history):
        await storage.sensors.add(sensor)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    hours = [now - timedelta(hours=h) for h in range(options.history_days * 24, 0, -1)]
    year = [Ingested(IoTReading.measured(history, t, 1000 + 0.02 * i)) for i, t in enumerate(hours)]
    for start in range(0, len(year), 2000):
        await storage.readings.ingest(year[start : start + 2000])
    return _Setup(fleet, probes, history)


# --- measuring


@dataclass
class _Probe:
    """Readings of the probe sensors: published when, seen on the WebSocket when."""

    sent: dict[tuple[str, datetime], float] = field(default_factory=dict)
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (sent at, seconds to the WebSocket)
    # Seconds from the publish to the live bus (stored, then on Redis): the part of a latency that is ingestion's.
    bus_latencies: list[tuple[float, float]] = field(default_factory=list)  # (sent at, seconds to the bus)

    def seen(self, sensor_id: str, timestamp: datetime) -> None:
        sent = self.sent.pop((sensor_id, timestamp), None)
        if sent is not None:
            self.latencies.append((sent, time.monotonic() - sent))

    def on_the_bus(self, sensor_id: str, timestamp: datetime) -> None:
        sent = self.sent.get((sensor_id, timestamp))
        if sent is not None:
            self.bus_latencies.append((sent, time.monotonic() - sent))


async def _watch(url: str, token: str, probes: list[IoTSensor], probe: _Probe, ready: asyncio.Event) -> None:
    stream = url.replace("http://", "ws://", 1) + f"/api/v1/iot/stream?access_token={token}"
    async with websockets.connect(stream, max_size=None) as ws:
        await ws.send(json.dumps({"action": "subscribe", "sensor_ids": [str(s.id) for s in probes]}))
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == "subscribed":
                ready.set()
            elif message["type"] == "readings":
                for r in message["readings"]:
                    probe.seen(r["sensor_id"], datetime.fromisoformat(r["timestamp"]))


async def _tap(redis_url: str, organization_id: uuid.UUID, probes: list[IoTSensor], probe: _Probe) -> None:
    """Read the organization's live stream beside the API: when each probe reading is on the bus."""
    watched = {s.id for s in probes}
    bus = RedisStreamBus(redis_url)
    try:
        async for readings in bus.subscribe(organization_id):
            for r in readings:
                if r.sensor_id in watched:
                    probe.on_the_bus(str(r.sensor_id), r.timestamp)
    finally:
        await bus.close()


async def _publish_probes(device: MqttEndpoint, probes: list[IoTSensor], probe: _Probe) -> None:
    """Each probe sensor publishes once a second, spread over the second."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-probe-{uuid.uuid4().hex[:8]}")
    client.username_pw_set(device.username, device.password)
    client.connect(device.host, device.port)
    client.loop_start()
    try:
        step = 1.0 / len(probes)
        tick = time.monotonic()
        while True:
            for sensor in probes:
                at = datetime.now(UTC)
                probe.sent[(str(sensor.id), at)] = time.monotonic()
                body = json.dumps({"timestamp": at.isoformat(), "value": round(20 + (at.microsecond % 500) / 100, 2)})
                client.publish(sensor.mqtt_topic, body, qos=1)
                tick += step
                await asyncio.sleep(max(0.0, tick - time.monotonic()))
    finally:
        client.disconnect()
        client.loop_stop()


@dataclass
class _Rest:
    """The dashboard's calls, in turn, each timed."""

    timings: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)


async def _call_dashboard(
    client: httpx.AsyncClient, setup: _Setup, rest: _Rest, rounds: int | None = None, pause: float = 0.0
) -> None:
    """The calls in turn, `rounds` times (None: until cancelled), `pause` seconds between two rounds."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    building = str(setup.fleet.building.id)
    calls: dict[str, tuple[str, dict[str, str]]] = {
        "sensor list": ("/api/v1/iot/sensors", {"building_id": building}),
        "building's day": (
            "/api/v1/iot/consumption",
            {
                "group_by": "sensor",
                "period": "hour",
                "start": today.isoformat(),
                "building_id": str(setup.fleet.building.id),
            },
        ),
        "sensor's year": (
            f"/api/v1/iot/sensors/{setup.history.id}/time-series",
            {"start": (today - timedelta(days=365)).isoformat(), "aggregation_interval": "86400"},
        ),
    }
    done = 0
    while rounds is None or done < rounds:
        done += 1
        for name, (path, params) in calls.items():
            started = time.monotonic()
            response = await client.get(path, params=params)
            elapsed = time.monotonic() - started
            if response.status_code == 200:
                rest.timings.setdefault(name, []).append(elapsed)
            else:
                rest.errors[name] = rest.errors.get(name, 0) + 1
        if pause:
            await asyncio.sleep(pause)


@contextlib.asynccontextmanager
async def _running(*jobs: Awaitable[None]) -> AsyncIterator[None]:
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                raise result


def _percentiles(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"count": 0, "p50": None, "p95": None, "p99": None, "max": None}
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]

    return {"count": len(values), "p50": at(0.5), "p95": at(0.95), "p99": at(0.99), "max": ordered[-1]}


@dataclass(frozen=True)
class _Scrape:
    """What the API's `/metrics` says: its event-loop lag histogram (`health.LOOP_LAG`), cumulative counts by
    bucket bound, and what keeping the rollups current cost it (`storage.sql.rollups`)."""

    lag: dict[str, float]
    refresh_seconds: float
    refresh_readings: dict[str, float]  # by path: folded, recomputed


async def _scrape(client: httpx.AsyncClient) -> _Scrape:
    families = list(text_string_to_metric_families((await client.get("/metrics")).text))
    samples = [(family.name, sample) for family in families for sample in family.samples]
    return _Scrape(
        lag={
            sample.labels["le"]: sample.value
            for name, sample in samples
            if name == "koprogo_event_loop_lag_seconds" and sample.name.endswith("_bucket")
        },
        refresh_seconds=sum(
            s.value for name, s in samples if name == "koprogo_rollup_refresh_seconds" and s.name.endswith("_total")
        ),
        refresh_readings={
            s.labels["path"]: s.value
            for name, s in samples
            if name == "koprogo_rollup_refresh_readings" and s.name.endswith("_total")
        },
    )


def _worst(timed: list[tuple[float, float]], count: int = 5) -> list[tuple[int, float]]:
    """The phase's `count` worst seconds: (second of the phase, its longest WebSocket latency), to tell a steady
    latency from spikes, and spikes that come back on a period (a job, the broker saving its state)."""
    longest: dict[int, float] = {}
    for at, latency in timed:
        longest[int(at)] = max(latency, longest.get(int(at), 0.0))
    return sorted(longest.items(), key=lambda item: -item[1])[:count]


def _refresh_cost(before: _Scrape, after: _Scrape, stored: int | None) -> dict[str, float | None]:
    """What refreshing the rollups cost between two scrapes: wall seconds, readings read by path, and the wall
    time per reading stored meanwhile."""
    seconds = after.refresh_seconds - before.refresh_seconds
    read = {
        path: after.refresh_readings[path] - before.refresh_readings.get(path, 0.0) for path in after.refresh_readings
    }
    return {"seconds": seconds, **read, "us_per_stored_reading": seconds * 1e6 / stored if stored else None}


def _loop_lag(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """What the API's loop went through between two scrapes: its 100 ms ticks, how many ran over 50 ms late, and
    the bucket bound the longest lag stayed under."""
    seen = {le: after[le] - before.get(le, 0.0) for le in after}
    total = seen.get("+Inf", 0.0)
    longest = min((float(le) for le, count in seen.items() if count == total), default=math.inf)
    return {"ticks": total, "over_50_ms": total - seen.get("0.05", 0.0), "longest_at_most_s": longest}


async def _phase(
    label: str,
    seconds: float,
    probe: _Probe,
    rest: _Rest,
    load: Callable[[Progress], Awaitable[LoadResult]] | None,
    api: httpx.AsyncClient,
) -> dict[str, Any]:
    """Measure for `seconds` (with the load running, if given); what the probes, the REST calls and the API's
    event loop saw."""
    before = await _scrape(api)
    first, first_on_bus = len(probe.latencies), len(probe.bus_latencies)
    rest.timings.clear()
    rest.errors.clear()
    started = time.monotonic()
    loaded = None
    if load is not None:
        progress = Progress(0, label)
        loaded = await load(progress)
    else:
        progress = Progress(int(seconds), label, ("seconds", None))
        while (elapsed := time.monotonic() - started) < seconds:
            progress(int(elapsed), 0)
            await asyncio.sleep(1)
    progress.done()
    ended = time.monotonic()

    def pending() -> list[tuple[str, datetime]]:
        """Readings published during the phase and not seen yet (the probes go on publishing after it)."""
        return [key for key, t in probe.sent.items() if started <= t < ended]

    # Readings published in the last moments may still be on their way: wait a little for them.
    deadline = ended + 5
    while time.monotonic() < deadline and pending():
        await asyncio.sleep(0.1)
    after = await _scrape(api)
    timed = [(sent - started, lat) for sent, lat in probe.latencies[first:] if started <= sent < ended]
    window = [lat for _, lat in timed]
    to_bus = [lat for sent, lat in probe.bus_latencies[first_on_bus:] if started <= sent < ended]
    lost = pending()
    return {
        "seconds": seconds,
        "websocket_seconds": _percentiles(window),
        "to_bus_seconds": _percentiles(to_bus),
        "worst_seconds": _worst(timed),
        "websocket_missing": len(lost),
        "missing_readings": lost,  # replaced by how many of them were stored, once the phases are over
        "rest_seconds": {name: _percentiles(values) for name, values in rest.timings.items()},
        "rest_errors": dict(rest.errors),
        "api_loop_lag": _loop_lag(before.lag, after.lag),
        "rollup_refresh": _refresh_cost(before, after, None if loaded is None else loaded.acknowledged),
        "load": None if loaded is None else {"published": loaded.published, "acknowledged": loaded.acknowledged},
    }


async def run(options: argparse.Namespace) -> None:
    started = datetime.now(UTC)
    folder = Path(tempfile.mkdtemp(prefix="koprogo-bench-live-"))
    name = f"koprogo_bench_{uuid.uuid4().hex[:10]}"
    version = await create_database(options.postgres_url, name)
    database_url = sibling_url(options.postgres_url, name)
    services: list[Service] = []
    try:
        storage = await open_storage(database_url, secrets.token_urlsafe(36))
        try:
            print("provisioning the fleet, the probes and a year of history...", file=sys.stderr)
            setup = await _provision(storage, options)
        finally:
            await storage.close()
        mosquitto, redis = MosquittoServer(folder / "mosquitto"), RedisServer()
        service: Service
        for service in (mosquitto, redis):
            services.append(service)
            service.start()
        env = {
            "KOPROGO_MODE": "production",
            "KOPROGO_SECRET_KEY": secrets.token_urlsafe(36),
            "KOPROGO_ENCRYPTION_KEY": secrets.token_urlsafe(36),
            "KOPROGO_DATABASE_URL": database_url,
            "KOPROGO_MQTT_URL": mosquitto.url,
            "KOPROGO_REDIS_URL": redis.url,
            "KOPROGO_INGEST_RATE_PER_SENSOR": f"{max(2.0, 2 * options.rate / options.sensors):g}",
            "KOPROGO_INGEST_BURST_PER_SENSOR": "1000",
        }
        workers = [IngestWorker(env, f"bench-live-{i}", folder / f"worker-{i}.log") for i in range(options.workers)]
        api = ApiServer(env, folder / "api.log")
        for service in (*workers, api):
            services.append(service)
            service.start()
        device = await mosquitto.device(setup.fleet.organization.id)
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
            login = await client.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
            login.raise_for_status()
            token = login.json()["access_token"]
            client.headers["Authorization"] = f"Bearer {token}"
            probe, rest, ready = _Probe(), _Rest(), asyncio.Event()
            await _call_dashboard(client, setup, rest, rounds=1)  # warm-up: rollups caught up, caches filled
            watching = (
                _watch(api.url, token, setup.probes, probe, ready),
                _tap(redis.url, setup.fleet.organization.id, setup.probes, probe),
            )
            async with _running(*watching):
                await asyncio.wait_for(ready.wait(), 30)
                dashboard = [] if options.no_rest else [_call_dashboard(client, setup, rest, pause=options.rest_pause)]
                async with _running(_publish_probes(device, setup.probes, probe), *dashboard):
                    idle = await _phase("idle", options.idle, probe, rest, None, client)
                    loaded = await _phase(
                        f"{options.rate:,.0f}/s",
                        options.duration,
                        probe,
                        rest,
                        lambda bar: _load(device, setup.fleet.topics, options, bar),
                        client,
                    )
        for phase in (idle, loaded):
            phase["websocket_missing_stored"] = await _stored(database_url, phase.pop("missing_readings"))
        result = _result(options, started, version, idle, loaded)
        print(_summary(result))
        path = _write(result, options.results_dir, started)
        print(f"results: {path}")
    except BaseException:
        print(f"bench live: logs kept in {folder}", file=sys.stderr)
        raise
    finally:
        for service in reversed(services):
            with contextlib.suppress(Exception):
                service.stop()
        await drop_database(options.postgres_url, name)
    shutil.rmtree(folder, ignore_errors=True)


async def _stored(database_url: str, readings: list[tuple[str, datetime]]) -> int:
    """How many of these (sensor id, timestamp) readings the database holds: a reading the WebSocket missed was
    either lost on the live path (stored) or never stored (refused, or lost before the database)."""
    if not readings:
        return 0
    conn = await asyncpg.connect(database_url)
    try:
        found = await conn.fetchval(
            "SELECT count(*) FROM iot_readings r JOIN unnest($1::uuid[], $2::timestamptz[]) AS m(id, ts) "
            "ON r.sensor_id = m.id AND r.ts = m.ts",
            [uuid.UUID(sensor_id) for sensor_id, _ in readings],
            [ts for _, ts in readings],
        )
    finally:
        await conn.close()
    return int(found)


async def _load(device: MqttEndpoint, topics: list[str], options: argparse.Namespace, bar: Progress) -> LoadResult:
    bar.total = int(options.rate * options.duration)
    return await run_load(device, topics, options.rate, options.duration, on_progress=bar)


def _result(
    options: argparse.Namespace, started: datetime, version: str, idle: dict[str, Any], loaded: dict[str, Any]
) -> dict[str, Any]:
    ws_idle, ws_loaded = idle["websocket_seconds"]["p99"], loaded["websocket_seconds"]["p99"]
    rest_p95 = [v["p95"] for v in loaded["rest_seconds"].values() if v["p95"] is not None]
    checks = {
        "websocket_p99_idle_under_100_ms": ws_idle is not None and ws_idle < TARGET_WS_P99_IDLE,
        "websocket_p99_loaded_under_500_ms": ws_loaded is not None and ws_loaded < TARGET_WS_P99_LOADED,
        "no_probe_reading_missing": idle["websocket_missing"] == loaded["websocket_missing"] == 0,
        "load_acknowledged": bool(loaded["load"]) and loaded["load"]["acknowledged"] == loaded["load"]["published"],
    }
    if not options.no_rest:  # with --no-rest nothing measured them
        checks["rest_p95_loaded_under_300_ms"] = bool(rest_p95) and max(rest_p95) < TARGET_REST_P95
    return {
        "benchmark": "live",
        "date": started.strftime("%Y-%m-%d %H:%M"),
        "machine": describe_machine(version),
        "parameters": vars(options) | {"results_dir": str(options.results_dir)},
        "idle": idle,
        "loaded": loaded,
        "acceptance": checks | {"verdict": "PASS" if all(checks.values()) else "FAIL"},
    }


def _ms(value: float | int | None) -> str:
    return "n/a" if value is None else f"{value * 1000:.0f}"


def _ws(phase: dict[str, Any], key: str = "websocket_seconds") -> str:
    w = phase[key]
    return f"{_ms(w['p50'])} / {_ms(w['p95'])} / {_ms(w['p99'])}"


def _rest(phase: dict[str, Any]) -> str:
    return ", ".join(f"{name} {_ms(v['p95'])}" for name, v in phase["rest_seconds"].items())


def _lag(phase: dict[str, Any]) -> str:
    lag = phase["api_loop_lag"]
    longest = _ms(lag["longest_at_most_s"])
    return f"{lag['over_50_ms']:.0f} of {lag['ticks']:.0f} ticks over 50 ms late, longest under {longest} ms"


def _refresh(phase: dict[str, Any]) -> str:
    cost = phase["rollup_refresh"]
    per = cost["us_per_stored_reading"]
    return (
        f"{cost['seconds']:.1f} s wall under load, {cost.get('folded', 0):,.0f} readings folded in, "
        f"{cost.get('recomputed', 0):,.0f} read again to recompute hours; "
        f"{'n/a' if per is None else f'{per:.1f}'} µs per stored reading"
    )


def _summary(r: dict[str, Any]) -> str:
    m, p = r["machine"], r["parameters"]
    lines = [
        "",
        f"KoproGo live benchmark  {r['date']}  {m['hostname']}: {m['nproc']} CPUs, {m['cpu_model']}, "
        f"load average {m['load_average_at_end'][0]:.1f}",
        f"  idle ({p['idle']:g} s)      WebSocket p50/p95/p99 {_ws(r['idle'])} ms over "
        f"{r['idle']['websocket_seconds']['count']} readings, {_missing(r['idle'])}; "
        f"REST p95 ms: {_rest(r['idle'])}",
        f"  {p['rate']:,.0f}/s ({p['duration']:g} s)  WebSocket p50/p95/p99 {_ws(r['loaded'])} ms over "
        f"{r['loaded']['websocket_seconds']['count']} readings, {_missing(r['loaded'])}; "
        f"REST p95 ms: {_rest(r['loaded'])}",
        f"  to the bus      p50/p95/p99 {_ws(r['idle'], 'to_bus_seconds')} ms idle, "
        f"{_ws(r['loaded'], 'to_bus_seconds')} ms under load (publish -> stored and on Redis: ingestion's part)",
        f"  worst seconds   {', '.join(f'{at} s: {_ms(lat)} ms' for at, lat in r['loaded']['worst_seconds'])} "
        "(second of the loaded phase: longest WebSocket latency)",
        f"  load            {r['loaded']['load']}",
        f"  API event loop  {_lag(r['idle'])} idle; {_lag(r['loaded'])} under load",
        f"  rollup refresh  {_refresh(r['loaded'])}",
        f"  acceptance      {r['acceptance']['verdict']}: "
        + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in r["acceptance"].items() if k != "verdict"),
    ]
    return "\n".join(lines)


def _missing(phase: dict[str, Any]) -> str:
    missing = phase["websocket_missing"]
    return f"{missing} missing" + (f" ({phase['websocket_missing_stored']} of them stored)" if missing else "")


MARKDOWN_HEADER = (
    "| date (UTC) | host | CPUs | load avg | rate × s | WS idle p50/p95/p99 ms | WS loaded p50/p95/p99 ms | missing "
    "| REST p95 ms under load | verdict |\n|---|---|---|---|---|---|---|---|---|---|\n"
)


def _write(result: dict[str, Any], folder: Path, started: datetime) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"live-{started:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    table = folder / "live.md"
    if not table.exists():
        table.write_text(MARKDOWN_HEADER, encoding="utf-8")
    m, p = result["machine"], result["parameters"]
    missing = result["idle"]["websocket_missing"] + result["loaded"]["websocket_missing"]
    cells = [
        result["date"],
        m["hostname"],
        str(m["nproc"]),
        f"{m['load_average_at_end'][0]:.1f}",
        f"{p['rate']:,.0f} × {p['duration']:g}",
        _ws(result["idle"]),
        _ws(result["loaded"]),
        str(missing),
        _rest(result["loaded"]) or ("not measured (--no-rest)" if p["no_rest"] else ""),
        result["acceptance"]["verdict"],
    ]
    with table.open("a", encoding="utf-8") as out:
        out.write("| " + " | ".join(cells) + " |\n")
    return path


if __name__ == "__main__":
    sys.exit(main())
