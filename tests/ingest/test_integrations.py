"""Organizations' LoRaWAN network servers: configured through the API (passwords write-only, stored encrypted), and
subscribed to by the ingest side over credentials and TLS, against a second local Mosquitto playing that broker."""

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from koprogo_iot.devices.registry import decoders
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.sensors import DeviceFormat
from koprogo_iot.ingest.integrations import IntegrationRunner
from koprogo_iot.ingest.pipeline import Pipeline
from koprogo_iot.ingest.topics import Origin
from tests.api.conftest import Api
from tests.conftest import eventually
from tests.devices.test_chirpstack import uplink
from tests.support.network_server import PASSWORD, USER, NetworkServerBroker, make_authority

pytestmark = pytest.mark.mosquitto
URL = "/api/v1/iot/integrations"
DEV_EUI = "0101aabbccddeeff"


async def test_passwords_are_write_only_and_stored_encrypted(api: Api) -> None:
    h = await api.token(api.a.syndic.email)
    body = {
        "kind": "chirpstack",
        "name": "ChirpStack",
        "broker_url": "mqtt://lns.example:1883",
        "username": "u",
        "password": "s3cret-pass",
    }
    created = await api.client.post(URL, json=body, headers=h)
    assert created.status_code == 201, created.text
    integration = created.json()
    assert "password" not in integration and integration["has_password"]
    assert (integration["status"], integration["topic_filter"]) == ("pending", "application/+/device/+/event/up")
    [row] = await api.db.fetch("SELECT password_encrypted FROM iot_integrations")
    assert row["password_encrypted"] and "s3cret" not in row["password_encrypted"]
    one = f"{URL}/{integration['id']}"
    renamed = await api.client.put(one, json={"name": "LNS", "enabled": False}, headers=h)
    assert (renamed.json()["name"], renamed.json()["status"], renamed.json()["has_password"]) == (
        "LNS",
        "disabled",
        True,
    )
    kept = await api.storage.integrations.get(api.a.organization.id, uuid.UUID(integration["id"]))
    assert kept.password == "s3cret-pass"  # not sent with the change: kept
    assert [i["id"] for i in (await api.client.get(URL, headers=h)).json()] == [integration["id"]]

    other = await api.token(api.b.syndic.email)
    assert (await api.client.get(one, headers=other)).status_code == 404
    assert (await api.client.put(one, json={"name": "x"}, headers=other)).status_code == 404
    assert (await api.client.get(URL, headers=await api.token(api.a.owner.email))).status_code == 403
    for wrong, field in (
        ({"broker_url": "mqtt://u:p@lns.example"}, "broker_url"),
        ({"broker_url": "http://lns.example"}, "broker_url"),
        ({"topic_filter": "a/#/b"}, "topic_filter"),
        ({"kind": "sigfox"}, "kind"),
    ):
        refused = await api.client.post(URL, json=body | wrong, headers=h)
        assert refused.status_code == 422 and field in refused.json()["message"], refused.text
    assert (await api.client.delete(one, headers=h)).status_code == 204
    assert (await api.client.get(one, headers=h)).status_code == 404


@contextlib.asynccontextmanager
async def runner(api: Api) -> AsyncIterator[IntegrationRunner]:
    formats = {DeviceFormat(k): v for k, v in decoders().items()}

    def pipeline(origin: Origin) -> Pipeline:
        return Pipeline(api.storage, decoders=formats, origin=origin)

    integrations = IntegrationRunner(api.storage, pipeline, f"test-{uuid.uuid4().hex[:8]}", interval=0.1)
    task = asyncio.create_task(integrations.run())
    try:
        yield integrations
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def publish(broker: NetworkServerBroker, topic: str, payload: Mapping[str, Any]) -> None:
    proc = await asyncio.create_subprocess_exec(
        "mosquitto_pub",
        *broker.publish_args(),
        "-q",
        "1",
        "-t",
        topic,
        "-m",
        json.dumps(payload),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()


async def test_uplinks_of_the_network_servers_broker_are_stored_over_tls(api: Api, tmp_path: Path) -> None:
    t, h = api.a, await api.token(api.a.syndic.email)
    authority = make_authority(tmp_path / "tls")
    sensor = await api.client.post(
        "/api/v1/iot/sensors",
        json={
            "building_id": str(t.building.id),
            "sensor_id": DEV_EUI.upper(),
            "device_format": "chirpstack",
            "device_field": "water.total_m3",
            "sensor_type": "cold_water",
            "unit_of_measure": "m³",
            "manufacturer": "m",
            "model": "m",
            "location": "cellar",
        },
        headers=h,
    )
    assert sensor.status_code == 201, sensor.text
    with NetworkServerBroker(tmp_path / "lns", authority) as broker:
        base = {"kind": "chirpstack", "broker_url": broker.url, "username": USER}
        good = await api.client.post(
            URL, json=base | {"name": "good", "password": PASSWORD, "ca_certificate": authority.ca_pem}, headers=h
        )
        wrong_password = await api.client.post(
            URL, json=base | {"name": "bad", "password": "nope", "ca_certificate": authority.ca_pem}, headers=h
        )
        untrusted = await api.client.post(URL, json=base | {"name": "untrusted", "password": PASSWORD}, headers=h)

        async def status(created: Any) -> dict[str, Any]:
            found: dict[str, Any] = (await api.client.get(f"{URL}/{created.json()['id']}", headers=h)).json()
            return found

        async with runner(api):
            connected = await eventually(lambda: _when(status(good), "connected"), timeout=20)
            event = uplink(time=utcnow().isoformat())
            await publish(broker, f"application/{uuid.uuid4()}/device/{DEV_EUI}/event/up", event)
            [reading] = await eventually(
                lambda: api.storage.readings.recent(t.organization.id, uuid.UUID(sensor.json()["id"]))
            )
            refused = await eventually(lambda: _when(status(wrong_password), "failing"), timeout=20)
            distrusted = await eventually(lambda: _when(status(untrusted), "failing"), timeout=20)
            told = await eventually(lambda: _when(status(good), "connected", "last_message_at"), timeout=20)
    assert connected["last_error"] is None and told["last_message_at"] is not None
    assert reading.value == 123.456 and reading.signal_strength == -87
    assert "not authori" in refused["last_error"]  # Mosquitto: "not authorised"
    assert "certificate" in distrusted["last_error"].lower()


async def _when(found: Any, status: str, filled: str | None = None) -> dict[str, Any] | None:
    integration: dict[str, Any] = await found
    ready = integration["status"] == status and (filled is None or integration[filled] is not None)
    return integration if ready else None
