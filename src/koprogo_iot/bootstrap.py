"""The one place where concrete adapters are chosen and the processes are assembled."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

import prometheus_client
import uvicorn

from koprogo_iot import demo
from koprogo_iot.alerting.evaluator import WindowRules
from koprogo_iot.api.app import create_app
from koprogo_iot.bacnet.poller import BacnetPoller
from koprogo_iot.bacnet.publisher import ReadingPublisher
from koprogo_iot.broker.dynsec import DynamicSecurity
from koprogo_iot.broker.embedded import EmbeddedBroker
from koprogo_iot.config import Settings
from koprogo_iot.devices import registry
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.credentials import INGEST_GROUP
from koprogo_iot.domain.errors import StorageRefused, StorageUnavailable
from koprogo_iot.domain.retention import DEFAULT_RAW_RETENTION_MONTHS
from koprogo_iot.domain.sensors import DeviceFormat
from koprogo_iot.health import (
    Check,
    QuietServer,
    Readiness,
    broker_check,
    database_checks,
    jobs_check,
    probe_app,
    subscription_check,
    watch_event_loop,
)
from koprogo_iot.ingest.integrations import IntegrationRunner
from koprogo_iot.ingest.members import Membership
from koprogo_iot.ingest.mqtt_worker import MqttIngestWorker
from koprogo_iot.ingest.pipeline import IngestLimits, Pipeline
from koprogo_iot.ingest.topics import Origin
from koprogo_iot.live.bus import LiveBus
from koprogo_iot.live.memory import MemoryBus
from koprogo_iot.live.redis_streams import RedisStreamBus
from koprogo_iot.mqtt_url import MqttEndpoint
from koprogo_iot.notify.channels import check_template
from koprogo_iot.notify.notifier import Notifier
from koprogo_iot.periodic import every
from koprogo_iot.services.audit import AuditLog
from koprogo_iot.services.container import Services
from koprogo_iot.services.credentials import BrokerAccounts, DatabaseOnly, DeviceLogins
from koprogo_iot.startup import StartupError, ensure_free, listen, redacted
from koprogo_iot.storage.ports import Storage
from koprogo_iot.storage.sql.alert_rules import SqlAlertRules
from koprogo_iot.storage.sql.alerts import SqlAlerts
from koprogo_iot.storage.sql.audit import SqlAudit
from koprogo_iot.storage.sql.bacnet import SqlBacnetPoints
from koprogo_iot.storage.sql.credentials import SqlCredentials
from koprogo_iot.storage.sql.database import Database
from koprogo_iot.storage.sql.dead_letters import SqlDeadLetters
from koprogo_iot.storage.sql.devices import SqlDevices
from koprogo_iot.storage.sql.integrations import SqlIntegrations
from koprogo_iot.storage.sql.ista import SqlIsta
from koprogo_iot.storage.sql.leases import SqlLeases
from koprogo_iot.storage.sql.maintenance import SqlMaintenance
from koprogo_iot.storage.sql.notifications import SqlNotifications, seal_stored_urls
from koprogo_iot.storage.sql.postgres import PostgresDatabase
from koprogo_iot.storage.sql.readings import SqlReadings
from koprogo_iot.storage.sql.rollups import SqlRollups
from koprogo_iot.storage.sql.sealing import Sealer
from koprogo_iot.storage.sql.sensors import SqlSensors
from koprogo_iot.storage.sql.sources import SqlReadingSource
from koprogo_iot.storage.sql.sqlite import SqliteDatabase
from koprogo_iot.storage.sql.tenancy import SqlTenancy

log = logging.getLogger(__name__)

# What to change when a start-up fails, named in its one-line error.
HTTP_SETTING = "KOPROGO_HTTP_PORT (--http-port) or KOPROGO_HTTP_HOST (--http-host)"
MQTT_PORT_SETTING = "KOPROGO_MQTT_PORT (--mqtt-port) or KOPROGO_MQTT_HOST (--mqtt-host)"
METRICS_SETTING = "KOPROGO_INGEST_METRICS_PORT (--ingest-metrics-port) or KOPROGO_HTTP_HOST (--http-host)"
JOBS_METRICS_SETTING = "KOPROGO_JOBS_METRICS_PORT (--jobs-metrics-port) or KOPROGO_HTTP_HOST (--http-host)"
DATABASE_SETTING = "KOPROGO_DATABASE_URL (--database-url)"
BROKER_SETTING = "KOPROGO_MQTT_URL (--mqtt-url)"
ADMIN_SETTING = "KOPROGO_MQTT_ADMIN_URL (--mqtt-admin-url)"
REDIS_SETTING = "KOPROGO_REDIS_URL (--redis-url)"
SUBSCRIBE_TIMEOUT = 30.0  # seconds `up` waits for its worker's subscription before giving up


async def open_database(url: str) -> Database:
    """The database of `sqlite:///path` or `postgresql://...`."""
    if url.startswith("sqlite:///"):
        return await SqliteDatabase.open(url.removeprefix("sqlite:///"))
    if url.startswith(("postgres://", "postgresql://")):
        return await PostgresDatabase.open(url)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///path or postgresql://...")


def storage_over(db: Database, encryption_key: str) -> Storage:
    """Every storage port over `db`: the SQL adapters serve both dialects (each module holds its PostgreSQL fast
    paths beside the portable statements). `encryption_key` seals the secrets stored (`Settings.encryption_secret`)."""
    sealer = Sealer(encryption_key)
    return Storage(
        tenancy=SqlTenancy(db),
        sensors=SqlSensors(db),
        readings=SqlReadings(db),
        dead_letters=SqlDeadLetters(db),
        devices=SqlDevices(db),
        integrations=SqlIntegrations(db, sealer),
        credentials=SqlCredentials(db),
        alerts=SqlAlerts(db),
        alert_rules=SqlAlertRules(db),
        notifications=SqlNotifications(db, sealer),
        ista=SqlIsta(db),
        audit=SqlAudit(db),
        source=SqlReadingSource(db),
        rollups=SqlRollups(db),
        leases=SqlLeases(db),
        maintenance=SqlMaintenance(db, {8: seal_stored_urls(sealer)}),
        bacnet=SqlBacnetPoints(db),
    )


async def open_storage(url: str, encryption_key: str, apply_migrations: bool = True) -> Storage:
    """The storage ports over the database of `url`, its schema brought up to date."""
    storage = storage_over(await open_database(url), encryption_key)
    if apply_migrations:
        await storage.maintenance.migrate()
    return storage


async def open_server_storage(settings: Settings, apply_migrations: bool) -> Storage:
    """`open_storage` for a server process: a database it cannot open is a start-up error naming the setting."""
    url = settings.resolved_database_url
    try:
        return await open_storage(url, settings.encryption_secret(), apply_migrations)
    except (StorageUnavailable, StorageRefused, OSError, ValueError) as exc:
        raise StartupError(f"cannot open the database {redacted(url)} ({exc})", DATABASE_SETTING) from exc


# Seconds between attempts to open the database while it is down, with up to a quarter of random jitter (workers
# started together do not knock together).
STORAGE_WAIT_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0)


async def wait_for_storage(settings: Settings, waiting: Callable[[str], None]) -> Storage:
    """`open_server_storage` for a worker, which may start before the database: while the database is unavailable
    (down, refusing connections, full) it waits, one log line per attempt, telling `waiting` why; a wrong address,
    login or database name still stops the start-up."""
    url = settings.resolved_database_url
    attempt = 0
    while True:
        try:
            return await open_storage(url, settings.encryption_secret(), apply_migrations=False)
        except StorageUnavailable as exc:
            delay = STORAGE_WAIT_DELAYS[min(attempt, len(STORAGE_WAIT_DELAYS) - 1)] * random.uniform(1.0, 1.25)
            log.warning("the database %s is unavailable (%s); next attempt in %.1f s", redacted(url), exc, delay)
            waiting(f"waiting for the database: {exc}")
            attempt += 1
            await asyncio.sleep(delay)
        except (StorageRefused, OSError, ValueError) as exc:
            raise StartupError(f"cannot open the database {redacted(url)} ({exc})", DATABASE_SETTING) from exc


def build_services(
    storage: Storage,
    secret: str,
    token_ttl: timedelta = timedelta(hours=12),
    bus: LiveBus | None = None,
    broker: BrokerAccounts | None = None,
) -> Services:
    return Services.over(storage, secret, token_ttl, bus or MemoryBus(), check_template, broker)


def build_broker_accounts(settings: Settings) -> BrokerAccounts | None:
    """Mosquitto's dynamic security when its admin login is configured (the embedded broker is its own)."""
    if not settings.mqtt.admin_url:
        return None
    endpoint = MqttEndpoint.parse(settings.mqtt.admin_url)
    return DynamicSecurity(endpoint, settings.mqtt.tls_context() if endpoint.tls else None)


