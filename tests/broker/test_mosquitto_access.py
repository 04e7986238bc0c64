"""Device credentials on a real Mosquitto running the shipped configuration: issued through the API, checked by the
broker (organization and building scopes, no subscriptions, the workers' group kept to the workers), rotated and
revoked with the connections they opened closed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from koprogo_iot.api.app import create_app
from koprogo_iot.bootstrap import build_services
from koprogo_iot.broker.dynsec import DynamicSecurity
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.credentials import INGEST_GROUP
from koprogo_iot.ingest.mqtt_worker import MqttIngestWorker
from koprogo_iot.ingest.pipeline import Pipeline
from koprogo_iot.mqtt_url import MqttEndpoint
from koprogo_iot.storage.ports import Storage
from tests.conftest import PASSWORD, Mosquitto, Tenant, eventually, make_tenant, running
from tests.support.mqtt_client import Client

pytestmark = pytest.mark.mosquitto


@dataclass
class Setup:
    client: httpx.AsyncClient
    storage: Storage
    mosquitto: Mosquitto
    a: Tenant
    b: Tenant

    async def headers(self, tenant: Tenant, owner: bool = False) -> dict[str, str]:
        email = (tenant.owner if owner else tenant.syndic).email
        response = await self.client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    async def issue(self, tenant: Tenant, **body: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/api/v1/iot/device-credentials", json={"name": "gateway"} | body, headers=await self.headers(tenant)
        )
        assert response.status_code == 201, response.text
        issued: dict[str, Any] = response.json()
        return issued

    def device(self, issued: dict[str, Any], password: str | None = None) -> Client:
        endpoint = self.mosquitto.server.endpoint_of(None).with_login(
            issued["username"], password or issued["password"]
        )
        return Client(endpoint)


@pytest.fixture
async def setup(storage: Storage, mosquitto: Mosquitto) -> AsyncIterator[Setup]:
    a, b = await make_tenant(storage, "A"), await make_tenant(storage, "B")
    services = build_services(storage, "test-secret-" + "x" * 40, broker=mosquitto.server.accounts())
    app = create_app(services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://koprogo.test") as client:
        yield Setup(client, storage, mosquitto, a, b)


def reading(value: float) -> str:
    return json.dumps({"timestamp": utcnow().isoformat(), "value": value})


async def in_thread(function: Any, *args: Any) -> Any:
    return await asyncio.to_thread(function, *args)


async def test_a_device_publishes_to_its_organization_only_and_subscribes_to_nothing(setup: Setup) -> None:
    issued = await setup.issue(setup.a)
    assert issued["topic_filter"] == f"koprogo/{setup.a.organization.id}/#" and len(issued["password"]) >= 32
    worker = MqttIngestWorker(Pipeline(setup.storage), setup.mosquitto.endpoint, "access-test")
    device = setup.device(issued)
    try:
        async with running(worker):
            assert str(await in_thread(device.connect)) == "Success"
            mine, theirs = setup.a.unit_sensor, setup.b.unit_sensor
            assert str(await in_thread(device.publish, theirs.mqtt_topic, reading(1.0))) == "Not authorized"
            assert str(await in_thread(device.publish, mine.mqtt_topic, reading(2.0))) == "Success"
            [stored] = await eventually(lambda: setup.storage.readings.recent(setup.a.organization.id, mine.id))
            assert stored.value == 2.0
            assert await setup.storage.readings.count(setup.b.organization.id, theirs.id) == 0
            for topic_filter in ("#", "koprogo/#", f"koprogo/{setup.b.organization.id}/#", "$SYS/#"):
                assert str(await in_thread(device.subscribe, topic_filter)) == "Not authorized", topic_filter
            shared = f"$share/{INGEST_GROUP}/koprogo/#"
            assert str(await in_thread(device.subscribe, shared)) == "Not authorized"
    finally:
        device.close()


async def test_a_building_scoped_device_publishes_under_its_building_only(setup: Setup) -> None:
    other = await setup.client.post("/api/v1/buildings", json={"name": "Annexe"}, headers=await setup.headers(setup.a))
    issued = await setup.issue(setup.a, building_id=str(setup.a.building.id))
    org = setup.a.organization.id
    assert issued["topic_filter"] == f"koprogo/{org}/{setup.a.building.id}/#"
    device = setup.device(issued)
    try:
        assert str(await in_thread(device.connect)) == "Success"
        assert str(await in_thread(device.publish, setup.a.unit_sensor.mqtt_topic)) == "Success"
        elsewhere = f"koprogo/{org}/{other.json()['id']}/meter/readings"
        assert str(await in_thread(device.publish, elsewhere)) == "Not authorized"
    finally:
        device.close()


async def test_anonymous_clients_and_wrong_passwords_are_refused(setup: Setup) -> None:
    issued = await setup.issue(setup.a)
    anonymous, guessing = Client(setup.mosquitto.server.endpoint_of(None)), setup.device(issued, "guess" * 8)
    try:
        assert str(await in_thread(anonymous.connect)) == "Not authorized"
        assert str(await in_thread(guessing.connect)) == "Not authorized"
    finally:
        anonymous.close()
        guessing.close()


async def test_revoking_disconnects_the_device_and_refuses_it(setup: Setup) -> None:
    issued = await setup.issue(setup.a)
    device = setup.device(issued)
    try:
        assert str(await in_thread(device.connect)) == "Success"
        response = await setup.client.delete(
            f"/api/v1/iot/device-credentials/{issued['id']}", headers=await setup.headers(setup.a)
        )
        assert response.status_code == 200 and response.json()["active"] is False
        await in_thread(device.disconnected)
    finally:
        device.close()
    again = setup.device(issued)
    try:
        assert str(await in_thread(again.connect)) == "Not authorized"
    finally:
        again.close()


async def test_rotating_disconnects_the_old_password_and_the_new_one_works(setup: Setup) -> None:
    issued = await setup.issue(setup.a)
    device = setup.device(issued)
    try:
        assert str(await in_thread(device.connect)) == "Success"
        response = await setup.client.post(
            f"/api/v1/iot/device-credentials/{issued['id']}/rotate", headers=await setup.headers(setup.a)
        )
        assert response.status_code == 200
        rotated = response.json()
        assert rotated["username"] == issued["username"] and rotated["password"] != issued["password"]
        await in_thread(device.disconnected)
    finally:
        device.close()
    old, new = setup.device(issued), setup.device(rotated)
    try:
        assert str(await in_thread(old.connect)) == "Not authorized"
        assert str(await in_thread(new.connect)) == "Success"
    finally:
        old.close()
        new.close()


async def test_credentials_are_the_organizations_own_and_for_syndics(setup: Setup) -> None:
    issued = await setup.issue(setup.a)
    url = f"/api/v1/iot/device-credentials/{issued['id']}"
    b = await setup.headers(setup.b)
    assert (await setup.client.get(url, headers=b)).status_code == 404
    assert (await setup.client.delete(url, headers=b)).status_code == 404
    assert (await setup.client.post(f"{url}/rotate", headers=b)).status_code == 404
    assert issued["id"] not in (await setup.client.get("/api/v1/iot/device-credentials", headers=b)).text
    foreign_building = {"name": "x", "building_id": str(setup.b.building.id)}
    a = await setup.headers(setup.a)
    response = await setup.client.post("/api/v1/iot/device-credentials", json=foreign_building, headers=a)
    assert response.status_code == 404
    owner = await setup.headers(setup.a, owner=True)
    assert (await setup.client.get("/api/v1/iot/device-credentials", headers=owner)).status_code == 403
    listed = (await setup.client.get("/api/v1/iot/device-credentials", headers=a)).json()
    assert [c["username"] for c in listed] == [issued["username"]] and "password" not in listed[0]


async def test_a_broker_that_cannot_be_reached_leaves_no_credential_behind(storage: Storage) -> None:
    tenant = await make_tenant(storage)
    gone = build_services(storage, "s" * 40, broker=DynamicSecurity(MqttEndpoint("127.0.0.1", 1, "a", "b")))
    app = create_app(gone)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        login = await client.post("/api/v1/auth/login", json={"email": tenant.syndic.email, "password": PASSWORD})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        response = await client.post("/api/v1/iot/device-credentials", json={"name": "x"}, headers=headers)
    assert response.status_code == 503 and response.json()["error"] == "broker_unavailable"
    assert "cannot reach the MQTT broker" in response.json()["message"]
    assert await storage.credentials.select(tenant.organization.id) == []
