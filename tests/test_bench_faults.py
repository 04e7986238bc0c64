"""The fault runs (`koprogo-iot bench faults`), each scenario tiny, against real Mosquitto, Redis, PostgreSQL and
worker processes: the code path of the 10,000/s runs, counted key by key."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from koprogo_iot.bench import faults
from koprogo_iot.bench.services import IngestWorker
from tests.conftest import POSTGRES_ADMIN_URL

pytestmark = [pytest.mark.postgres, pytest.mark.mosquitto]


def tiny(tmp_path: Path, arguments: str) -> argparse.Namespace:
    """The options of a run of 2 s at 200/s on 20 sensors (two workers unless told), results in `tmp_path`."""
    parser = argparse.ArgumentParser()
    faults.add_arguments(parser)
    rest = ["--rate", "200", "--duration", "2", "--sensors", "20", "--drain-timeout", "30"]
    rest += ["--postgres-url", POSTGRES_ADMIN_URL, "--results-dir", str(tmp_path)]
    return parser.parse_args([*arguments.split(), *rest])


def assert_every_expected_reading_stored_once(result: dict[str, object], tmp_path: Path) -> None:
    keys = result["keys"]
    assert isinstance(keys, dict)
    assert result["published"] == result["acknowledged"] == keys["published"] == 400
    assert keys["stored"] == keys["expected"] and keys["missing"] == keys["unexpected"] == keys["duplicates"] == 0
    assert result["worker_exits"] == {}
    assert result["acceptance"] == {
        "published_acknowledged": True,
        "every_expected_reading_stored_once": True,
        "no_worker_exit": True,
        "no_deadlock_no_traceback": True,
        "verdict": "PASS",
    }
    written = list(tmp_path.glob(f"faults-{result['scenario']}-*.json"))
    assert [str(p) for p in written] == [result["results_file"]]
    assert json.loads(written[0].read_text())["keys"] == keys
    assert result["markdown"] in (tmp_path / "faults.md").read_text()


async def test_a_sensor_deleted_during_a_tiny_run(tmp_path: Path) -> None:
    result = await faults.run(tiny(tmp_path, "--scenario delete-sensor --fault-at 1 --workers 1"))

    assert_every_expected_reading_stored_once(result, tmp_path)
    keys = result["keys"]
    assert isinstance(keys, dict)
    assert keys["expected"] == 400 - 400 // 20  # the deleted sensor's 20 readings are not expected
    assert result["deleted_sensor_dead_letters"]  # those published after the deletion were dead-lettered

    # What the run would have said of a worker exit, or of a reading missing.
    exited = result | {"worker_exits": {"bench-ingest-1": {"exit_code": 1, "at_seconds": 1.5}}}
    assert faults._acceptance(exited)["verdict"] == "FAIL"
    assert "bench-ingest-1 (code 1 at 1.5 s)" in faults._summary(exited | {"acceptance": faults._acceptance(exited)})
    missing = result | {"keys": keys | {"stored": keys["stored"] - 1, "missing": 1}}
    assert faults._acceptance(missing)["every_expected_reading_stored_once"] is False


def test_a_worker_that_exited_is_seen_with_its_status() -> None:
    worker = IngestWorker({}, "bench-ingest-9")
    worker.process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    worker.process.wait()
    exits = faults._Exits({})

    exits.look([worker], time.monotonic())

    assert exits.seen == {"bench-ingest-9": {"exit_code": 3, "at_seconds": 0.0}}


async def test_the_database_refusing_connections_during_a_tiny_run(tmp_path: Path) -> None:
    result = await faults.run(tiny(tmp_path, "--scenario db-refusal --fault-at 0.5 --outage 1 --workers 1"))

    assert_every_expected_reading_stored_once(result, tmp_path)
    assert result["fault"]["refused_seconds"] >= 1  # type: ignore[index]
    assert any(c["storage_unavailable"] for c in result["worker_logs"].values())  # type: ignore[attr-defined]


async def test_overlapping_workers_in_random_order_during_a_tiny_run(tmp_path: Path) -> None:
    result = await faults.run(tiny(tmp_path, "--scenario overlap"))

    assert_every_expected_reading_stored_once(result, tmp_path)
    assert result["keys"]["expected"] == 400  # type: ignore[index]
