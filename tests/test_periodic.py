"""Periodic jobs survive failed runs and report them (what health checks read)."""

import asyncio
import time

from koprogo_iot import bootstrap, health, periodic
from koprogo_iot.domain.errors import StorageUnavailable
from koprogo_iot.storage.ports import Storage
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


def test_a_failed_run_is_retried_sooner_than_its_interval_and_later_each_time() -> None:
    assert [periodic.retry_delay(86_400, n) for n in (1, 2, 3, 20)] == [5, 10, 20, 3600]
    assert periodic.retry_delay(0.5, 1) == 0.5  # a job run more often than that retries at its own pace


async def test_housekeeping_keeps_its_other_jobs_running_when_one_raises(storage: Storage) -> None:
    """Partition maintenance raising a bug once stopped every background job, silently (issue 15)."""

    async def broken(_now: object) -> list[str]:
        raise RuntimeError("relation iot_readings_default does not exist")

    storage.maintenance.maintain_partitions = broken  # type: ignore[method-assign]
    task = asyncio.create_task(bootstrap.housekeeping(storage))
    try:
        await eventually(lambda: _true("maintenance" in periodic.JOBS and periodic.JOBS["maintenance"].failures > 0))
        problem = periodic.JOBS["maintenance"].problem()
        assert problem is not None and "RuntimeError: relation iot_readings_default does not exist" in problem
        await eventually(
            lambda: _true("rollups" in periodic.JOBS and periodic.JOBS["rollups"].last_success is not None)
        )
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _lags_over(threshold: float) -> float:
    """How many observed lags were above `threshold` seconds (a bucket boundary)."""
    samples = {s.labels["le"]: s.value for s in health.LOOP_LAG.collect()[0].samples if s.name.endswith("_bucket")}
    return samples["+Inf"] - samples[str(threshold)]


async def test_a_blocked_event_loop_is_measured() -> None:
    before = _lags_over(0.1)
    watcher = asyncio.create_task(health.watch_event_loop())
    try:
        await asyncio.sleep(0)  # the watcher's timer is set
        time.sleep(0.3)  # a blocking call holds the loop, as a heavy job would
        await eventually(lambda: _true(_lags_over(0.1) > before))
    finally:
        watcher.cancel()
