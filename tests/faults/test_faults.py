"""Faults mid-stream, counted: after each, every published reading is stored exactly once.

Each test publishes a numbered stream of readings (QoS 1, persistent sessions) while a real ingest worker
process stores them, breaks one component halfway, and compares what PostgreSQL holds at the end with what was
published, key by key: (sensor, timestamp) as the publisher recorded it.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from koprogo_iot.bench.services import IngestWorker, MosquittoServer, RedisServer
from koprogo_iot.bootstrap import open_storage
from koprogo_iot.broker.dynsec import Login
from koprogo_iot.cli.ista import operator
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.integrations import IntegrationKind, IntegrationStatus, LnsIntegration
from koprogo_iot.domain.sensors import IoTSensor, SensorType
from koprogo_iot.loadgen.fleet import Fleet, provision_fleet
from koprogo_iot.mqtt_url import MqttEndpoint
from koprogo_iot.services.audit import AuditLog
from koprogo_iot.services.credentials import DeviceLogins
from tests.conftest import ENCRYPTION_KEY, eventually
from tests.support.network_server import PASSWORD as NETWORK_SERVER_PASSWORD
from tests.support.network_server import USER, NetworkServerBroker
from tests.support.postgres import PostgresServer
from tests.test_cli import cli

pytestmark = [pytest.mark.mosquitto, pytest.mark.postgres]

COUNT = 3000  # readings per test
RATE = 600.0  # per second: the stream lasts 5 s, the fault lands in its middle
SENSORS = 50


Key = tuple[uuid.UUID, datetime]  # (sensor, timestamp): what a reading is stored once by


class Publisher(threading.Thread):
    """A device fleet publishing numbered readings, QoS 1, resending what was not acknowledged after a reconnect.

    `keys` records the (sensor, timestamp) of every reading published, to be compared with what was stored;
    `shuffled` publishes the numbers in a random order (readings of every sensor interleaved at random).
    """

    def __init__(
        self,
        endpoint: MqttEndpoint,
        fleet: Fleet | None,
        count: int = COUNT,
        rate: float = RATE,
        shuffled: bool = False,
        start_time: datetime | None = None,
        reconnect_delay: tuple[float, float] = (1, 5),
    ) -> None:
        super().__init__(daemon=True)
        self.reconnect_delay = reconnect_delay
        self.endpoint, self.fleet = endpoint, fleet
        self.count, self.rate = count, rate
        self.order = random.sample(range(count), count) if shuffled else range(count)
        self.published = 0
        self.acknowledged = 0
        self.keys: set[Key] = set()
        self._lock = threading.Lock()
        self.sending = threading.Lock()  # held while a reading is recorded and sent
        self.start_time = start_time or utcnow() - timedelta(minutes=10)

    def run(self) -> None:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"fault-pub-{uuid.uuid4().hex[:8]}",
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        client.max_queued_messages_set(0)
        client.on_publish = self._acked
        # Devices back off before reconnecting (paho's default starts at 1 s); ingest workers retry after
        # 0.1 s. That order matters after a broker restart: see test_broker_restarted_mid_stream, and
        # test_a_device_back_at_once_after_a_broker_restart_is_held_until_a_worker_listens for a faster device.
        client.reconnect_delay_set(*self.reconnect_delay)  # type: ignore[arg-type]  # paho takes any seconds
        self.connect(client)
        client.loop_start()
        started = time.monotonic()
        for n, i in enumerate(self.order):
            with self.sending:  # recorded as it is sent: what is stored is always among the keys recorded
                self.keys.add(self.key(i))
                client.publish(*self.message(i), qos=1)
                self.published = n + 1
            delay = started + (n + 1) / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # pacing a device, not synchronising the test
        deadline = time.monotonic() + 60
        while self.acknowledged < self.count and time.monotonic() < deadline:
            time.sleep(0.05)
        client.disconnect()
        client.loop_stop()

    def connect(self, client: mqtt.Client) -> None:
        if self.endpoint.username:
            client.username_pw_set(self.endpoint.username, self.endpoint.password)
        client.connect_async(self.endpoint.host, self.endpoint.port, keepalive=10)

    def timestamp(self, i: int) -> datetime:
        return self.start_time + timedelta(milliseconds=i)

    def message(self, i: int) -> tuple[str, str]:
        """The i-th reading: a topic of the fleet and a native payload."""
        assert self.fleet is not None
        stamp = self.timestamp(i).isoformat()
        return self.fleet.topics[i % len(self.fleet.topics)], f'{{"timestamp": "{stamp}", "value": {i}}}'

    def key(self, i: int) -> Key:
        """What the i-th reading is stored under."""
        assert self.fleet is not None
        return self.fleet.sensors[i % len(self.fleet.sensors)].id, self.timestamp(i)

    def _acked(self, *_args: object) -> None:
        with self._lock:
            self.acknowledged += 1


async def wait_until_published(publisher: Publisher, share: float) -> None:
    async def reached() -> bool:
        return publisher.published >= publisher.count * share

    await eventually(reached, timeout=30)


async def count_rows(url: str) -> int:
    """Readings stored (-1 while the database cannot be reached). The (sensor, timestamp) key makes a reading
    stored twice impossible: what counts is this count against what was published."""
    try:
        conn = await asyncpg.connect(url, timeout=2)
    except (OSError, asyncpg.PostgresError):
        return -1
    try:
        return int(await conn.fetchval("SELECT COUNT(*) FROM iot_readings"))
    finally:
        await conn.close()


async def stored_keys(url: str) -> list[Key] | None:
    """The (sensor, timestamp) of every stored reading; None while the database cannot be reached."""
    try:
        conn = await asyncpg.connect(url, timeout=2)
    except (OSError, asyncpg.PostgresError):
        return None
    try:
        return [(r["sensor_id"], r["ts"]) for r in await conn.fetch("SELECT sensor_id, ts FROM iot_readings")]
    finally:
        await conn.close()


async def stored_as_published(url: str, *publishers: Publisher) -> bool:
    """True once every published reading is stored; fails at once if anything was stored that nobody published
    (or under another key). Counted on the client side: the publishers' own records of what they sent."""
    stored = await stored_keys(url)  # first: whatever it holds was recorded as sent before
    if stored is None:
        return False
    published: set[Key] = set()
    sent = 0
    for publisher in publishers:
        with publisher.sending:
            published |= publisher.keys
            sent += publisher.published
    assert len(published) == sent, "two readings were published under one key"
    assert set(stored) <= published, f"{len(set(stored) - published)} stored readings were never published"
    return len(stored) == len(published) == sum(p.count for p in publishers)


