"""Fault runs under load (issue 14), counted key by key: a fault during a steady QoS 1 load into W ingest workers.

The same rig as `bench ingest` (its own Mosquitto and Redis, a throwaway database next to `--postgres-url`'s, W
worker processes, the load generator), and one scenario:

- `delete-sensor`: a sensor is deleted `--fault-at` seconds into the run, while every worker has it cached;
- `db-refusal`: the database refuses connections (ALLOW_CONNECTIONS false, its backends terminated, as during a
  maintenance or a failover) for `--outage` seconds from `--fault-at`;
- `overlap`: the fleet's sensors published in a random order (each round of the topic list a new shuffle), so
  the workers sharing the subscription write the same sensors in different orders all along.

The load generator records what it published (three numbers per write: `loadgen.publisher.SentBatch`); at the
end every (sensor, timestamp) published is compared with what the table holds: missing, stored though not
expected, duplicate rows. Worker exits are watched throughout, and a worker that exits is not restarted: the run
reports it. Results go to `benchmarks/results/faults-<scenario>-<date>.json`, plus a row of `faults.md`. These are
long load runs, not tests: `tests/test_bench_faults.py` runs each scenario tiny.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import secrets
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from koprogo_iot.bench.ingest import (
    DUPLICATES,
    LATENCY,
    STORED,
    Rig,
    Scrape,
    positive,
    positive_int,
    scrape,
    start_rig,
    wait_rows,
    worker_name,
)
from koprogo_iot.bench.machine import (
    RESULTS_DIR,
    allow_connections,
    describe_machine,
    refuse_connections,
    run_benchmark,
    write_results,
)
from koprogo_iot.bench.services import IngestWorker
from koprogo_iot.bootstrap import open_storage
from koprogo_iot.loadgen.publisher import LoadResult, SentBatch, published_keys, run_load
from koprogo_iot.progress import Progress

SCENARIOS = ("delete-sensor", "db-refusal", "overlap")
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
WATCH_INTERVAL = 0.2  # seconds between looks at the workers' processes
SHUFFLES = 5  # overlap: rounds of the fleet, each in its own random order, in the topic list cycled through
DELETED = 7  # delete-sensor: the fleet's sensor at this position (modulo its size) is deleted
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options, for `koprogo-iot bench faults`; the defaults are issue 14's acceptance runs."""
    parser.add_argument("--scenario", choices=SCENARIOS, required=True, help="the fault: " + ", ".join(SCENARIOS))
    parser.add_argument("--rate", type=positive, default=10_000, help="messages per second (default 10000)")
    parser.add_argument("--duration", type=positive, default=60.0, help="seconds of publishing (default 60)")
    parser.add_argument("--sensors", type=positive_int, default=2000, help="simulated meters (default 2000)")
    parser.add_argument("--workers", type=positive_int, default=2, help="ingest worker processes (default 2)")
    parser.add_argument(
        "--fault-at", type=positive, default=20.0, help="seconds into publishing the fault starts (default 20)"
    )
    parser.add_argument(
        "--outage", type=positive, default=10.0, help="db-refusal: seconds the database refuses (default 10)"
    )
    parser.add_argument(
        "--drain-timeout", type=positive, default=120.0, help="seconds to wait for storage after publishing (120)"
    )
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES_URL,
        help=f"admin database of the server (default {DEFAULT_POSTGRES_URL})",
    )
    parser.add_argument("--keep-database", action="store_true", help="keep the koprogo_bench_* database afterwards")
    parser.add_argument(
        "--results-dir", type=Path, default=RESULTS_DIR, help=f"where results go (default ./{RESULTS_DIR})"
    )


