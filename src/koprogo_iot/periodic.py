"""Background jobs that run every few seconds in a server process, and must outlive any one failed run."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from koprogo_iot.domain.errors import BrokerUnavailable, StorageUnavailable

log = logging.getLogger(__name__)


async def every(interval: float, name: str, job: Callable[[], Awaitable[object]]) -> None:
    """Run `job` every `interval` seconds until cancelled. A database or broker outage is logged and retried; so
    is any other error: a bug in one run must not stop the process (the API) this runs in."""
    while True:
        try:
            await job()
        except (StorageUnavailable, BrokerUnavailable) as exc:
            log.warning("%s: retrying in %.0f s: %s", name, interval, exc)
        except Exception:
            log.exception("%s: run failed, retrying in %.0f s", name, interval)
        await asyncio.sleep(interval)