@pytest.fixture
def broker() -> Iterator[MosquittoServer]:
    with MosquittoServer(Path(f"/tmp/koprogo-mqtt-{uuid.uuid4().hex[:8]}")) as server:
        yield server


@pytest.fixture
async def fleet_db(postgres_url: str) -> AsyncIterator[tuple[str, Fleet]]:
    storage = await open_storage(postgres_url, ENCRYPTION_KEY)
    fleet = await provision_fleet(storage, SENSORS)
    await storage.close()
    yield postgres_url, fleet


def worker_env(database_url: str, broker: MosquittoServer, redis_url: str | None = None) -> dict[str, str]:
    env = {
        "KOPROGO_MODE": "production",
        "KOPROGO_SECRET_KEY": secrets.token_urlsafe(40),
        "KOPROGO_ENCRYPTION_KEY": ENCRYPTION_KEY,
        "KOPROGO_DATABASE_URL": database_url,
        "KOPROGO_MQTT_URL": broker.url,
        "KOPROGO_INGEST_RATE_PER_SENSOR": "1000",
        "KOPROGO_INGEST_BURST_PER_SENSOR": "1000",
    }
    if redis_url:
        env["KOPROGO_REDIS_URL"] = redis_url
    return env


async def start_worker(env: dict[str, str], client_id: str, tmp_path: Path) -> IngestWorker:
    worker = IngestWorker(env, client_id, log=tmp_path / f"{client_id}.log")
    await asyncio.to_thread(worker.start)
    return worker


async def subscribed(worker: IngestWorker) -> None:
    import httpx

    async def ready() -> bool:
        async with httpx.AsyncClient() as client:
            text = (await client.get(worker.metrics_url)).text
        return "koprogo_ingest_subscribed 1.0" in text

    await eventually(ready, timeout=20)


async def test_worker_killed_mid_stream(fleet_db: tuple[str, Fleet], broker: MosquittoServer, tmp_path: Path) -> None:
    url, fleet = fleet_db
    env = worker_env(url, broker)
    worker = await start_worker(env, "fault-worker", tmp_path)
    await subscribed(worker)
    publisher = Publisher(await broker.device(fleet.organization.id), fleet)
    publisher.start()
    await wait_until_published(publisher, 0.4)
    await asyncio.to_thread(worker.stop, True)  # kill -9: whatever it held unacknowledged is redelivered
    await wait_until_published(publisher, 0.6)
    worker = await start_worker(env, "fault-worker", tmp_path)  # same client id: same persistent session
    try:
        await eventually(lambda: stored_as_published(url, publisher), timeout=60)
    finally:
        await asyncio.to_thread(worker.stop)
    await asyncio.to_thread(publisher.join, 30)
    assert publisher.acknowledged == COUNT


async def test_broker_restarted_mid_stream(
    fleet_db: tuple[str, Fleet], broker: MosquittoServer, tmp_path: Path
) -> None:
    url, fleet = fleet_db
    worker = await start_worker(worker_env(url, broker), "fault-worker-mq", tmp_path)
    try:
        await subscribed(worker)
        publisher = Publisher(await broker.device(fleet.organization.id), fleet)
        publisher.start()
        await wait_until_published(publisher, 0.4)
        await asyncio.to_thread(broker.restart)  # sessions and queued messages persist across the restart
        await eventually(lambda: stored_as_published(url, publisher), timeout=90)
        await asyncio.to_thread(publisher.join, 30)
    finally:
        await asyncio.to_thread(worker.stop)


async def test_a_device_back_at_once_after_a_broker_restart_is_held_until_a_worker_listens(
    fleet_db: tuple[str, Fleet], broker: MosquittoServer, tmp_path: Path
) -> None:
    """Mosquitto 2.0 does not restore shared subscriptions at a restart: a device reconnecting before the workers
    subscribed again would have what it publishes acknowledged and dropped. The broker started on the file of
    `broker config --hold-devices` refuses devices until a worker subscribed and let them in, so a device that
    retries every 10 ms loses nothing. (With the same test and no --hold-devices, readings went missing.)"""
    url, fleet = fleet_db
    env = worker_env(url, broker) | {"KOPROGO_MQTT_ADMIN_URL": broker.admin_url}
    storage = await open_storage(url, ENCRYPTION_KEY)
    try:  # issued as the API does: in the database (which `broker config` reads) and in the broker
        logins = DeviceLogins(storage.credentials, storage.tenancy, AuditLog(storage.audit), broker.accounts())
        credential, password = await logins.issue(operator(fleet.organization.id), "gateway")
    finally:
        await storage.close()
    device = broker.endpoint_of(Login(credential.username, password))
    worker = await start_worker(env, "fault-worker-held", tmp_path)
    try:
        await subscribed(worker)
        publisher = Publisher(device, fleet, reconnect_delay=(0.01, 0.05))
        publisher.start()
        await wait_until_published(publisher, 0.4)
        await asyncio.to_thread(broker.stop)
        security = broker.folder / "dynamic-security.json"
        written = await asyncio.to_thread(
            cli, "broker", "config", "--output", str(security), "--hold-devices", env=os.environ | env
        )
        assert "1 device logins (held until an ingest worker has subscribed)" in written.stdout, written.stderr
        await asyncio.to_thread(broker.start)
        await eventually(lambda: stored_as_published(url, publisher), timeout=90)
        await asyncio.to_thread(publisher.join, 30)
        assert publisher.acknowledged == COUNT
        assert "let 1 held device login(s) in" in (tmp_path / "fault-worker-held.log").read_text()
    finally:
        await asyncio.to_thread(worker.stop)


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    yield server
    server.remove()


async def test_database_stopped_and_restarted_mid_stream(
    private_postgres: PostgresServer, broker: MosquittoServer, tmp_path: Path
) -> None:
    admin = await asyncpg.connect(private_postgres.url)
    name = f"fault_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = private_postgres.url.rsplit("/", 1)[0] + f"/{name}"
    storage = await open_storage(url, ENCRYPTION_KEY)
    fleet = await provision_fleet(storage, SENSORS)
    await storage.close()
    worker = await start_worker(worker_env(url, broker), "fault-worker-pg", tmp_path)
    try:
        await subscribed(worker)
        publisher = Publisher(await broker.device(fleet.organization.id), fleet)
        publisher.start()
        await wait_until_published(publisher, 0.3)
        await asyncio.to_thread(private_postgres.stop, True)  # an immediate shutdown, as in a crash
        await wait_until_published(publisher, 0.6)  # the stream goes on; the worker waits and acks nothing
        await asyncio.to_thread(private_postgres.start)
        await eventually(lambda: stored_as_published(url, publisher), timeout=90)
        await asyncio.to_thread(publisher.join, 30)
        assert worker.process is not None and worker.process.poll() is None  # it waited, it did not die
    finally:
        await asyncio.to_thread(worker.stop)


