"""Background jobs that run every few seconds in a server process, and must outlive any one failed run.

Each job's state is kept in `JOBS` (by name) so that the process can report it: a job failing or late is not
healthy, whatever HTTP answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from koprogo_iot.domain.errors import BrokerUnavailable, StorageUnavailable

log = logging.getLogger(__name__)
LATE_AFTER = 3  # intervals without a successful run before a job counts as late
RETRY_FIRST, RETRY_MAX = 5.0, 3600.0  # seconds before retrying a failed run, doubling


@dataclass(slots=True)
class JobStatus:
    name: str
    interval: float
    started: float  # time.monotonic() when the job began
    last_success: float | None = None
    last_error: str | None = None
    failures: int = 0  # consecutive failed runs

    def problem(self, now: float | None = None) -> str | None:
        """Why the job is not healthy (failing, or no success for `LATE_AFTER` intervals); None when it is."""
        now = time.monotonic() if now is None else now
        if self.failures:
            return f"{self.name}: {self.failures} failed run(s) in a row, last: {self.last_error}"
        since = self.last_success if self.last_success is not None else self.started
        if now - since > LATE_AFTER * self.interval + 1:
            return f"{self.name}: no successful run for {now - since:.0f} s (every {self.interval:g} s)"
        return None


JOBS: dict[str, JobStatus] = {}


def retry_delay(interval: float, failures: int) -> float:
    """After `failures` failed runs in a row: 5 s, 10 s, 20 s... up to the job's interval (at most an hour), so a
    daily job that failed is not left broken for a day, and a failing one does not hammer what it depends on."""
    return min(interval, RETRY_MAX, RETRY_FIRST * 2.0 ** (failures - 1))


async def every(interval: float, name: str, job: Callable[[], Awaitable[object]]) -> None:
    """Run `job` every `interval` seconds until cancelled. A database or broker outage is logged and retried; so
    is any other error: a bug in one run must not stop the process (the API) this runs in."""
    status = JOBS[name] = JobStatus(name, interval, time.monotonic())
    try:
        while True:
            try:
                await job()
            except (StorageUnavailable, BrokerUnavailable) as exc:
                status.failures, status.last_error = status.failures + 1, str(exc)
                delay = retry_delay(interval, status.failures)
                log.warning("%s: retrying in %.0f s: %s", name, delay, exc)
            except Exception as exc:
                status.failures, status.last_error = status.failures + 1, f"{type(exc).__name__}: {exc}"
                delay = retry_delay(interval, status.failures)
                log.exception("%s: run failed, retrying in %.0f s", name, delay)
            else:
                status.failures, status.last_success, delay = 0, time.monotonic(), interval
            await asyncio.sleep(delay)
    finally:
        if JOBS.get(name) is status:  # a job stopped is no longer reported (readiness names the ones it expects)
            del JOBS[name]
