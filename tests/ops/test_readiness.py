"""`/healthz` and `/readyz` of the API over real dependencies: each failure is reported by name, as 503."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from koprogo_iot import periodic
from koprogo_iot.api.app import create_app
from koprogo_iot.bench.services import RedisServer
from koprogo_iot.bootstrap import api_readiness, build_services, open_storage
from koprogo_iot.config import MqttSettings, Settings
from koprogo_iot.health import Readiness, broker_check, jobs_check
from koprogo_iot.live.memory import MemoryBus
from koprogo_iot.live.redis_streams import RedisStreamBus
from koprogo_iot.mqtt_url import MqttEndpoint
from koprogo_iot.storage.ports import Storage
from tests.conftest import ENCRYPTION_KEY, Mosquitto, eventually


async def probe(storage: Storage, readiness: Readiness, path: str = "/readyz") -> httpx.Response:
    """What the API built over `storage` answers at `path`."""
    app = create_app(build_services(storage, secret="test-secret-" + "x" * 40), readiness)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://koprogo.test") as client:
        return await client.get(path)


@pytest.fixture(autouse=True)
def own_jobs() -> Iterator[None]:
    """Only this test's background jobs count (`periodic.JOBS` is the process's)."""
    saved = dict(periodic.JOBS)
    periodic.JOBS.clear()
    yield
    periodic.JOBS.clear()
    periodic.JOBS.update(saved)


async def test_ready_when_database_migrated_and_jobs_healthy(storage: Storage) -> None:
    readiness = api_readiness(Settings(), storage, MemoryBus(), [])
    response = await probe(storage, readiness)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok", "live bus": "ok", "jobs": "ok"},
    }
    alive = await probe(storage, readiness, "/healthz")
    assert alive.status_code == 200 and alive.json()["status"] == "alive"


async def test_not_ready_while_migrations_are_pending(tmp_path: Path) -> None:
    storage = await open_storage(f"sqlite:///{tmp_path / 'new.db'}", ENCRYPTION_KEY, apply_migrations=False)
    try:
        response = await probe(storage, api_readiness(Settings(), storage, MemoryBus(), []))
    finally:
        await storage.close()
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == "ok"
    assert "not applied" in checks["migrations"] and "koprogo-iot migrate" in checks["migrations"]


async def test_a_failing_or_missing_background_job_makes_it_unready(storage: Storage) -> None:
    async def broken() -> None:
        raise RuntimeError("rollup table locked")

    task = asyncio.create_task(periodic.every(60, "rollups", broken))
    try:

        async def failed() -> bool:
            status = periodic.JOBS.get("rollups")
            return status is not None and status.failures > 0

        await eventually(failed)
        response = await probe(storage, api_readiness(Settings(), storage, MemoryBus(), ["rollups", "notifier"]))
    finally:
        task.cancel()
    assert response.status_code == 503
    jobs = response.json()["checks"]["jobs"]
    assert "notifier: not started" in jobs and "rollups: 1 failed run(s) in a row" in jobs and "locked" in jobs


async def test_a_late_job_is_reported() -> None:
    periodic.JOBS["window rules"] = periodic.JobStatus("window rules", interval=60, started=time.monotonic() - 1000)
    problem = await jobs_check(["window rules"])()
    assert problem is not None and "window rules: no successful run for" in problem


async def test_redis_down_is_reported_then_recovers(storage: Storage) -> None:
    with RedisServer() as redis:
        bus = RedisStreamBus(redis.url)
        readiness = api_readiness(Settings(), storage, bus, [])
        assert (await probe(storage, readiness)).status_code == 200
        redis.stop()
        down = await probe(storage, readiness)
        assert down.status_code == 503 and "Redis" in down.json()["checks"]["live bus"]
        redis.start()
        assert (await probe(storage, readiness)).status_code == 200
        await bus.close()


@pytest.mark.mosquitto
async def test_the_broker_check_logs_in_with_the_admin_url(storage: Storage, mosquitto: Mosquitto) -> None:
    settings = Settings(mqtt=MqttSettings(admin_url=mosquitto.server.admin_url))
    ready = await probe(storage, api_readiness(settings, storage, MemoryBus(), []))
    assert ready.status_code == 200 and ready.json()["checks"]["broker"] == "ok"
    wrong = MqttEndpoint("127.0.0.1", mosquitto.server.port, "koprogo-admin", "not the password")
    assert "refused the login: not authorized" in (await broker_check(wrong)() or "")
    closed = MqttEndpoint("127.0.0.1", 1, "koprogo-admin", "x")
    assert "cannot reach the MQTT broker" in (await broker_check(closed)() or "")