async def test_redis_stopped_mid_stream(fleet_db: tuple[str, Fleet], broker: MosquittoServer, tmp_path: Path) -> None:
    url, fleet = fleet_db
    with RedisServer() as redis:
        worker = await start_worker(worker_env(url, broker, redis.url), "fault-worker-redis", tmp_path)
        try:
            await subscribed(worker)
            publisher = Publisher(await broker.device(fleet.organization.id), fleet)
            publisher.start()
            await wait_until_published(publisher, 0.4)
            await asyncio.to_thread(redis.stop)  # only the live view goes dark
            await eventually(lambda: stored_as_published(url, publisher), timeout=60)
            await asyncio.to_thread(publisher.join, 30)
        finally:
            await asyncio.to_thread(worker.stop)
    log = (tmp_path / "fault-worker-redis.log").read_text()
    assert "live bus: Redis unavailable" in log


async def test_worker_killed_mid_stream_of_a_network_server_integration(postgres_url: str, tmp_path: Path) -> None:
    """An organization's ChirpStack broker, subscribed to by a worker process killed with -9 half-way: the next
    worker resumes the integration's persistent session and every uplink is stored once."""
    storage = await open_storage(postgres_url, ENCRYPTION_KEY)
    fleet = await provision_fleet(storage, 1)  # the organization and building
    devices = [f"{i:016x}" for i in range(1, 21)]
    sensor_ids = []
    for device in devices:
        sensor = IoTSensor(
            organization_id=fleet.organization.id,
            building_id=fleet.building.id,
            sensor_id=device,
            device_format="chirpstack",
            device_field="water.total_m3",
            sensor_type=SensorType.COLD_WATER,
            manufacturer="m",
            model="m",
            location=device,
            unit_of_measure="m³",
        )
        await storage.sensors.add(sensor)
        sensor_ids.append(sensor.id)
    with NetworkServerBroker(tmp_path / "lns") as lns, MosquittoServer(tmp_path / "mqtt") as broker:
        integration = LnsIntegration(
            fleet.organization.id, IntegrationKind.CHIRPSTACK, "lns", lns.url, USER, NETWORK_SERVER_PASSWORD
        )
        await storage.integrations.add(integration)
        env = worker_env(postgres_url, broker) | {"KOPROGO_INGEST_INTEGRATIONS_INTERVAL": "0.5"}

        async def connected() -> bool:
            found = await storage.integrations.get(fleet.organization.id, integration.id)
            return found.status is IntegrationStatus.CONNECTED

        worker = await start_worker(env, "fault-lns", tmp_path)
        await eventually(connected, timeout=30)
        publisher = UplinkPublisher(lns, devices, sensor_ids)
        publisher.start()
        await wait_until_published(publisher, 0.4)
        await asyncio.to_thread(worker.stop, True)
        await wait_until_published(publisher, 0.6)
        worker = await start_worker(env, "fault-lns", tmp_path)  # the same holder takes its lease back at once
        try:
            await eventually(lambda: stored_as_published(postgres_url, publisher), timeout=60)
        finally:
            await asyncio.to_thread(worker.stop)
            await storage.close()
        await asyncio.to_thread(publisher.join, 30)
    assert publisher.acknowledged == COUNT


class UplinkPublisher(Publisher):
    """ChirpStack publishing numbered uplinks of `devices` to its own broker, with its credentials."""

    def __init__(self, lns: NetworkServerBroker, devices: list[str], sensor_ids: list[uuid.UUID]) -> None:
        super().__init__(lns.endpoint, None)
        self.devices, self.sensor_ids = devices, sensor_ids

    def key(self, i: int) -> Key:
        return self.sensor_ids[i % len(self.sensor_ids)], self.timestamp(i)

    def message(self, i: int) -> tuple[str, str]:
        device = self.devices[i % len(self.devices)]
        stamp = self.timestamp(i).isoformat()
        body = {"time": stamp, "deviceInfo": {"devEui": device}, "object": {"water": {"total_m3": i}}}
        return f"application/app-1/device/{device}/event/up", json.dumps(body)
