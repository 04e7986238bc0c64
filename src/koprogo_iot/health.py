"""Health of a server process for its probes: `/healthz` (the process answers) and `/readyz` (what it needs answers).

A readiness check is a coroutine returning None when its dependency is fine, else why it is not; all of a
process's checks run at once, each within `CHECK_TIMEOUT`. `bootstrap` chooses the checks of each process: the API
checks its database, migrations, broker, Redis and background jobs; an ingest worker its subscription, database,
migrations and Redis. Workers serve the same endpoints beside `/metrics` on their metrics port (`probe_app`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Generator, Iterator, Mapping
from dataclasses import dataclass, field

import prometheus_client
import uvicorn
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from koprogo_iot import __version__, periodic
from koprogo_iot.live.bus import LiveBus
from koprogo_iot.mqtt_codec import DISCONNECT, connack_reason, connect_packet
from koprogo_iot.mqtt_url import MqttEndpoint
from koprogo_iot.storage.ports import DatabaseMaintenance

Check = Callable[[], Awaitable[str | None]]
CHECK_TIMEOUT = 2.0  # seconds; below the probes' own timeout (3 s in the manifests)
OK = "ok"


@dataclass(frozen=True, slots=True)
class Readiness:
    """The named checks of one process."""

    checks: Mapping[str, Check] = field(default_factory=dict)

    async def report(self) -> dict[str, str]:
        """Each check's answer: "ok", or why not."""
        names = list(self.checks)
        answers = await asyncio.gather(*(_bounded(self.checks[name]) for name in names))
        return {name: answer or OK for name, answer in zip(names, answers, strict=True)}


async def _bounded(check: Check) -> str | None:
    try:
        return await asyncio.wait_for(check(), CHECK_TIMEOUT)
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT:g} s"
    except Exception as exc:  # a probe reports; it never crashes the process it describes
        return f"{type(exc).__name__}: {exc}"


def is_ready(report: Mapping[str, str]) -> bool:
    return all(answer == OK for answer in report.values())


async def readiness_response(readiness: Readiness) -> JSONResponse:
    """200 with every check "ok", else 503 with what is wrong: what `/readyz` answers, on the API and the workers."""
    report = await readiness.report()
    ready = is_ready(report)
    body = {"status": "ready" if ready else "not ready", "checks": report}
    return JSONResponse(body, status_code=200 if ready else 503)


def liveness() -> dict[str, str]:
    """`/healthz`: the process's event loop answers (nothing else: a dependency down must not restart it)."""
    return {"status": "alive", "version": __version__}


# --- checks


def database_checks(maintenance: DatabaseMaintenance) -> dict[str, Check]:
    """ "database": it answers a query; "migrations": every migration shipped with this release is applied."""

    async def database() -> str | None:
        await maintenance.pending_migrations()
        return None

    async def migrations() -> str | None:
        pending = await maintenance.pending_migrations()
        if pending:
            return f"{len(pending)} migration(s) not applied ({', '.join(pending)}): run koprogo-iot migrate"
        return None

    return {"database": database, "migrations": migrations}


def bus_check(bus: LiveBus) -> Check:
    return bus.ping


def broker_check(endpoint: MqttEndpoint, tls: ssl.SSLContext | None = None) -> Check:
    """The broker accepts `endpoint`'s login: a CONNECT and its CONNACK, then DISCONNECT."""

    async def broker() -> str | None:
        context = tls if tls is not None or not endpoint.tls else ssl.create_default_context()
        try:
            reader, writer = await asyncio.open_connection(endpoint.host, endpoint.port, ssl=context)
        except OSError as exc:
            return f"cannot reach the MQTT broker at {endpoint}: {exc}"
        try:
            client_id = f"koprogo-probe-{uuid.uuid4().hex[:12]}"
            writer.write(
                connect_packet(client_id, endpoint.username, endpoint.password, keepalive=10, clean_session=True)
            )
            connack = await reader.readexactly(4)
            if connack[0] != 0x20:
                return f"the MQTT broker at {endpoint} answered CONNECT with packet type {connack[0] >> 4}"
            if connack[3] != 0:
                return f"the MQTT broker at {endpoint} refused the login: {connack_reason(connack[3])}"
            writer.write(DISCONNECT)
            return None
        except (OSError, asyncio.IncompleteReadError) as exc:
            return f"the MQTT broker at {endpoint} closed the connection: {exc}"
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()

    return broker


def subscription_check(subscribed: asyncio.Event, last_error: Callable[[], str | None]) -> Check:
    """An ingest worker is subscribed on the broker (else the reason its last connection attempt failed)."""

    async def subscription() -> str | None:
        if subscribed.is_set():
            return None
        return f"not subscribed on the MQTT broker: {last_error() or 'connecting'}"

    return subscription


def jobs_check(expected: Collection[str]) -> Check:
    """Every background job of the process is alive and recent (`periodic.JobStatus.problem`); the `expected` ones
    must also have started."""

    async def jobs() -> str | None:
        problems = [f"{name}: not started" for name in expected if name not in periodic.JOBS]
        problems += [p for p in (status.problem() for status in list(periodic.JOBS.values())) if p]
        return "; ".join(problems) or None

    return jobs


# --- background jobs as metrics


class JobsCollector(Collector):
    """Each background job's state at scrape time: how long since it last succeeded, and its failures in a row."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = time.monotonic()
        age = GaugeMetricFamily(
            "koprogo_job_last_success_age_seconds",
            "Seconds since the job's last successful run (since it started, before the first)",
            labels=["job"],
        )
        failures = GaugeMetricFamily(
            "koprogo_job_consecutive_failures", "Failed runs of the job in a row", labels=["job"]
        )
        interval = GaugeMetricFamily(
            "koprogo_job_interval_seconds", "Seconds between two runs of the job", labels=["job"]
        )
        for status in list(periodic.JOBS.values()):
            since = status.last_success if status.last_success is not None else status.started
            age.add_metric([status.name], now - since)
            failures.add_metric([status.name], status.failures)
            interval.add_metric([status.name], status.interval)
        yield from (age, failures, interval)


prometheus_client.REGISTRY.register(JobsCollector())


# --- the event loop's own health

LOOP_LAG = prometheus_client.Histogram(
    "koprogo_event_loop_lag_seconds",
    "How late the event loop ran a 100 ms timer: the time something else held the loop (a blocking call, a heavy "
    "job), during which no request, WebSocket message or MQTT packet was served",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
LOOP_TICK = 0.1


async def watch_event_loop() -> None:
    """Observe the loop's lag every `LOOP_TICK` until cancelled (the API, `up` and `jobs` run it)."""
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(LOOP_TICK)
        LOOP_LAG.observe(max(0.0, loop.time() - before - LOOP_TICK))


# --- the workers' probe server


def probe_app(readiness: Readiness) -> Starlette:
    """`/metrics`, `/healthz` and `/readyz` of a process that serves no API (an ingest worker)."""

    async def metrics(_: Request) -> Response:
        return Response(prometheus_client.generate_latest(), media_type=prometheus_client.CONTENT_TYPE_LATEST)

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse(liveness())

    async def readyz(_: Request) -> JSONResponse:
        return await readiness_response(readiness)

    return Starlette(routes=[Route("/metrics", metrics), Route("/healthz", healthz), Route("/readyz", readyz)])


class QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signals to its process: uvicorn's own handling would re-raise SIGTERM once
    it stopped, killing the process before it could store and acknowledge what it holds."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield
