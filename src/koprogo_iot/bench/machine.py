"""What a benchmark records about where it ran, the throwaway databases it runs in, and how it is run."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

# Relative to where the benchmark runs (the project's checkout, normally): results are committed from there.
RESULTS_DIR = Path("benchmarks") / "results"


def describe_machine(postgres_version: str) -> dict[str, Any]:
    """Host, CPU, memory and the versions of what the benchmark ran against."""
    return {
        "hostname": socket.gethostname(),
        "nproc": cpu_count(),
        "cpu_model": _cpu_model(),
        "ram_gib": round(_ram_kib() / 1024**2, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "mosquitto": _command_version([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-h"]),
        "postgresql": postgres_version,
        "redis": _command_version(["redis-server", "--version"]),
        "load_average_at_end": os.getloadavg(),
    }


def cpu_count() -> int:
    """CPUs this process may use."""
    return len(os.sched_getaffinity(0))  # what `nproc` reports


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _ram_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 0


def _command_version(command: list[str]) -> str:
    """The first line a program prints about itself, e.g. `mosquitto version 2.0.11`."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = (done.stdout or done.stderr).splitlines()
    return lines[0].strip() if lines else "unknown"


def sibling_url(url: str, database: str) -> str:
    """`url` pointing at another database of the same server."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


async def create_database(admin_url: str, name: str) -> str:
    """Create the database; return the server's version."""
    admin = await asyncpg.connect(admin_url)
    try:
        version = str(await admin.fetchval("SHOW server_version"))
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return version


async def refuse_connections(admin_url: str, database: str, timeout: float = 10.0) -> None:
    """Make `database` refuse connections as during a maintenance or a failover: ALLOW_CONNECTIONS false, then its
    backends terminated; returns once none is left (termination is asynchronous)."""
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        deadline = time.monotonic() + timeout
        while await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1", database
        ):
            if time.monotonic() > deadline:
                raise RuntimeError(f"backends of {database} still there after {timeout} s")
            await asyncio.sleep(0.05)
    finally:
        await admin.close()


async def allow_connections(admin_url: str, database: str) -> None:
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
    finally:
        await admin.close()


async def drop_database(admin_url: str, name: str) -> None:
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def run_benchmark(
    name: str, run: Callable[[argparse.Namespace], Coroutine[Any, Any, object]], options: argparse.Namespace
) -> int:
    """Run a benchmark: 0 once it ran (whatever the verdict), 2 on an error, 130 on Ctrl-C."""
    try:
        asyncio.run(run(options))
    except KeyboardInterrupt:
        print(f"bench {name}: interrupted; everything it started was stopped", file=sys.stderr)
        return 130
    except (OSError, RuntimeError, ValueError, asyncpg.PostgresError) as exc:
        print(f"bench {name}: error: {exc}", file=sys.stderr)
        return 2
    return 0


def write_results(result: dict[str, Any], folder: Path, stem: str, table: str, header: str) -> Path:
    """`<stem>.json`, and the result's Markdown row appended to `<table>.md` (`header` first, when it is new)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    markdown = folder / f"{table}.md"
    if not markdown.exists():
        markdown.write_text(header, encoding="utf-8")
    with markdown.open("a", encoding="utf-8") as out:
        out.write(result["markdown"] + "\n")
    return path
