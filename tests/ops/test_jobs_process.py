"""`koprogo-iot jobs`: the background jobs in a process of their own, the API replicas without them."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import eventually, free_port
from tests.support.processes import answers, production_env

pytestmark = pytest.mark.postgres


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        process.kill()
        _, err = process.communicate()
        assert b"Traceback" not in err, err.decode()


async def test_the_jobs_run_in_their_own_process_and_the_api_without_them(
    postgres_url: str, processes: list[subprocess.Popen[bytes]]
) -> None:
    jobs_port, api_port = free_port(), free_port()
    command = [sys.executable, "-m", "koprogo_iot.cli"]
    jobs_env = production_env(postgres_url, KOPROGO_NOTIFY_ENABLED="false", KOPROGO_JOBS_METRICS_PORT=str(jobs_port))
    processes.append(jobs := subprocess.Popen([*command, "jobs"], env=jobs_env, stderr=subprocess.PIPE))
    api_env = production_env(
        postgres_url, KOPROGO_NOTIFY_ENABLED="false", KOPROGO_HTTP_PORT=str(api_port), KOPROGO_JOBS_IN_API="false"
    )
    processes.append(subprocess.Popen([*command, "api"], env=api_env, stderr=subprocess.PIPE))
    async with (
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{jobs_port}", timeout=5) as jobs_probe,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=5) as api,
    ):
        await eventually(lambda: answers(jobs_probe, "/readyz"), timeout=60)  # every job has run once and succeeded
        jobs_metrics = (await jobs_probe.get("/metrics")).text
        for job in ("rollups", "window rules", "maintenance", "device logins"):
            assert f'koprogo_job_last_success_age_seconds{{job="{job}"}}' in jobs_metrics
        await eventually(lambda: answers(api, "/readyz"), timeout=60)
        assert "koprogo_job_last_success_age_seconds{" not in (await api.get("/metrics")).text
    signalled = time.monotonic()
    jobs.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(jobs.wait, 10) == 0
    assert time.monotonic() - signalled < 10