def tool_broker_accounts(settings: Settings) -> BrokerAccounts | None:
    """For the command-line tools: Mosquitto's administration; without an external broker, the embedded one of a
    running `up` reads the database itself at each login."""
    return build_broker_accounts(settings) if settings.mqtt.url else DatabaseOnly()


async def device_login(settings: Settings, storage: Storage, organization_id: UUID, name: str) -> MqttEndpoint:
    """The broker, with the organization's device login `name` (renewed: a tool's password lives as long as it)."""
    logins = DeviceLogins(storage.credentials, storage.tenancy, AuditLog(storage.audit), tool_broker_accounts(settings))
    credential, password = await logins.renew(organization_id, name)
    return mqtt_endpoint(settings).with_login(credential.username, password)


def _services(settings: Settings, storage: Storage, bus: LiveBus, broker: BrokerAccounts | None) -> Services:
    ttl = timedelta(minutes=settings.token_ttl_minutes)
    return build_services(storage, settings.token_secret(), ttl, bus, broker)


def build_bus(settings: Settings) -> LiveBus:
    """Redis Streams when configured (several processes), else in-process (embedded)."""
    return RedisStreamBus(settings.redis_url) if settings.redis_url else MemoryBus()


def build_pipeline(settings: Settings, storage: Storage, bus: LiveBus | None, origin: Origin | None = None) -> Pipeline:
    cfg = settings.ingest
    limits = IngestLimits(
        max_payload_bytes=cfg.max_payload_bytes,
        max_clock_skew=timedelta(seconds=cfg.max_clock_skew_seconds),
        rate_per_sensor=cfg.rate_per_sensor,
        burst_per_sensor=cfg.burst_per_sensor,
        dead_letters_per_minute=cfg.dead_letters_per_minute,
        dead_letters_per_organization_minute=cfg.dead_letters_per_organization_minute,
    )
    decoders = {DeviceFormat(name): decoder for name, decoder in registry.decoders().items()}
    return Pipeline(storage, limits, bus, decoders, origin)


