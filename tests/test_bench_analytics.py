"""The analytics benchmark, run tiny (two days, one unit) against a throwaway PostgreSQL database."""

from __future__ import annotations

import argparse
import json
import uuid
from pathlib import Path

import asyncpg
import pytest

from koprogo_iot.bench import analytics
from tests.conftest import POSTGRES_ADMIN_URL

pytestmark = pytest.mark.postgres


async def test_tiny_benchmark_loads_queries_and_writes_results(tmp_path: Path) -> None:
    name = f"koprogo_analytics_test_{uuid.uuid4().hex[:10]}"
    parser = argparse.ArgumentParser()
    analytics.add_arguments(parser)
    options = parser.parse_args(
        [
            "--postgres-url",
            POSTGRES_ADMIN_URL,
            "--database",
            name,
            "--units",
            "1",
            "--days",
            "2",
            "--repeat",
            "2",
            "--results-dir",
            str(tmp_path),
        ]
    )
    try:
        result = await analytics.run(options)
    finally:
        admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
    assert result["parameters"]["rows"] == 4 * 2 * 288  # four sensors, two days every 5 minutes
    assert set(result["queries"]) == {
        "counter_year_hourly",
        "gauge_year_hourly",
        "building_monthly_year",
        "raw_day_one_sensor",
        "window_rules_hourly_run",
    }
    assert all(q["p50_s"] > 0 for q in result["queries"].values())
    [written] = tmp_path.glob("analytics-*.json")
    assert json.loads(written.read_text())["parameters"] == result["parameters"]