def main(argv: list[str] | None = None) -> int:
    """Run a fault run; 0 once it ran (whatever the verdict), 2 on an error, 130 on Ctrl-C."""
    parser = argparse.ArgumentParser(prog="koprogo-iot bench faults", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return execute(parser.parse_args(argv))


def execute(options: argparse.Namespace) -> int:
    return run_benchmark("faults", run, options)


# --- during the run


@dataclass(slots=True)
class _Exits:
    """Workers seen exited, with their status and when (seconds after publishing started)."""

    seen: dict[str, dict[str, Any]]

    async def watch(self, workers: Sequence[IngestWorker], started: float) -> None:
        """Look at every worker's process until cancelled."""
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                self.look(workers, started)
                await asyncio.sleep(WATCH_INTERVAL)

    def look(self, workers: Sequence[IngestWorker], started: float) -> None:
        for worker in workers:
            name = worker_name(worker)
            code = worker.process.poll() if worker.process is not None else None
            if code is not None and name not in self.seen:
                self.seen[name] = {"exit_code": code, "at_seconds": round(time.monotonic() - started, 1)}


async def _fault(rig: Rig, options: argparse.Namespace) -> dict[str, Any]:
    """The scenario's fault, `--fault-at` seconds from now; what was done, and when."""
    if options.scenario == "overlap":
        return {"kind": "overlap", "order": f"random, {SHUFFLES} shuffles of the fleet per cycle of the topic list"}
    await asyncio.sleep(options.fault_at)
    if options.scenario == "delete-sensor":
        sensor = rig.fleet.sensors[DELETED % len(rig.fleet.sensors)]
        storage = await open_storage(rig.database_url, secrets.token_urlsafe(36), apply_migrations=False)
        try:
            await storage.sensors.delete(rig.fleet.organization.id, sensor.id)
        finally:
            await storage.close()
        return {"kind": "delete-sensor", "at_seconds": options.fault_at, "sensor": str(sensor.id)}
    database = urlsplit(rig.database_url).path.lstrip("/")
    refused = time.monotonic()
    await refuse_connections(options.postgres_url, database)
    try:
        await asyncio.sleep(options.outage)
    finally:
        await allow_connections(options.postgres_url, database)
    return {
        "kind": "db-refusal",
        "at_seconds": options.fault_at,
        "refused_seconds": round(time.monotonic() - refused, 2),
    }


def _topics(rig: Rig, scenario: str) -> list[str]:
    """The topic list the load cycles through: the fleet's, or for `overlap` several random orders of it."""
    if scenario != "overlap":
        return rig.topics
    rounds: list[str] = []
    for _ in range(SHUFFLES):
        rounds += random.sample(rig.topics, len(rig.topics))
    return rounds


async def _publish(rig: Rig, topics: list[str], options: argparse.Namespace, sent: list[SentBatch]) -> LoadResult:
    progress = Progress(int(options.rate * options.duration), f"{options.scenario} {options.rate:,.0f}/s")
    try:
        return await run_load(rig.device, topics, options.rate, options.duration, on_progress=progress, sent=sent)
    finally:
        progress.done()


async def _scrapes(workers: Sequence[IngestWorker]) -> list[Scrape]:
    """The metrics of every worker still answering."""
    found = []
    for worker in workers:
        with contextlib.suppress(OSError, ValueError):
            found.append(await asyncio.to_thread(scrape, worker))
    return found


# --- counting


@dataclass(frozen=True, slots=True)
class _Count:
    """Published against stored, key by key: (sensor, timestamp)."""

    published: int  # distinct keys published
    expected: int  # of those, the keys that must be stored (delete-sensor: not the deleted sensor's)
    stored: int  # rows
    duplicates: int  # rows beyond the distinct keys stored
    missing: int  # expected, not stored
    unexpected: int  # stored, not expected (never published, or the deleted sensor's)


async def _count(rig: Rig, topics: list[str], sent: list[SentBatch], deleted: str | None) -> _Count:
    sensor_of = {s.mqtt_topic: str(s.id) for s in rig.fleet.sensors}
    published = {(sensor_of[topic], micros) for topic, micros in published_keys(topics, sent)}
    expected = {key for key in published if key[0] != deleted}
    connection = await asyncpg.connect(rig.database_url)
    try:
        rows = [
            (str(r["sensor_id"]), (r["ts"] - EPOCH) // MICROSECOND)
            for r in await connection.fetch("SELECT sensor_id, ts FROM iot_readings")
        ]
    finally:
        await connection.close()
    stored = set(rows)
    return _Count(
        published=len(published),
        expected=len(expected),
        stored=len(rows),
        duplicates=len(rows) - len(stored),
        missing=len(expected - stored),
        unexpected=len(stored - expected),
    )


async def _dead_letters(database_url: str, topic: str) -> dict[str, int]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT reason, count(*) AS n FROM dead_letters WHERE topic = $1 GROUP BY reason", topic
        )
    finally:
        await connection.close()
    return {r["reason"]: int(r["n"]) for r in rows}


def _log_counts(workers: Sequence[IngestWorker]) -> dict[str, dict[str, int]]:
    """Per worker, lines of its log saying what must not happen (a deadlock, a traceback) and what should."""
    patterns = {
        "deadlock": r"deadlock",
        "traceback": r"Traceback",
        "storage_unavailable": r"storage unavailable|is unavailable",
    }
    counts = {}
    for worker in workers:
        text = worker.log.read_text(errors="replace") if worker.log and worker.log.exists() else ""
        counts[worker_name(worker)] = {name: len(re.findall(p, text)) for name, p in patterns.items()}
    return counts


# --- the run


async def run(options: argparse.Namespace) -> dict[str, Any]:
    """Run the scenario, print its summary, write its results file, and return what it measured."""
    # What `bench ingest`'s rig reads: no warm-up (the whole run is counted), our own MQTT client.
    options.warmup, options.client = 0.0, "own"
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    async with contextlib.AsyncExitStack() as stack:
        rig = await start_rig(stack, options)
        topics = _topics(rig, options.scenario)
        before = Scrape.total(await _scrapes(rig.workers))
        exits = _Exits({})
        begun = time.monotonic()
        watcher = asyncio.create_task(exits.watch(rig.workers, begun))
        fault = asyncio.create_task(_fault(rig, options))
        sent: list[SentBatch] = []
        try:
            load = await _publish(rig, topics, options, sent)
            published_end = time.monotonic()
            done = await fault
        finally:
            fault.cancel()
            if options.scenario == "db-refusal":  # never leave the database refusing, whatever happened
                await allow_connections(options.postgres_url, urlsplit(rig.database_url).path.lstrip("/"))
        deleted = done.get("sensor")
        deleted_topic = _topic(rig, deleted) if deleted else None
        expected = sum(1 for topic, _ in published_keys(topics, sent) if topic != deleted_topic)
        drained_at = await wait_rows(rig.database_url, expected, published_end + options.drain_timeout)
        exits.look(rig.workers, begun)
        watcher.cancel()
        await watcher
        after = Scrape.total(await _scrapes(rig.workers))
        count = await _count(rig, topics, sent, deleted)
        dead_letters = await _dead_letters(rig.database_url, deleted_topic) if deleted_topic else {}
        logs = _log_counts(rig.workers)
        machine = describe_machine(rig.postgres_version) | {"load_average_before": load_before}
    result = _result(options, started, machine, load, done, count, exits, before, after, logs)
    result["drain_seconds"] = None if drained_at is None else round(max(0.0, drained_at - published_end), 1)
    result["deleted_sensor_dead_letters"] = dead_letters
    result["acceptance"] = _acceptance(result)
    result["markdown"] = _markdown_row(result)
    result["results_file"] = str(_write_results(result, options.results_dir, started))
    print(_summary(result))
    return result


def _topic(rig: Rig, sensor_id: str) -> str:
    return next(s.mqtt_topic for s in rig.fleet.sensors if str(s.id) == sensor_id)


def _result(
    options: argparse.Namespace,
    started: datetime,
    machine: dict[str, Any],
    load: LoadResult,
    fault: dict[str, Any],
    count: _Count,
    exits: _Exits,
    before: Scrape,
    after: Scrape,
    logs: dict[str, dict[str, int]],
) -> dict[str, Any]:
    # A worker that exited takes its counters with it: the latency percentiles then cover the survivors only.
    delta = after - before
    return {
        "benchmark": "faults",
        "scenario": options.scenario,
        "date": started.isoformat(timespec="seconds"),
        "machine": machine,
        "parameters": {
            "rate": options.rate,
            "duration": options.duration,
            "sensors": options.sensors,
            "workers": options.workers,
            "fault_at": options.fault_at,
            "outage": options.outage if options.scenario == "db-refusal" else None,
            "drain_timeout": options.drain_timeout,
        },
        "fault": fault,
        "published": load.published,
        "acknowledged": load.acknowledged,
        "keys": {
            "published": count.published,
            "expected": count.expected,
            "stored": count.stored,
            "duplicates": count.duplicates,
            "missing": count.missing,
            "unexpected": count.unexpected,
        },
        "redeliveries_deduplicated": int(after.value(DUPLICATES)),
        "stored_by_workers": int(delta.value(STORED)),
        "worker_exits": exits.seen,
        "latency_seconds": {f"p{round(q * 100)}": delta.quantile(LATENCY, q) for q in (0.5, 0.99)},
        "worker_logs": logs,
    }


def _acceptance(r: dict[str, Any]) -> dict[str, Any]:
    keys = r["keys"]
    checks = {
        "published_acknowledged": r["published"] == r["acknowledged"] == keys["published"],
        "every_expected_reading_stored_once": keys["missing"] == 0
        and keys["unexpected"] == 0
        and keys["duplicates"] == 0
        and keys["stored"] == keys["expected"],
        "no_worker_exit": not r["worker_exits"],
        "no_deadlock_no_traceback": all(not (c["deadlock"] or c["traceback"]) for c in r["worker_logs"].values()),
    }
    return checks | {"verdict": "PASS" if all(checks.values()) else "FAIL"}


# --- output


def _write_results(result: dict[str, Any], folder: Path, started: datetime) -> Path:
    stem = f"faults-{result['scenario']}-{started:%Y%m%dT%H%M%SZ}"
    return write_results(result, folder, stem, "faults", MARKDOWN_HEADER)


MARKDOWN_HEADER = (
    "| date (UTC) | host | CPUs | load before | scenario | rate × s | workers | published | expected | stored "
    "| duplicates | missing | unexpected | worker exits | p99 ms | drain s | verdict |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
)


def _markdown_row(r: dict[str, Any]) -> str:
    p, k, p99 = r["parameters"], r["keys"], r["latency_seconds"]["p99"]
    cells = [
        r["date"],
        r["machine"]["hostname"],
        str(r["machine"]["nproc"]),
        f"{r['machine']['load_average_before'][0]:.1f}",
        r["scenario"],
        f"{p['rate']:,.0f} × {p['duration']:g}",
        str(p["workers"]),
        f"{k['published']:,}",
        f"{k['expected']:,}",
        f"{k['stored']:,}",
        str(k["duplicates"]),
        str(k["missing"]),
        str(k["unexpected"]),
        str(len(r["worker_exits"])),
        "n/a" if p99 is None else f"{p99 * 1000:.0f}",
        "n/a" if r["drain_seconds"] is None else f"{r['drain_seconds']:.1f}",
        r["acceptance"]["verdict"],
    ]
    return "| " + " | ".join(cells) + " |"


def _summary(r: dict[str, Any]) -> str:
    p, mach, k, lat = r["parameters"], r["machine"], r["keys"], r["latency_seconds"]
    exits = ", ".join(f"{name} (code {e['exit_code']} at {e['at_seconds']} s)" for name, e in r["worker_exits"].items())
    drain = "not within the drain timeout" if r["drain_seconds"] is None else f"{r['drain_seconds']:.1f} s"
    checks = ", ".join(f"{name} {'yes' if ok else 'NO'}" for name, ok in r["acceptance"].items() if name != "verdict")
    lines = [
        "",
        f"KoproGo fault run: {r['scenario']}  {r['date']}  {mach['hostname']}: {mach['nproc']} CPUs, "
        f"load average before {mach['load_average_before'][0]:.1f}",
        f"  load            {p['rate']:,.0f}/s for {p['duration']:g} s, {p['sensors']:,} sensors, "
        f"{p['workers']} worker(s)",
        f"  fault           {json.dumps(r['fault'])}",
        f"  published       {r['published']:,} (acknowledged by the broker {r['acknowledged']:,})",
        f"  per key         published {k['published']:,}  expected {k['expected']:,}  stored {k['stored']:,}  "
        f"duplicates {k['duplicates']}  missing {k['missing']}  unexpected {k['unexpected']}",
        f"  redeliveries    {r['redeliveries_deduplicated']:,} delivered again and stored once",
        f"  worker exits    {exits or 'none'}",
        f"  latency         p50 {_ms(lat['p50'])} ms  p99 {_ms(lat['p99'])} ms (sensor timestamp to stored)",
        f"  drain           {drain} after publishing ended",
    ]
    if r["deleted_sensor_dead_letters"]:
        lines.append(f"  dead letters    of the deleted sensor, by reason: {r['deleted_sensor_dead_letters']}")
    lines.append(f"  acceptance      {r['acceptance']['verdict']}: {checks}")
    return "\n".join(lines)


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.0f}"


if __name__ == "__main__":
    sys.exit(main())