def build_integrations(settings: Settings, storage: Storage, bus: LiveBus | None) -> IntegrationRunner:
    """Organizations' network servers, subscribed to by this ingest process when it holds their lease."""
    return IntegrationRunner(
        storage, lambda origin: build_pipeline(settings, storage, bus, origin), settings.ingest_client_id()
    )


def build_worker(
    settings: Settings, pipeline: Pipeline, endpoint: MqttEndpoint, shared: bool, client_id: str | None = None
) -> MqttIngestWorker:
    """`shared`: one of several workers behind the shared subscription only they may join (the embedded broker
    has one worker and no shared subscriptions). `client_id`: another worker's, to release its session (this
    process's gauges keep describing its own worker)."""
    group = INGEST_GROUP if shared else None
    tls = settings.mqtt.tls_context() if endpoint.tls else None
    # Mosquitto's admin, to let in the devices it holds until a worker listens (`broker config --hold-devices`).
    accounts = build_broker_accounts(settings) if settings.mqtt.url and client_id is None else None
    if shared and client_id is None and accounts is None:
        log.info(
            "no KOPROGO_MQTT_ADMIN_URL: this worker cannot let in devices a broker holds at its start "
            "(`broker config --hold-devices`); another worker must"
        )
    return MqttIngestWorker(
        pipeline,
        endpoint,
        client_id or settings.ingest_client_id(),
        group,
        tls=tls,
        max_packet=settings.mqtt.max_packet_bytes,
        primary=client_id is None,
        admit_devices=accounts.admit_held_devices if isinstance(accounts, DynamicSecurity) else None,
    )


def build_releaser(settings: Settings, storage: Storage, bus: LiveBus) -> Callable[[str], Awaitable[int]]:
    """What releases a gone worker's session (`MqttIngestWorker.release`), with a pipeline of its own."""

    async def release(client_id: str) -> int:
        pipeline = build_pipeline(settings, storage, bus)
        return await build_worker(settings, pipeline, mqtt_endpoint(settings), True, client_id).release()

    return release


