"""The live benchmark, run tiny against real Mosquitto, Redis, PostgreSQL, worker and API processes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from koprogo_iot.bench import live
from tests.conftest import POSTGRES_ADMIN_URL

pytestmark = [pytest.mark.postgres, pytest.mark.mosquitto]


def tiny(tmp_path: Path, *extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    live.add_arguments(parser)
    arguments = "--rate 200 --duration 2 --idle 2 --sensors 20 --workers 1 --probes 2 --history-days 3"
    return parser.parse_args(
        [*arguments.split(), *extra, "--postgres-url", POSTGRES_ADMIN_URL, "--results-dir", str(tmp_path)]
    )


async def test_tiny_live_benchmark_sees_every_probe_reading_and_times_the_dashboard(tmp_path: Path) -> None:
    await live.run(tiny(tmp_path))
    [path] = tmp_path.glob("live-*.json")
    result = json.loads(path.read_text())
    for phase in ("idle", "loaded"):
        assert result[phase]["websocket_seconds"]["count"] >= 2
        assert result[phase]["to_bus_seconds"]["count"] >= 2  # seen on Redis too, beside the API
        assert 1 <= len(result[phase]["worst_seconds"]) <= 5
        assert result[phase]["websocket_missing"] == 0
        assert set(result[phase]["rest_seconds"]) == {"sensor list", "building's day", "sensor's year"}
        assert result[phase]["api_loop_lag"]["ticks"] >= 10  # the API's loop watched every 100 ms
        assert result[phase]["rest_errors"] == {}
    assert result["loaded"]["load"] == {"published": 400, "acknowledged": 400}
    # The dashboard's queries bring the rollups up to date: the readings stored under load are folded in.
    assert result["loaded"]["rollup_refresh"]["folded"] > 0
    assert (tmp_path / "live.md").read_text().count("\n") == 3  # header, separator, this run


async def test_the_live_path_alone_makes_no_rest_call_and_judges_none(tmp_path: Path) -> None:
    await live.run(tiny(tmp_path, "--no-rest"))
    [path] = tmp_path.glob("live-*.json")
    result = json.loads(path.read_text())
    assert result["loaded"]["websocket_missing"] == 0 and result["loaded"]["rest_seconds"] == {}
    assert "rest_p95_loaded_under_300_ms" not in result["acceptance"]
    assert "not measured (--no-rest)" in (tmp_path / "live.md").read_text()
