"""The window-rules benchmark, run tiny (eight sensors, six minutes at two readings a second) against a throwaway
PostgreSQL database."""

from __future__ import annotations

import argparse
import json
import uuid
from pathlib import Path

import pytest

from koprogo_iot.bench import windows
from koprogo_iot.bench.machine import drop_database
from tests.conftest import POSTGRES_ADMIN_URL

pytestmark = pytest.mark.postgres


async def test_tiny_benchmark_loads_judges_and_writes_results(tmp_path: Path) -> None:
    name = f"koprogo_windows_test_{uuid.uuid4().hex[:10]}"
    parser = argparse.ArgumentParser()
    windows.add_arguments(parser)
    options = parser.parse_args(
        ["--postgres-url", POSTGRES_ADMIN_URL, "--database", name, "--sensors", "8", "--hours", "0.1"]
        + ["--rate", "2", "--repeat", "2", "--label", "test", "--results-dir", str(tmp_path)]
    )
    try:
        result = await windows.run(options)
    finally:
        await drop_database(POSTGRES_ADMIN_URL, name)
    assert result["parameters"]["rows"] == 8 * 720  # six minutes at two a second
    every, short = result["runs"]["every_rule"], result["runs"]["short_rules"]
    for run in (every, short):
        assert len(run["times_s"]) == 2 and all(t > 0 for t in run["times_s"])
        assert run["longest_loop_wait_ms"] >= 0 and run["longest_loop_busy_ms"] >= 0
        assert run["python_peak_mib"] > 0 and run["rss_peak_mib"] > 0
    # The gauges are judged on every run (spike and stuck clears on the temperatures, at least); the counters' day of
    # steps only on the hourly one: more decisions there.
    assert 0 < short["decisions_applied"] < every["decisions_applied"]
    [written] = tmp_path.glob("windows-*.json")
    assert json.loads(written.read_text())["parameters"] == result["parameters"]
