"""A worker gone for good (its host removed, a scale-down) no longer holds its share once its session is released.

Mosquitto keeps queueing a shared subscription's messages to a member's persistent session while the member is
away. Ending the session instead (MQTT 5 session expiry, persistent_client_expiration) drops what it queued: those
messages were acknowledged to the devices, so they would be lost. `koprogo-iot ingest --release ID` resumes the
session, unsubscribes it, stores and acknowledges what it held: counted here key by key, nothing lost, and from
then on the live worker receives the whole stream.
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
