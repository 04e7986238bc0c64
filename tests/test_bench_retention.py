"""The retention benchmark, run tiny (2,000 readings a month) against a throwaway PostgreSQL database and SQLite."""

import argparse
import json
import uuid
from pathlib import Path

import pytest

from koprogo_iot.bench import retention
from tests.conftest import POSTGRES_ADMIN_URL

pytestmark = pytest.mark.postgres


async def test_tiny_benchmark_expires_what_it_loaded_and_writes_results(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    retention.add_arguments(parser)
    options = parser.parse_args(
        ["--postgres-url", POSTGRES_ADMIN_URL, "--database", f"koprogo_retention_test_{uuid.uuid4().hex[:10]}"]
        + ["--rows", "2000", "--results-dir", str(tmp_path)]
    )
    result = await retention.run(options)
    postgres, sqlite = result["postgres"], result["sqlite"]
    # PostgreSQL: January and February dropped whole, the short-keeping organization's March deleted in batches.
    assert postgres["dropped_partitions"] == ["iot_readings_p202601", "iot_readings_p202602"]
    assert postgres["deleted_in_batches"] == 2000
    assert (sqlite["dropped_partitions"], sqlite["deleted_in_batches"]) == ([], 3 * 2000)
    assert postgres["ingested_meanwhile"] >= 1 and sqlite["ingest_max_ms"] > 0
    [written] = tmp_path.glob("retention-*.json")
    assert json.loads(written.read_text())["parameters"] == {"rows_per_month": 2000, "months": 3, "batch": 10_000}
