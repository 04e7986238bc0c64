"""SIGTERM to an ingest worker during a load run, counted: it exits in time, and every published reading is stored
exactly once, with no redelivery of what it had stored (it acknowledged what it held before disconnecting).

The 10,000/s version is a benchmark: `koprogo-iot bench ingest --rate 10000 --sigterm-at 20` (benchmarks/README.md).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from koprogo_iot.bench.services import IngestWorker, MosquittoServer
from koprogo_iot.loadgen.fleet import Fleet
from koprogo_iot.loadgen.publisher import run_load
from tests.conftest import eventually
from tests.faults.test_faults import count_rows, fleet_db, start_worker, worker_env  # noqa: F401  (fixture)

pytestmark = [pytest.mark.mosquitto, pytest.mark.postgres]

RATE = 1500.0  # messages per second: what fits CI on two loaded cores beside two workers
DURATION = 8.0
GRACE = 10.0  # seconds the acceptance gives a worker to exit after SIGTERM


async def scrape(worker: IngestWorker, name: str) -> float:
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(worker.metrics_url)).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


async def ready(worker: IngestWorker) -> bool:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(worker.metrics_url.replace("/metrics", "/readyz"))
    return response.status_code == 200 and response.json()["checks"]["subscription"] == "ok"


@pytest.fixture
def broker() -> Iterator[MosquittoServer]:
    with MosquittoServer(Path(f"/tmp/koprogo-mqtt-term-{time.monotonic_ns()}")) as server:
        yield server


async def test_sigterm_mid_load_stores_everything_once_and_exits_in_time(
    fleet_db: tuple[str, Fleet],  # noqa: F811
    broker: MosquittoServer,
    tmp_path: Path,
) -> None:
    url, fleet = fleet_db
    env = worker_env(url, broker)
    first = await start_worker(env, "term-1", tmp_path)
    second = await start_worker(env, "term-2", tmp_path)
    workers = [first, second]
    try:
        for worker in workers:
            await eventually(lambda w=worker: ready(w), timeout=30)  # type: ignore[misc]
        device = await broker.device(fleet.organization.id)
        load = asyncio.create_task(run_load(device, fleet.topics, RATE, DURATION))

        async def first_is_busy() -> bool:
            return await scrape(first, "koprogo_readings_stored_total") > RATE

        await eventually(first_is_busy, timeout=30)
        assert first.process is not None
        signalled = time.monotonic()
        first.process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(first.process.wait, GRACE)
        exited_after = time.monotonic() - signalled
        assert code == 0 and exited_after < GRACE
        log = (tmp_path / "term-1.log").read_text()
        assert "stopping: what was read is stored and acknowledged" in log
        result = await load
        assert result.acknowledged == result.published

        # Its pod comes back with the same client id, hence the same session: what it never read is there.
        restarted = await start_worker(env, "term-1", tmp_path)
        workers = [restarted, second]

        async def all_stored() -> bool:
            return await count_rows(url) == result.published

        await eventually(all_stored, timeout=90)
        # Nothing the stopped worker had stored came again: it acknowledged what it held before disconnecting.
        redelivered = [await scrape(w, "koprogo_readings_duplicate_total") for w in workers]
        assert redelivered == [0.0, 0.0]
    finally:
        for worker in workers:
            await asyncio.to_thread(worker.stop)
