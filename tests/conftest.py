"""Shared fixtures: real SQLite and PostgreSQL storage, a real Mosquitto broker, provisioned tenants."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import asyncpg
import pytest

from koprogo_iot.bench.services import MosquittoServer, RedisServer, free_port
from koprogo_iot.bootstrap import open_database, open_storage, storage_over
from koprogo_iot.domain.sensors import IoTSensor, SensorType
from koprogo_iot.domain.tenancy import Building, Organization, Role, Unit, User
from koprogo_iot.ingest.mqtt_worker import MqttIngestWorker
from koprogo_iot.mqtt_url import MqttEndpoint
from koprogo_iot.services.accounts import hash_password
from koprogo_iot.services.analytics import Analytics
from koprogo_iot.services.audit import AuditLog
from koprogo_iot.services.provisioning import Provisioning
from koprogo_iot.storage.ports import Storage
from koprogo_iot.storage.sql.database import Database

# The server CI and the development machines run; override to point at another one.
POSTGRES_ADMIN_URL = os.environ.get("KOPROGO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PASSWORD = "correct horse battery"
ENCRYPTION_KEY = "test-encryption-key-" + "k" * 32  # seals the secrets the tests store
T = TypeVar("T")
__all__ = ["free_port"]  # re-exported for the tests


async def eventually(probe: Callable[[], Awaitable[T]], timeout: float = 10.0, interval: float = 0.05) -> T:
    """Poll `probe` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last value: {result!r})")
        await asyncio.sleep(interval)


# --- PostgreSQL: one migrated template per session, one fresh database per test cloned from it


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    name = f"koprogo_tmpl_{uuid.uuid4().hex[:10]}"

    async def create() -> None:
        admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        storage = await open_storage(_database_url(name), ENCRYPTION_KEY)
        await storage.close()

    asyncio.run(create())
    yield name
    asyncio.run(_drop_database(name))


def _database_url(name: str) -> str:
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


async def _drop_database(name: str) -> None:
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def _clone_database(template: str) -> str:
    name = f"koprogo_test_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
        deadline = time.monotonic() + 30
        try:
            while True:
                try:
                    await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                    return
                except asyncpg.ObjectInUseError:
                    # another session is connected to the template for a moment (TimescaleDB's scheduler does that
                    # on servers where the extension is preloaded): try again until it has gone
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)
        finally:
            await admin.close()

    asyncio.run(create())
    return name


@pytest.fixture
def postgres_url(postgres_template: str) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    name = _clone_database(postgres_template)
    yield _database_url(name)
    asyncio.run(_drop_database(name))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using it runs twice: on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'koprogo.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """The test's database, migrated: for the few tests that look at rows themselves."""
    opened = await open_database(database_url)
    storage = storage_over(opened, ENCRYPTION_KEY)
    await storage.maintenance.migrate()
    yield opened
    await storage.close()


@pytest.fixture
def storage(db: Database) -> Storage:
    """Every storage port over the test's database."""
    return storage_over(db, ENCRYPTION_KEY)


# --- Mosquitto: our own instance on a free port, with the configuration ingestion needs


@dataclass(frozen=True)
class Mosquitto:
    endpoint: MqttEndpoint  # with the ingest workers' login; devices get theirs from `server.device`
    server: MosquittoServer


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """One broker for the session (each test uses its own organization, hence its own topics)."""
    with MosquittoServer(tmp_path_factory.mktemp("mosquitto")) as server:
        yield Mosquitto(server.endpoint, server)


@contextlib.asynccontextmanager
async def running(worker: MqttIngestWorker) -> AsyncIterator[MqttIngestWorker]:
    """The worker ingesting in the background, subscribed, until the block ends."""
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(worker.subscribed.wait(), timeout=10)
    try:
        yield worker
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def device_endpoint(broker: Mosquitto | MosquittoServer | MqttEndpoint, topic: str) -> MqttEndpoint:
    """Who publishes to `topic`: a device login of the topic's organization on our broker (or `broker` itself)."""
    if isinstance(broker, MqttEndpoint):
        return broker
    server = broker.server if isinstance(broker, Mosquitto) else broker
    return await server.device(uuid.UUID(topic.split("/")[1]))