# Rollups are refreshed by the processes that serve queries (which also catch up before answering), not by the
# ingest workers: recomputing an hour re-reads its raw readings and holds its dirty marks, which stalled
# ingestion at 10,000 readings/s when every worker refreshed every 5 s (benchmarks/README.md). Every 15 s, paced
# (`_refresh_rollups`): a minute's readings folded at once took the CPU from ingestion for seconds.
REFRESH_INTERVAL = 15.0


def build_notifier(settings: Settings, storage: Storage, bus: LiveBus) -> Notifier | None:
    return Notifier.configured(storage.notifications, settings.notify, bus) if settings.notify.enabled else None


SIGHTINGS_KEPT = timedelta(days=30)  # devices nobody reads, not heard for this long, are forgotten
MAINTENANCE_INTERVAL = 86_400.0  # partitions made ahead, raw readings expired, old sightings forgotten: daily
REFRESH_BATCH = 500  # stale (sensor, hour) marks per transaction
REFRESH_PAUSE = 2.0  # after each batch, this many times as long as it took: background work, a third of a core


async def _refresh_rollups(storage: Storage) -> None:
    """Recompute stale rollups, batch after batch while a whole batch was found, pausing between two batches.

    Paced because this is background work on a machine that also ingests: at 10,000 readings/s a refresh folding
    15 to 60 s of readings in one go held a core for seconds, and ingestion's latency rose above a second meanwhile
    (`bench live`, benchmarks/README.md). Queries catch up what is left before answering (`catch_up`)."""
    while True:
        started = time.monotonic()
        if await storage.rollups.refresh(REFRESH_BATCH) < REFRESH_BATCH:
            return
        await asyncio.sleep(REFRESH_PAUSE * (time.monotonic() - started))


RECONCILE_INTERVAL = 60.0  # a revocation the broker missed (it was down) is applied within this


async def housekeeping(
    storage: Storage,
    notifier: Notifier | None = None,
    logins: DeviceLogins | None = None,
    raw_retention_months: int = DEFAULT_RAW_RETENTION_MONTHS,
) -> None:
    """Background jobs of the API process: rollups every 15 s (paced), window alert rules and the broker's device
    logins every minute, notifications every few seconds, partitions, raw readings' retention and old device
    sightings once a day. Each job survives its own failures (`periodic.every`): one that raises is logged, retried
    and reported, and never stops the others."""
    jobs = [
        every(REFRESH_INTERVAL, "rollups", lambda: _refresh_rollups(storage)),
        WindowRules(storage).run(),
        every(MAINTENANCE_INTERVAL, "maintenance", lambda: _maintain(storage, raw_retention_months)),
    ]
    if notifier is not None:
        jobs.append(notifier.run())
    if logins is not None:
        jobs.append(every(RECONCILE_INTERVAL, "device logins", logins.reconcile))
    tasks = [asyncio.create_task(job) for job in jobs]
    try:
        await asyncio.gather(*tasks)
    finally:
        await _cancel(tasks)


async def _maintain(storage: Storage, raw_retention_months: int) -> None:
    now = utcnow()
    await storage.maintenance.maintain_partitions(now)
    await storage.maintenance.apply_retention(now, raw_retention_months)
    await storage.devices.forget_before(now - SIGHTINGS_KEPT)


async def checked_bus(settings: Settings, *, broker: bool = False, admin: bool = False) -> LiveBus:
    """The live bus, once every service a server process needs answers (`check_services`)."""
    bus = build_bus(settings)
    try:
        await check_services(settings, bus, broker=broker, admin=admin)
    except BaseException:
        await bus.close()
        raise
    return bus


async def _storage_or_close(settings: Settings, apply_migrations: bool, bus: LiveBus) -> Storage:
    """`open_server_storage`, closing `bus` if the database cannot be opened."""
    try:
        return await open_server_storage(settings, apply_migrations)
    except BaseException:
        await bus.close()
        raise


async def check_services(settings: Settings, bus: LiveBus, *, broker: bool = False, admin: bool = False) -> None:
    """At start-up every service must answer (later outages are waited out): Redis, and the broker's logins."""
    why = await bus.ping()
    if why is not None:
        raise StartupError(f"cannot reach the live bus ({why})", REDIS_SETTING)
    for wanted, url, setting in (
        (broker, settings.mqtt.url, BROKER_SETTING),
        (admin, settings.mqtt.admin_url, ADMIN_SETTING),
    ):
        if wanted and url:
            endpoint = MqttEndpoint.parse(url)
            why = await broker_check(endpoint, settings.mqtt.tls_context() if endpoint.tls else None)()
            if why is not None:
                raise StartupError(why, setting)


