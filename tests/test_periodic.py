"""Periodic jobs survive failed runs and report them (what health checks read)."""

import asyncio

from koprogo_iot import periodic
from koprogo_iot.domain.errors import StorageUnavailable
from tests.conftest import eventually


async def test_a_failing_job_is_reported_then_recovers() -> None:
    failures: list[Exception] = [StorageUnavailable("database down"), RuntimeError("bug")]
    fixed = asyncio.Event()

    async def job() -> None:
        if failures:
            raise failures.pop(0)
        await fixed.wait()  # the third run waits until the test has looked

    task = asyncio.create_task(periodic.every(0.01, "test job", job))
    try:
        await eventually(lambda: _true("test job" in periodic.JOBS))
        status = periodic.JOBS["test job"]
        await eventually(lambda: _true(status.failures == 2))
        assert status.problem() == "test job: 2 failed run(s) in a row, last: RuntimeError: bug"
        fixed.set()
        await eventually(lambda: _true(status.problem() is None and status.last_success is not None))
    finally:
        task.cancel()


def test_a_job_without_success_for_three_intervals_is_late() -> None:
    status = periodic.JobStatus("rollups", interval=60, started=1000.0)
    assert status.problem(now=1000.0 + 180) is None
    assert status.problem(now=1000.0 + 200) == "rollups: no successful run for 200 s (every 60 s)"
    status.last_success = 1190.0
    assert status.problem(now=1200.0) is None


async def _true(value: bool) -> bool:
    return value


async def test_a_stopped_job_is_no_longer_reported() -> None:
    async def job() -> None:
        return None

    task = asyncio.create_task(periodic.every(60, "short-lived job", job))
    await eventually(lambda: _true("short-lived job" in periodic.JOBS))
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert "short-lived job" not in periodic.JOBS
