"""`koprogo-iot ingest --workers N`: N ingest worker processes, each restarted when it exits.

A worker that is gone leaves its share of the shared subscription queued in its persistent session until it comes
back, so it must come back: each is restarted (after a short, growing pause if it keeps failing), under the same
client id, so it resumes its own session. A worker that does not come back within KOPROGO_INGEST_RELEASE_AFTER
(fewer workers from now on, a host removed) has its session released by a live one (`ingest/members.py`), or at
once with `koprogo-iot ingest --release ID`.
Worker i has the client id `<KOPROGO_MQTT_CLIENT_ID>-i` (without one: `koprogo-ingest-<host>-i`) and, when
KOPROGO_INGEST_METRICS_PORT is set, its probes on that port + i - 1. SIGTERM or SIGINT stops every worker
gracefully (each stores and acknowledges what it read); a worker's start-up error (exit status 2, a configuration
that a restart would not cure) stops them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

from koprogo_iot.config import Settings

log = logging.getLogger(__name__)

RESTART_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0)  # seconds before restarting a worker that exited, growing
STABLE = 30.0  # seconds a worker must have run for its next exit to be restarted at the shortest delay again
STARTUP_ERROR = 2  # the CLI's status for a start-up error


def client_id(settings: Settings, index: int) -> str:
    """Worker i's id: `<KOPROGO_MQTT_CLIENT_ID>-i`, or without one, the default id of worker index i on this host."""
    if settings.mqtt.client_id:
        return f"{settings.mqtt.client_id}-{index}"
    return settings.model_copy(
        update={"ingest": settings.ingest.model_copy(update={"worker_index": index})}
    ).ingest_client_id()


def worker_arguments(argv: Sequence[str], settings: Settings, index: int) -> list[str]:
    """The command line of worker `index` (from 1): the supervisor's own, made a single worker of its own."""
    extra = ["--workers", "1", "--mqtt-client-id", client_id(settings, index)]
    if settings.ingest.metrics_port:
        extra += ["--ingest-metrics-port", str(settings.ingest.metrics_port + index - 1)]
    return [*argv, *extra]  # argparse keeps the last value of a repeated flag


async def supervise(argv: Sequence[str], settings: Settings, workers: int) -> int:
    """Run `workers` workers until SIGTERM or SIGINT (0), or until one fails to start (2)."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    keepers = [
        asyncio.create_task(
            _keep_running(index, client_id(settings, index), worker_arguments(argv, settings, index), stopping)
        )
        for index in range(1, workers + 1)
    ]
    signalled = asyncio.create_task(stopping.wait())
    await asyncio.wait([signalled, *keepers], return_when=asyncio.FIRST_COMPLETED)
    stopping.set()  # a signal, or a worker that cannot start: every worker stops
    statuses = await asyncio.gather(*keepers)
    return STARTUP_ERROR if STARTUP_ERROR in statuses else 0


async def _keep_running(index: int, client: str, arguments: list[str], stopping: asyncio.Event) -> int:
    """Run worker `index`, again whenever it exits, until `stopping`; its last exit status."""
    failures = 0
    while True:
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "koprogo_iot.cli", *arguments)
        log.info("started ingest worker %d (pid %d, client id %s)", index, process.pid, client)
        started = asyncio.get_running_loop().time()
        exited = asyncio.create_task(process.wait())
        stopped = asyncio.create_task(stopping.wait())
        await asyncio.wait([exited, stopped], return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not exited.done():
            process.send_signal(signal.SIGTERM)  # it drains: stores and acknowledges what it read, then exits
            return await exited
        status = exited.result()
        if stopping.is_set():
            return status
        if status == STARTUP_ERROR:
            log.error("ingest worker %d could not start (see its error above); stopping every worker", index)
            return status
        ran = asyncio.get_running_loop().time() - started
        failures = 0 if ran > STABLE else failures + 1
        delay = RESTART_DELAYS[min(failures, len(RESTART_DELAYS) - 1)]
        log.warning(
            "ingest worker %d exited with status %d after %.0f s; restarting in %.1f s", index, status, ran, delay
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), delay)
        if stopping.is_set():
            return status