def _http_server(settings: Settings, services: Services, readiness: Readiness) -> uvicorn.Server:
    """The API's server, on a socket taken beforehand (`startup.listen`); SIGTERM is `_stop_on_signals`'s."""
    config = uvicorn.Config(
        create_app(services, readiness, settings.http.max_body_bytes),
        host=settings.http.host,
        port=settings.http.port,
        log_config=None,  # our handlers and format (logs.configure)
        access_log=False,
        lifespan="off",
        # WebSocket clients are sent a close frame (1012, service restart) at shutdown; the rest may finish.
        timeout_graceful_shutdown=int(settings.http.shutdown_timeout),
    )
    return QuietServer(config)


def _stop_on_signals(stop: Callable[[], None]) -> None:
    """SIGINT and SIGTERM call `stop`: the process stops gracefully and exits 0.

    Only the main thread can receive signals; a platform run in another thread (the browser tests embed one) is
    stopped by cancelling its task instead.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)


def _server_stopper(server: uvicorn.Server) -> Callable[[], None]:
    def stop() -> None:
        server.should_exit = True

    return stop


def api_jobs(notifier: Notifier | None) -> list[str]:
    """The background jobs `housekeeping` runs, by their `periodic` names: readiness expects each of them."""
    return ["rollups", "window rules", "maintenance", "device logins"] + (["notifier"] if notifier is not None else [])


def api_readiness(
    settings: Settings, storage: Storage, bus: LiveBus, jobs: Sequence[str], more: dict[str, Check] | None = None
) -> Readiness:
    """The API's readiness: database, migrations, Redis, the broker's administration, background jobs."""
    checks = database_checks(storage.maintenance) | {"live bus": bus.ping, "jobs": jobs_check(jobs)}
    if settings.mqtt.admin_url:
        admin = MqttEndpoint.parse(settings.mqtt.admin_url)
        checks["broker"] = broker_check(admin, settings.mqtt.tls_context() if admin.tls else None)
    return Readiness(checks | (more or {}))


@dataclass(frozen=True, slots=True)
class Running:
    """What `up` started, for the banner and for tests."""

    http_url: str
    mqtt: MqttEndpoint  # the broker's address
    demo: demo.Demo | None
    device: MqttEndpoint | None  # with the demo: a device login of its organization, to publish by hand


async def _until_stopped(server: uvicorn.Server, sock: socket.socket, *tasks: asyncio.Task[None]) -> None:
    """Serve HTTP on `sock` until uvicorn stops (Ctrl-C, SIGTERM) or is cancelled, then stop the rest.

    A background task that fails stops everything, and its error is raised.
    """
    serving = asyncio.create_task(server.serve(sockets=[sock]), name="http")
    try:
        done, _ = await asyncio.wait([serving, *tasks], return_when=asyncio.FIRST_COMPLETED)
    finally:
        server.should_exit = True  # uvicorn stops gracefully; the others are cancelled
        for task in tasks:
            task.cancel()
        await asyncio.gather(serving, *tasks, return_exceptions=True)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            raise RuntimeError(f"{task.get_name()} stopped") from task.exception()


async def run_embedded(
    settings: Settings, with_demo: bool, on_ready: Callable[[Running], Awaitable[None] | None] | None = None
) -> None:
    """Everything in one process: broker (unless external), ingestion, API, and optionally the demo.

    The HTTP port is taken and the broker's checked first: when one is not free, nothing has started.
    """
    http_socket = listen(settings.http.host, settings.http.port, HTTP_SETTING)
    try:
        if not settings.mqtt.url:
            ensure_free(settings.mqtt.host, settings.mqtt.port, MQTT_PORT_SETTING)
        bus = await checked_bus(settings, broker=True, admin=True)
        storage = await _storage_or_close(settings, True, bus)
    except BaseException:
        http_socket.close()
        raise
    try:
        provisioned = await demo.provision(storage) if with_demo else None
        async with contextlib.AsyncExitStack() as stack:
            accounts: BrokerAccounts | None
            if settings.mqtt.url:
                endpoint, accounts = MqttEndpoint.parse(settings.mqtt.url), build_broker_accounts(settings)
            else:
                broker = EmbeddedBroker(settings.mqtt.host, settings.mqtt.port, storage.credentials)
                accounts = await stack.enter_async_context(broker)
                endpoint = broker.endpoint
            address = MqttEndpoint(endpoint.host, endpoint.port, tls=endpoint.tls)
            services = _services(settings, storage, bus, accounts)
            stack.push_async_callback(bus.close)
            pipeline = build_pipeline(settings, storage, bus)
            services.provisioning.sensor_listeners.append(pipeline.directory.forget)
            services.alert_rules.listeners.append(pipeline.directory.forget)
            worker = build_worker(settings, pipeline, endpoint, shared=False)
            notifier = build_notifier(settings, storage, bus)
            tasks = [
                asyncio.create_task(worker.run(), name="ingest"),
                asyncio.create_task(build_integrations(settings, storage, bus).run(), name="integrations"),
                asyncio.create_task(
                    housekeeping(storage, notifier, services.device_logins, settings.raw_retention_months),
                    name="housekeeping",
                ),
                asyncio.create_task(watch_event_loop(), name="loop lag"),
            ]
            try:
                await _wait_subscribed(worker)
                device = None
                if provisioned is not None:
                    logins = services.device_logins
                    org = provisioned.organization.id
                    simulator, password = await logins.renew(org, demo.SIMULATOR_LOGIN)
                    simulator_login = address.with_login(simulator.username, password)
                    tls = settings.mqtt.tls_context() if address.tls else None
                    simulating = demo.simulate(provisioned.sensors, simulator_login, tls=tls)
                    tasks.append(asyncio.create_task(simulating, name="simulator"))
                    trial, password = await logins.renew(org, demo.TRIAL_LOGIN)
                    device = address.with_login(trial.username, password)
            except BaseException:
                await _cancel(tasks)
                raise
            subscribed = subscription_check(worker.subscribed, lambda: worker.last_error)
            jobs = [*api_jobs(notifier), "integrations"]
            readiness = api_readiness(settings, storage, bus, jobs, {"ingest": subscribed})
            server = _http_server(settings, services, readiness)
            _stop_on_signals(_server_stopper(server))
            settle_garbage_collector()
            running = Running(f"http://{settings.http.host}:{settings.http.port}", address, provisioned, device)
            tasks.append(asyncio.create_task(_announce(server, running, on_ready), name="announce"))
            await _until_stopped(server, http_socket, *tasks)
    finally:
        http_socket.close()
        await storage.close()


async def _wait_subscribed(worker: MqttIngestWorker, timeout: float = SUBSCRIBE_TIMEOUT) -> None:
    try:
        await asyncio.wait_for(worker.subscribed.wait(), timeout)
    except TimeoutError:
        why = worker.last_error or "no answer"
        raise StartupError(
            f"no subscription on the MQTT broker {worker.endpoint} within {timeout:g} s ({why})", BROKER_SETTING
        ) from None


async def _cancel(tasks: Sequence[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _announce(
    server: uvicorn.Server, running: Running, on_ready: Callable[[Running], Awaitable[None] | None] | None
) -> None:
    while not server.started:
        await asyncio.sleep(0.05)
    if on_ready is not None:
        result = on_ready(running)
        if result is not None:
            await result
    await asyncio.Event().wait()  # stay pending: finishing would stop the platform


def settle_garbage_collector() -> None:
    """Once a server process has started: keep what it holds for good out of the collector's full passes.

    A year of hourly rows allocates some 100,000 objects per request; the full collections this triggered walked
    every object of the process (modules, the app, caches) and paused requests for 60-70 ms, one in ten
    (measured on `bench analytics`). Frozen start-up objects are no longer walked; young collections run less often.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


