"""A worker gone for longer than KOPROGO_INGEST_RELEASE_AFTER, or released by hand, no longer holds its share.

Mosquitto keeps queueing a shared subscription's messages to a member's persistent session while the member is
away. Ending the session instead (MQTT 5 session expiry, persistent_client_expiration) drops what it queued: those
messages were acknowledged to the devices, so they would be lost. Releasing the session resumes it, unsubscribes
it, stores and acknowledges what it held: a live worker does it once the gone worker's membership lease expired
(`ingest/members.py`), an operator with `koprogo-iot ingest --release ID`. Counted here key by key: nothing lost,
and from then on the live worker receives the whole stream.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from koprogo_iot.bench.services import MosquittoServer
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.loadgen.fleet import Fleet
from tests.conftest import eventually
from tests.faults.test_faults import (  # noqa: F401  (fixtures)
    Publisher,
    broker,
    fleet_db,
    start_worker,
    stored_as_published,
    subscribed,
    worker_env,
)
from tests.faults.test_sigterm import scrape

pytestmark = [pytest.mark.mosquitto, pytest.mark.postgres]

COUNT = 1000
RATE = 1000.0
RELEASE_AFTER = 3  # seconds: short, for the test (the default is 300)


async def release(env: dict[str, str], client_id: str) -> int:
    """Run `koprogo-iot ingest --release client_id`; the number of messages it says it stored."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "koprogo_iot.cli",
        "ingest",
        "--release",
        client_id,
        env=os.environ | env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, output.decode()
    found = re.search(rf"released the session of {client_id}: (\d+) messages", output.decode())
    assert found, output.decode()
    return int(found[1])


async def test_a_released_dead_worker_holds_nothing_back_and_loses_nothing(
    fleet_db: tuple[str, Fleet],  # noqa: F811
    broker: MosquittoServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    url, fleet = fleet_db
    env = worker_env(url, broker)
    live = await start_worker(env, "share-live", tmp_path)
    dead = await start_worker(env, "share-dead", tmp_path)
    try:
        for worker in (live, dead):
            await subscribed(worker)
        await asyncio.to_thread(dead.stop, True)  # kill -9: its session stays, subscribed, and keeps its share
        device = await broker.device(fleet.organization.id)
        base = utcnow() - timedelta(minutes=30)
        before = Publisher(device, fleet, count=COUNT, rate=RATE, start_time=base)
        before.start()
        await asyncio.to_thread(before.join, 30)
        assert before.acknowledged == COUNT  # the broker has every message: stored by the live worker, or queued

        held = await release(env, "share-dead")

        assert held > 0  # the dead worker's session held part of the stream back
        await eventually(lambda: stored_as_published(url, before), timeout=30)  # and gave it up, losing nothing
        stored_by_live = await scrape(live, "koprogo_readings_stored_total")
        assert stored_by_live + held == COUNT

        # From now on the dead worker, still dead, has no share: the live worker receives every reading.
        after = Publisher(device, fleet, count=COUNT, rate=RATE, start_time=base + timedelta(minutes=10))
        after.start()
        await asyncio.to_thread(after.join, 30)
        await eventually(lambda: stored_as_published(url, before, after), timeout=30)
        assert await scrape(live, "koprogo_readings_stored_total") == stored_by_live + COUNT
    finally:
        await asyncio.to_thread(live.stop)
    assert "Traceback" not in (tmp_path / "share-live.log").read_text()


async def test_a_worker_gone_longer_than_release_after_has_its_share_taken_by_a_live_one(
    fleet_db: tuple[str, Fleet],  # noqa: F811
    broker: MosquittoServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    url, fleet = fleet_db
    env = worker_env(url, broker) | {"KOPROGO_INGEST_RELEASE_AFTER": str(RELEASE_AFTER)}
    live = await start_worker(env, "auto-live", tmp_path)
    dead = await start_worker(env, "auto-dead", tmp_path)
    try:
        for worker in (live, dead):
            await subscribed(worker)
        await asyncio.to_thread(dead.stop, True)  # kill -9, and it stays dead
        device = await broker.device(fleet.organization.id)
        base = utcnow() - timedelta(minutes=30)
        before = Publisher(device, fleet, count=COUNT, rate=RATE, start_time=base)
        before.start()
        await asyncio.to_thread(before.join, 30)
        # Its share waits in its session until its lease expires; then the live worker releases it and stores it.
        await eventually(lambda: stored_as_published(url, before), timeout=30)
        log = (tmp_path / "auto-live.log").read_text()
        assert "ingest worker auto-dead has been gone for more than 3 s" in log
        stored_by_live = await scrape(live, "koprogo_readings_stored_total")

        after = Publisher(device, fleet, count=COUNT, rate=RATE, start_time=base + timedelta(minutes=10))
        after.start()
        await asyncio.to_thread(after.join, 30)
        await eventually(lambda: stored_as_published(url, before, after), timeout=30)
        assert await scrape(live, "koprogo_readings_stored_total") == stored_by_live + COUNT
    finally:
        await asyncio.to_thread(live.stop)
    log = (tmp_path / "auto-live.log").read_text()
    assert log.count("has been gone for more than") == 1  # released once
    assert "Traceback" not in log
