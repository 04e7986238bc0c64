"""The ingest benchmark, run tiny against real Mosquitto, Redis, PostgreSQL and worker processes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from koprogo_iot.bench import ingest
from tests.conftest import POSTGRES_ADMIN_URL

pytestmark = [pytest.mark.postgres, pytest.mark.mosquitto]


async def test_tiny_benchmark_stores_every_reading_once_and_writes_results(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    ingest.add_arguments(parser)
    options = parser.parse_args(
        [
            "--rate",
            "500",
            "--duration",
            "2",
            "--warmup",
            "0.5",
            "--sensors",
            "50",
            "--workers",
            "1",
            "--drain-timeout",
            "10",
            "--postgres-url",
            POSTGRES_ADMIN_URL,
            "--results-dir",
            str(tmp_path),
        ]
    )

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
    parser = argparse.ArgumentParser()
    ingest.add_arguments(parser)
    args = ["--rate", "500", "--duration", "3", "--warmup", "0", "--sensors", "50", "--workers", "2"]
    args += ["--sigterm-at", "1", "--drain-timeout", "30", "--postgres-url", POSTGRES_ADMIN_URL]
    options = parser.parse_args([*args, "--results-dir", str(tmp_path)])

    result = await ingest.run(options)

    assert result["published"] == result["acknowledged"] == result["stored"] == 1500
    assert result["duplicates"] == 0
    term = result["sigterm"]
    assert term["exit_code"] == 0 and term["exit_seconds"] < 10 and term["worker"] == "bench-ingest-1"
    assert result["acceptance"]["sigterm_exit_within_10_s"]


async def test_tiny_benchmark_with_the_paho_client_behind_the_same_pipeline(tmp_path: Path) -> None:
    """The comparison's other side (`--client paho`, bench/paho_worker.py) stores everything once too."""
    parser = argparse.ArgumentParser()
    ingest.add_arguments(parser)
    args = ["--rate", "500", "--duration", "2", "--warmup", "0", "--sensors", "50", "--workers", "2"]
    args += ["--client", "paho", "--drain-timeout", "10", "--postgres-url", POSTGRES_ADMIN_URL]
    options = parser.parse_args([*args, "--results-dir", str(tmp_path)])

    result = await ingest.run(options)

    assert result["published"] == result["acknowledged"] == result["stored"] == 1000
    assert result["duplicates"] == 0
    assert "2 paho" in result["markdown"]