async def run_api(settings: Settings) -> None:
    """The API alone (production: several replicas behind a load balancer), until SIGINT or SIGTERM."""
    http_socket = listen(settings.http.host, settings.http.port, HTTP_SETTING)
    try:
        bus = await checked_bus(settings, admin=True)
        storage = await _storage_or_close(settings, False, bus)
    except BaseException:
        http_socket.close()
        raise
    try:
        services = _services(settings, storage, bus, build_broker_accounts(settings))
        notifier = build_notifier(settings, storage, bus)
        jobs = [asyncio.create_task(watch_event_loop(), name="loop lag")]
        if settings.jobs.in_api:
            jobs.append(
                asyncio.create_task(
                    housekeeping(storage, notifier, services.device_logins, settings.raw_retention_months)
                )
            )
        expected = api_jobs(notifier) if settings.jobs.in_api else []
        server = _http_server(settings, services, api_readiness(settings, storage, bus, expected))
        _stop_on_signals(_server_stopper(server))
        settle_garbage_collector()
        try:
            await server.serve(sockets=[http_socket])
        finally:
            await _cancel(jobs)
            await bus.close()
    finally:
        http_socket.close()
        await storage.close()


async def run_jobs(settings: Settings) -> None:
    """The background jobs alone, until SIGINT or SIGTERM: production runs them in a process of their own so that
    their heavy runs never hold up the API's event loop (the API replicas then set KOPROGO_JOBS_IN_API=false).

    Running several is safe: the window rules hold a database lease, and the other jobs' writes are idempotent.
    """
    port = settings.jobs.metrics_port
    probe_socket = listen(settings.http.host, port, JOBS_METRICS_SETTING) if port else None
    try:
        bus = await checked_bus(settings, admin=True)
        storage = await _storage_or_close(settings, False, bus)
    except BaseException:
        if probe_socket is not None:
            probe_socket.close()
        raise
    try:
        services = _services(settings, storage, bus, build_broker_accounts(settings))
        notifier = build_notifier(settings, storage, bus)
        tasks = [
            asyncio.create_task(
                housekeeping(storage, notifier, services.device_logins, settings.raw_retention_months), name="jobs"
            ),
            asyncio.create_task(watch_event_loop(), name="loop lag"),
        ]
        if probe_socket is not None:
            probes = _probe_server(settings, api_readiness(settings, storage, bus, api_jobs(notifier)))
            tasks.append(asyncio.create_task(probes.serve(sockets=[probe_socket]), name="probes"))
        settle_garbage_collector()
        try:
            await _until_signalled(asyncio.gather(*tasks))
        finally:
            await _cancel(tasks)
            await bus.close()
    finally:
        if probe_socket is not None:
            probe_socket.close()
        await storage.close()