def login_args(endpoint: MqttEndpoint) -> list[str]:
    """The `mosquitto_pub` / `mosquitto_sub` options reaching `endpoint` with its login."""
    args = ["-h", endpoint.host, "-p", str(endpoint.port)]
    if endpoint.username:
        args += ["-u", endpoint.username, "-P", endpoint.password or ""]
    return args


async def mosquitto_pub(
    broker: Mosquitto | MosquittoServer | MqttEndpoint, topic: str, payload: str | bytes, qos: int = 1
) -> None:
    """Publish like a device would, with the real command-line client (async: a broker may share this loop)."""
    endpoint = await device_endpoint(broker, topic)
    proc = await asyncio.create_subprocess_exec(
        "mosquitto_pub",
        *login_args(endpoint),
        "-q",
        str(qos),
        "-t",
        topic,
        "-s",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate(payload if isinstance(payload, bytes) else payload.encode())
    assert proc.returncode == 0, err.decode()


# --- Redis: our own server on a free port, which fault tests may stop and start again


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


# --- tenants


@dataclass(frozen=True)
class Tenant:
    """An organization with one building, two units, a syndic, an owner of the first unit, and sensors."""

    organization: Organization
    building: Building
    units: tuple[Unit, Unit]
    syndic: User
    owner: User
    common_sensor: IoTSensor  # building's main water flow, max 50 L/h
    unit_sensor: IoTSensor  # first unit's cold water counter
    other_unit_sensor: IoTSensor  # second unit's cold water counter

    def topic(self, sensor: IoTSensor) -> str:
        return sensor.mqtt_topic


async def make_tenant(storage: Storage, name: str = "Tenant") -> Tenant:
    org = Organization(name=f"{name} {uuid.uuid4().hex[:6]}")
    building = Building(organization_id=org.id, name=f"{name} building")
    units = (
        Unit(organization_id=org.id, building_id=building.id, name="App. 1", floor=1),
        Unit(organization_id=org.id, building_id=building.id, name="App. 2", floor=2),
    )
    hashed = hash_password(PASSWORD)
    tag = uuid.uuid4().hex[:8]
    syndic = User(org.id, f"syndic-{tag}@example.org", "Syndic", Role.SYNDIC, hashed)
    owner = User(org.id, f"owner-{tag}@example.org", "Owner", Role.OWNER, hashed, frozenset({units[0].id}))

    def sensor(device: str, **extra: object) -> IoTSensor:
        return IoTSensor(
            organization_id=org.id,
            building_id=building.id,
            sensor_id=f"{device}-{tag}",
            manufacturer="Kamstrup",
            model="MULTICAL 21",
            location=device,
            **extra,  # type: ignore[arg-type]
        )

    common = sensor(
        "flow",
        sensor_type=SensorType.COLD_WATER,
        kind="instantaneous",
        unit_of_measure="L/h",
        sampling_interval=60,
        alert_threshold_max=50.0,
    )
    first = sensor("cw1", sensor_type=SensorType.COLD_WATER, unit_of_measure="m³", unit_id=units[0].id)
    second = sensor("cw2", sensor_type=SensorType.COLD_WATER, unit_of_measure="m³", unit_id=units[1].id)
    await storage.tenancy.add_organization(org)
    await storage.tenancy.add_building(building)
    for unit in units:
        await storage.tenancy.add_unit(unit)
    await storage.tenancy.add_user(syndic)
    await storage.tenancy.add_user(owner)
    for s in (common, first, second):
        await storage.sensors.add(s)
    return Tenant(org, building, units, syndic, owner, common, first, second)


def analytics(storage: Storage) -> Analytics:
    """The analytics service over `storage`, as the API wires it."""
    return Analytics(Provisioning(storage.tenancy, storage.sensors, AuditLog(storage.audit)), storage.source)
