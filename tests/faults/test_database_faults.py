"""Database faults under load, through real worker processes and a real Mosquitto, counted key by key on the
publishing side: the database refusing connections for seconds, and two workers writing the same sensors.

No worker exits, and every published reading is stored once.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from koprogo_iot.bench.machine import allow_connections, refuse_connections
from koprogo_iot.bench.services import IngestWorker, MosquittoServer
from koprogo_iot.bootstrap import open_storage
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.loadgen.fleet import Fleet
from tests.conftest import ENCRYPTION_KEY, POSTGRES_ADMIN_URL, eventually
from tests.faults.test_faults import (  # noqa: F401  (fixtures)
    Publisher,
    broker,
    fleet_db,
    start_worker,
    stored_as_published,
    stored_keys,
    subscribed,
    wait_until_published,
    worker_env,
)
from tests.faults.test_sigterm import scrape

pytestmark = [pytest.mark.mosquitto, pytest.mark.postgres]

RATE = 400.0  # readings per second: a modest load, so that the outage, not the load, is what is tested
OUTAGE = 10.0  # seconds the database refuses connections (as issue 14 asks)


def alive(*workers: IngestWorker) -> bool:
    return all(w.process is not None and w.process.poll() is None for w in workers)


def log_of(tmp_path: Path, client_id: str) -> str:
    return (tmp_path / f"{client_id}.log").read_text()


async def test_the_database_refusing_connections_mid_stream(
    fleet_db: tuple[str, Fleet],  # noqa: F811
    broker: MosquittoServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    """ALLOW_CONNECTIONS false and its backends terminated (a maintenance, a failover) for OUTAGE seconds: the
    running worker waits and acknowledges nothing meanwhile, a worker started during the outage waits too, and
    both store everything once when the database is back."""
    url, fleet = fleet_db
    database = url.rsplit("/", 1)[1]
    env = worker_env(url, broker)
    first = await start_worker(env, "refused-1", tmp_path)
    workers = [first]
    try:
        await subscribed(first)
        publisher = Publisher(await broker.device(fleet.organization.id), fleet, count=6000, rate=RATE)
        publisher.start()
        await wait_until_published(publisher, 0.2)
        await refuse_connections(POSTGRES_ADMIN_URL, database)
        try:
            refused_at = publisher.published
            stored_before = await scrape(first, "koprogo_readings_stored_total")
            second = await start_worker(env, "refused-2", tmp_path)  # started while the database refuses
            workers.append(second)
            # Alive (an orchestrator leaves it be) and not ready, saying why, while it waits.
            probes = second.metrics_url.removesuffix("/metrics")
            async with httpx.AsyncClient(timeout=5) as client:
                assert (await client.get(f"{probes}/healthz")).status_code == 200

                async def says_it_waits() -> bool:
                    response = await client.get(f"{probes}/readyz")
                    assert response.status_code == 503
                    return "not currently accepting connections" in response.json()["checks"]["database"]

                await eventually(says_it_waits, timeout=OUTAGE - 2)
            await asyncio.sleep(OUTAGE)  # the outage itself: nothing to wait for, time is the fault
            assert alive(first, second), "a worker exited while the database refused connections"
            # Nothing stored meanwhile (so nothing acknowledged), while the stream went on.
            assert await scrape(first, "koprogo_readings_stored_total") == stored_before
            assert publisher.published > refused_at + RATE * (OUTAGE - 2)
        finally:
            await allow_connections(POSTGRES_ADMIN_URL, database)
        await subscribed(second)
        await eventually(lambda: stored_as_published(url, publisher), timeout=60)
        await asyncio.to_thread(publisher.join, 30)
        assert publisher.acknowledged == publisher.count
        assert alive(first, second)
    finally:
        for worker in workers:
            await asyncio.to_thread(worker.stop)
    waited = log_of(tmp_path, "refused-2")
    assert "is unavailable" in waited and "next attempt in" in waited  # it waited at start-up, saying why
    assert "storage unavailable" in log_of(tmp_path, "refused-1")  # it retried its batch
    for client_id in ("refused-1", "refused-2"):
        assert "Traceback" not in log_of(tmp_path, client_id)


async def test_two_workers_on_the_same_sensors_in_random_order(
    fleet_db: tuple[str, Fleet],  # noqa: F811
    broker: MosquittoServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Two publishers interleave every sensor of the fleet at random; two workers share the subscription, so
    their batches hold the same sensors in different orders. Locks are taken in sensor order: no deadlock."""
    url, fleet = fleet_db
    env = worker_env(url, broker)
    workers = [await start_worker(env, f"overlap-{n}", tmp_path) for n in (1, 2)]
    try:
        for worker in workers:
            await subscribed(worker)
        device = await broker.device(fleet.organization.id)
        base = utcnow() - timedelta(minutes=30)
        publishers = [
            Publisher(device, fleet, count=2000, rate=500.0, shuffled=True, start_time=base + timedelta(minutes=n))
            for n in (0, 10)  # 2,000 ms of timestamps each: the two publishers' keys never meet
        ]
        for publisher in publishers:
            publisher.start()
        await eventually(lambda: stored_as_published(url, *publishers), timeout=60)
        for publisher in publishers:
            await asyncio.to_thread(publisher.join, 30)
            assert publisher.acknowledged == publisher.count
        assert alive(*workers)
    finally:
        for worker in workers:
            await asyncio.to_thread(worker.stop)
    for n in (1, 2):
        log = log_of(tmp_path, f"overlap-{n}")
        assert "deadlock" not in log and "lost a race" not in log and "Traceback" not in log


async def test_a_sensor_deleted_mid_stream(
    fleet_db: tuple[str, Fleet],  # noqa: F811
    broker: MosquittoServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A sensor deleted through the API while two workers have it cached: every other reading stored once, the
    deleted sensor's later readings dead-lettered (its earlier ones go with it), no worker exits."""
    url, fleet = fleet_db
    env = worker_env(url, broker)
    workers = [await start_worker(env, f"deleting-{n}", tmp_path) for n in (1, 2)]
    deleted = fleet.sensors[7]
    try:
        for worker in workers:
            await subscribed(worker)
        publisher = Publisher(await broker.device(fleet.organization.id), fleet, count=3000, rate=500.0)
        publisher.start()
        await wait_until_published(publisher, 0.4)
        storage = await open_storage(url, ENCRYPTION_KEY, apply_migrations=False)
        try:
            await storage.sensors.delete(fleet.organization.id, deleted.id)
        finally:
            await storage.close()

        async def every_other_reading_stored() -> bool:
            stored = await stored_keys(url)
            if stored is None:
                return False
            assert len(stored) == len(set(stored)) and all(sensor != deleted.id for sensor, _ in stored)
            with publisher.sending:
                expected = {key for key in publisher.keys if key[0] != deleted.id}
            assert set(stored) <= expected
            return publisher.published == publisher.count and set(stored) == expected

        await eventually(every_other_reading_stored, timeout=60)
        await asyncio.to_thread(publisher.join, 30)
        assert publisher.acknowledged == publisher.count
        assert alive(*workers)
        reasons = await dead_letter_reasons(url, deleted.mqtt_topic)
        assert "storage_refused" in reasons and reasons <= {"storage_refused", "unknown_sensor"}
    finally:
        for worker in workers:
            await asyncio.to_thread(worker.stop)
    for n in (1, 2):
        assert "Traceback" not in log_of(tmp_path, f"deleting-{n}")


async def dead_letter_reasons(url: str, topic: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT DISTINCT reason FROM dead_letters WHERE topic = $1", topic)
        return {r["reason"] for r in rows}
    finally:
        await conn.close()