async def run_ingest(settings: Settings) -> None:
    """One ingest worker against an external broker, until SIGINT or SIGTERM.

    On SIGTERM it stops reading, stores and acknowledges what it read (`MqttIngestWorker.drain`, at most
    KOPROGO_INGEST_DRAIN_SECONDS), then disconnects: what it never read stays with the broker for the next worker.
    """
    if not settings.mqtt.url:
        raise StartupError("ingest needs an external broker", BROKER_SETTING)
    port = settings.ingest.metrics_port
    probe_socket = listen(settings.http.host, port, METRICS_SETTING) if port else None
    try:
        bus = await checked_bus(settings, broker=True)
    except BaseException:
        if probe_socket is not None:
            probe_socket.close()
        raise
    # The probes answer while the database is waited for: alive, not ready (an orchestrator must not restart a
    # worker for an outage it is waiting out).
    checks: dict[str, Check] = {"database": waiting_check("the database is not opened yet")}
    probes = _probe_server(settings, Readiness(checks)) if probe_socket is not None else None
    serving = (
        asyncio.create_task(probes.serve(sockets=[probe_socket]), name="probes")
        if probes is not None and probe_socket is not None
        else None
    )
    try:
        storage = await wait_for_storage(settings, lambda why: checks.update(database=waiting_check(why)))
    except BaseException:
        if probes is not None and serving is not None:
            probes.should_exit = True
            await serving
        await bus.close()
        if probe_socket is not None:
            probe_socket.close()
        raise
    try:
        worker = build_worker(settings, build_pipeline(settings, storage, bus), mqtt_endpoint(settings), shared=True)
        checks.update(
            database_checks(storage.maintenance)
            | {
                "subscription": subscription_check(worker.subscribed, lambda: worker.last_error),
                "live bus": bus.ping,
                "jobs": jobs_check(["integrations"]),
            }
        )
        stopping = asyncio.Event()
        _stop_on_signals(stopping.set)
        membership = Membership(
            storage.leases,
            worker.client_id,
            settings.ingest.release_after,
            build_releaser(settings, storage, bus),
        )
        tasks = [
            asyncio.create_task(worker.run(), name="ingest"),
            asyncio.create_task(build_integrations(settings, storage, bus).run(), name="integrations"),
            asyncio.create_task(every(membership.interval, "members", membership.beat), name="members"),
        ]
        if serving is not None:
            tasks.append(serving)
        settle_garbage_collector()
        signalled = asyncio.create_task(stopping.wait(), name="signal")
        done, _ = await asyncio.wait([signalled, *tasks], return_when=asyncio.FIRST_COMPLETED)
        if signalled in done:
            began = time.monotonic()
            left = await worker.drain(settings.ingest.drain_seconds)
            log.info(
                "stopping: what was read is stored and acknowledged (%.1f s; %d messages left to the broker)",
                time.monotonic() - began,
                left,
            )
        if probes is not None:
            probes.should_exit = True
        signalled.cancel()
        await _cancel([t for t in tasks if t.get_name() != "probes"])
        await asyncio.gather(*tasks, return_exceptions=True)
        await bus.close()
        for task in done:
            if task is not signalled and not task.cancelled() and task.exception() is not None:
                raise RuntimeError(f"{task.get_name()} stopped") from task.exception()
    finally:
        if probe_socket is not None:
            probe_socket.close()
        await storage.close()


