"""The ingest benchmark, run tiny against real Mosquitto, Redis, PostgreSQL and worker processes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from koprogo_iot.bench import ingest
from tests.conftest import POSTGRES_ADMIN_URL

pytestmark = [pytest.mark.postgres, pytest.mark.mosquitto]


def tiny(tmp_path: Path, arguments: str) -> argparse.Namespace:
    """The benchmark's options for a run of a few seconds on 50 sensors, its results in `tmp_path`."""
    parser = argparse.ArgumentParser()
    ingest.add_arguments(parser)
    rest = ["--sensors", "50", "--postgres-url", POSTGRES_ADMIN_URL, "--results-dir", str(tmp_path)]
    return parser.parse_args([*arguments.split(), *rest])


async def test_tiny_benchmark_stores_every_reading_once_and_writes_results(tmp_path: Path) -> None:
    options = tiny(tmp_path, "--rate 500 --duration 2 --warmup 0.5 --workers 1 --drain-timeout 10")

    result = await ingest.run(options)

    assert result["published"] == result["acknowledged"] == result["stored"] == 500 * 2 + 500 * 0.5
    assert result["duplicates"] == 0
    assert result["acceptance"]["published_equals_stored"] and result["acceptance"]["no_duplicates"]
    assert result["latency_seconds"]["p50"] is not None
    written = list(tmp_path.glob("ingest-*.json"))
    assert [str(p) for p in written] == [result["results_file"]]
    assert json.loads(written[0].read_text())["stored"] == result["stored"]
    assert result["markdown"] in (tmp_path / "ingest.md").read_text()


async def test_tiny_benchmark_with_a_worker_sigtermed_and_restarted(tmp_path: Path) -> None:
    options = tiny(tmp_path, "--rate 500 --duration 3 --warmup 0 --workers 2 --sigterm-at 1 --drain-timeout 30")

    result = await ingest.run(options)

    assert result["published"] == result["acknowledged"] == result["stored"] == 1500
    assert result["duplicates"] == 0
    term = result["sigterm"]
    assert term["exit_code"] == 0 and term["exit_seconds"] < 10 and term["worker"] == "bench-ingest-1"
    assert result["acceptance"]["sigterm_exit_within_10_s"]


async def test_tiny_benchmark_with_the_paho_client_behind_the_same_pipeline(tmp_path: Path) -> None:
    """The comparison's other side (`--client paho`, bench/paho_worker.py) stores everything once too."""
    options = tiny(tmp_path, "--rate 500 --duration 2 --warmup 0 --workers 2 --client paho --drain-timeout 10")

    result = await ingest.run(options)

    assert result["published"] == result["acknowledged"] == result["stored"] == 1000
    assert result["duplicates"] == 0
    assert "2 paho" in result["markdown"]