async def release_sessions(settings: Settings, client_ids: Sequence[str]) -> dict[str, int]:
    """`koprogo-iot ingest --release ID...`: give the share of workers that are gone for good (a host removed, a
    scale-down) back to the live ones, losing nothing (`MqttIngestWorker.release`). Messages stored, per id."""
    if not settings.mqtt.url:
        raise StartupError("ingest needs an external broker", BROKER_SETTING)
    bus = await checked_bus(settings, broker=True)
    try:
        storage = await wait_for_storage(settings, lambda why: None)  # waiting is logged by wait_for_storage
        try:
            release = build_releaser(settings, storage, bus)
            return {client_id: await release(client_id) for client_id in client_ids}
        finally:
            await storage.close()
    finally:
        await bus.close()


def waiting_check(why: str) -> Check:
    """A readiness check that answers `why` (the process is not ready, and says what it waits for)."""

    async def check() -> str | None:
        return why

    return check


def _probe_server(settings: Settings, readiness: Readiness) -> uvicorn.Server:
    """`/metrics`, `/healthz` and `/readyz` of a worker, on its metrics port."""
    config = uvicorn.Config(
        probe_app(readiness), log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=1
    )
    return QuietServer(config)


def mqtt_endpoint(settings: Settings) -> MqttEndpoint:
    """The configured external broker (with the ingest workers' login), else the embedded broker of a running `up`."""
    mqtt = settings.mqtt
    return MqttEndpoint.parse(mqtt.url) if mqtt.url else MqttEndpoint(mqtt.host, mqtt.port)


BACNET_LOGIN = "Passerelle BACnet"  # the device login a BACnet poller publishes with, renewed at each start


async def _until_signalled(job: Awaitable[object]) -> None:
    """Run `job` until it ends, or until SIGINT or SIGTERM cancel it."""
    task = asyncio.ensure_future(job)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def run_bacnet(settings: Settings, organization_id: UUID, building_ids: Sequence[UUID] = ()) -> None:
    """The BACnet poller of an organization's buildings (all of them when none is given), until SIGINT or SIGTERM."""
    storage = await open_storage(settings.resolved_database_url, settings.encryption_secret(), apply_migrations=False)
    try:
        await storage.tenancy.get_organization(organization_id)
        for building_id in building_ids:
            await storage.tenancy.get_building(organization_id, building_id)
        # Imported here: bacpypes3 takes 0.4 s to import, which no other command should pay.
        from koprogo_iot.bacnet.client import BacnetClient

        cfg = settings.bacnet
        client = await BacnetClient.open(cfg.host, cfg.port, cfg.device_instance, cfg.timeout)
        endpoint = await device_login(settings, storage, organization_id, BACNET_LOGIN)
        publisher = ReadingPublisher(endpoint, tls=settings.mqtt.tls_context())
        try:
            publisher.start()
            if cfg.metrics_port:
                prometheus_client.start_http_server(cfg.metrics_port, addr=settings.http.host)
            poller = BacnetPoller(
                storage.bacnet,
                storage.sensors,
                client,
                publisher,
                organization_id,
                building_ids,
                refresh_interval=cfg.refresh_interval,
            )
            await _until_signalled(poller.run())
        finally:
            await publisher.close()
            client.close()
    finally:
        await storage.close()
