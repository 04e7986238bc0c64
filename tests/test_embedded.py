"""The embedded platform as a new user meets it: `up --demo`, log in, watch readings, publish with mosquitto_pub."""

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import websockets
from paho.mqtt.client import MQTTv311

from koprogo_iot import bootstrap, demo, periodic
from koprogo_iot.config import HttpSettings, MqttSettings, Settings
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.mqtt_url import MqttEndpoint, client_tls
from tests.conftest import Mosquitto, eventually, free_port, login_args, mosquitto_pub
from tests.support.mqtt_client import Client

# One platform for the module's tests (each start writes the demo's 16 months of history): they run on its loop.
shared_platform = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def platform(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[bootstrap.Running, httpx.AsyncClient]]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("embedded"),
        mqtt=MqttSettings(port=free_port(), client_id="embedded-test"),
        http=HttpSettings(port=free_port()),
    )
    ready: asyncio.Future[bootstrap.Running] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(bootstrap.run_embedded(settings, with_demo=True, on_ready=ready.set_result))
    running = await asyncio.wait_for(asyncio.shield(ready), timeout=90)  # the demo writes 16 months of history
    async with httpx.AsyncClient(base_url=running.http_url, timeout=10) as client:
        yield running, client
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def device(running: bootstrap.Running) -> MqttEndpoint:
    """The device login `up --demo` prints."""
    assert running.device is not None and running.device.username and running.device.password
    return running.device


async def login(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": demo.DEMO_PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@shared_platform
async def test_demo_sensors_are_listed_and_their_readings_grow(
    platform: tuple[bootstrap.Running, httpx.AsyncClient],
) -> None:
    running, client = platform
    headers = await login(client, demo.SYNDIC_EMAIL)
    sensors = (await client.get("/api/v1/iot/sensors", headers=headers)).json()
    assert running.demo is not None and len(running.demo.sensors) == 17
    assert {str(s.id) for s in running.demo.sensors} <= {s["id"] for s in sensors}  # other tests add their own

    since = {"start": utcnow().isoformat()}  # live readings (the demo also wrote a year of history)

    async def total_readings() -> int:
        urls = [f"/api/v1/iot/sensors/{s['id']}/readings" for s in sensors]
        return sum([len((await client.get(url, params=since, headers=headers)).json()) for url in urls])

    first = await eventually(total_readings, timeout=30)
    await eventually(lambda: _greater(total_readings, first), timeout=30)
    owner = await login(client, demo.OWNER_EMAIL)
    visible = (await client.get("/api/v1/iot/sensors", headers=owner)).json()
    assert 0 < len(visible) < len(sensors)


@shared_platform
async def test_a_fresh_demo_raises_no_offline_alert(platform: tuple[bootstrap.Running, httpx.AsyncClient]) -> None:
    """The history ends when the demo starts: the first window-rule run finds no sensor silent."""
    _, client = platform
    headers = await login(client, demo.SYNDIC_EMAIL)

    async def window_rules_ran() -> bool:
        status = periodic.JOBS.get("window rules")
        return status is not None and status.last_success is not None

    await eventually(window_rules_ran, timeout=30)
    params = {"alert_type": "sensor_offline"}
    assert (await client.get("/api/v1/iot/alerts", params=params, headers=headers)).json() == []


async def _greater(probe, than: int) -> bool:  # type: ignore[no-untyped-def]
    return bool(await probe() > than)


@shared_platform
async def test_a_device_publishing_with_mosquitto_pub_is_read_through_the_api(
    platform: tuple[bootstrap.Running, httpx.AsyncClient],
) -> None:
    running, client = platform
    assert running.demo is not None
    headers = await login(client, demo.SYNDIC_EMAIL)
    body = {
        "building_id": str(running.demo.building.id),
        "sensor_id": "FLOW-TEST-1",
        "sensor_type": "cold_water",
        "kind": "instantaneous",
        "manufacturer": "Kamstrup",
        "model": "flowIQ 2200",
        "location": "Riser",
        "unit_of_measure": "L/h",
        "sampling_interval": 60,
        "alert_threshold_max": 50,
    }
    sensor = (await client.post("/api/v1/iot/sensors", json=body, headers=headers)).json()
    readings_url = f"/api/v1/iot/sensors/{sensor['id']}/readings"

    async def readings() -> list[dict[str, object]]:
        response = await client.get(readings_url, headers=headers)
        result: list[dict[str, object]] = response.json()
        return result

    payload = {"timestamp": utcnow().isoformat(), "value": 12.5, "battery_level": 80, "signal_strength": -70}
    await mosquitto_pub(device(running), sensor["mqtt_topic"], json.dumps(payload))
    [stored] = await eventually(readings)
    assert stored["value"] == 12.5 and stored["quality"] == "good"

    payload = {"timestamp": utcnow().isoformat(), "value": 75, "battery_level": 80, "signal_strength": -70}
    await mosquitto_pub(device(running), sensor["mqtt_topic"], json.dumps(payload))

    async def alerts() -> list[dict[str, object]]:
        response = await client.get(f"/api/v1/iot/alerts?sensor_id={sensor['id']}", headers=headers)
        result: list[dict[str, object]] = response.json()
        return result

    [alert] = await eventually(alerts)
    assert alert["severity"] == "critical" and alert["status"] == "active" and alert["reading_value"] == 75

    org, building = running.demo.organization.id, running.demo.building.id
    await mosquitto_pub(device(running), f"koprogo/{org}/{building}/NOT-REGISTERED/readings", json.dumps(payload))
    await mosquitto_pub(device(running), sensor["mqtt_topic"], "{broken")
    payload = {"timestamp": utcnow().isoformat(), "value": 13}
    await mosquitto_pub(device(running), sensor["mqtt_topic"], json.dumps(payload))
    await eventually(lambda: _has(readings, 3))  # the bad messages did not stop ingestion, nor were stored

    # Issue 13 as it was found: a counter whose index steps back under 1 % in one hour and passes its old high in a
    # later one, published with mosquitto_pub, counts the drop once per day, as domain.consumption does (2.5).
    counter = body | {"sensor_id": "TASMOTA-T13", "kind": "cumulative", "unit_of_measure": "kWh"}
    counter |= {"sensor_type": "electricity", "alert_threshold_max": None}
    meter = (await client.post("/api/v1/iot/sensors", json=counter, headers=headers)).json()
    index = [("10:00", 100.0), ("10:20", 101.0), ("10:40", 100.5), ("11:10", 100.8), ("11:40", 101.5)]
    index += [("12:10", 102.0), ("12:40", 102.5)]
    for hm, value in index:
        payload = {"timestamp": f"2026-03-10T{hm}:00Z", "value": value}
        await mosquitto_pub(device(running), meter["mqtt_topic"], json.dumps(payload))

    async def day() -> float | None:
        params = {"group_by": "sensor", "period": "day", "start": "2026-03-10T00:00:00+01:00"}
        params["end"] = "2026-03-11T00:00:00+01:00"
        found = (await client.get("/api/v1/iot/consumption", params=params, headers=headers)).json()
        [bucket] = [g for g in found["groups"] if g["key"] == meter["id"]][0]["buckets"]
        total: float | None = bucket["consumption"]
        return total if total is not None and bucket["complete"] is False and abs(total - 2.5) < 1e-9 else None

    assert await eventually(day) == pytest.approx(2.5)


async def _has(probe, count: int) -> bool:  # type: ignore[no-untyped-def]
    return len(await probe()) == count


@shared_platform
async def test_live_stream_pushes_readings_of_subscribed_sensors(
    platform: tuple[bootstrap.Running, httpx.AsyncClient],
) -> None:
    running, client = platform
    assert running.demo is not None
    token = (await login(client, demo.OWNER_EMAIL))["Authorization"].removeprefix("Bearer ")
    owner_sensors = (await client.get("/api/v1/iot/sensors", headers={"Authorization": f"Bearer {token}"})).json()
    mine = next(s for s in owner_sensors if s["unit_id"] is not None)
    neighbours = [
        s for s in running.demo.sensors if s.unit_id is not None and str(s.id) not in {o["id"] for o in owner_sensors}
    ]
    url = running.http_url.replace("http://", "ws://") + f"/api/v1/iot/stream?access_token={token}"
    async with websockets.connect(url) as ws:
        # A neighbour's sensor id in the request is dropped: owners only get what they may read.
        await ws.send(json.dumps({"action": "subscribe", "sensor_ids": [mine["id"], str(neighbours[0].id)]}))
        subscribed = json.loads(await ws.recv())
        assert subscribed == {"type": "subscribed", "sensor_ids": [mine["id"]]}
        value = 987654.321
        payload = {"timestamp": utcnow().isoformat(), "value": value}
        await mosquitto_pub(device(running), mine["mqtt_topic"], json.dumps(payload))
        async with asyncio.timeout(15):
            while True:  # the simulator's own readings of this sensor may come first
                message = json.loads(await ws.recv())
                if message["type"] == "alert":  # the demo's own alerts on this sensor (a critical flow, say)
                    assert message["alert"]["sensor_id"] == mine["id"]
                    continue
                assert message["type"] == "readings"
                assert {r["sensor_id"] for r in message["readings"]} == {mine["id"]}
                if any(r["value"] == value for r in message["readings"]):
                    break


@shared_platform
async def test_stream_refuses_a_missing_token(platform: tuple[bootstrap.Running, httpx.AsyncClient]) -> None:
    running, _ = platform
    url = running.http_url.replace("http://", "ws://") + "/api/v1/iot/stream"
    with pytest.raises(websockets.exceptions.InvalidStatus):
        async with websockets.connect(url):
            pass


@shared_platform
async def test_metrics_count_ingested_readings(platform: tuple[bootstrap.Running, httpx.AsyncClient]) -> None:
    _, client = platform

    async def stored() -> float:
        text = (await client.get("/metrics")).text
        line = next(x for x in text.splitlines() if x.startswith("koprogo_readings_stored_total "))
        return float(line.split()[1])

    assert await eventually(stored, timeout=30) > 0


@shared_platform
async def test_the_embedded_broker_refuses_anonymous_clients_and_keeps_devices_to_their_topics(
    platform: tuple[bootstrap.Running, httpx.AsyncClient],
) -> None:
    running, client = platform
    assert running.demo is not None
    anonymous = await asyncio.create_subprocess_exec(
        "mosquitto_pub", *login_args(running.mqtt), "-t", "koprogo/x", "-m", "{}", stderr=asyncio.subprocess.PIPE
    )
    _, err = await anonymous.communicate()
    assert anonymous.returncode != 0 and b"not authorised" in err.lower()

    trial = Client(device(running), version=MQTTv311)
    try:
        assert str(await asyncio.to_thread(trial.connect)) == "Success"
        for topic_filter in ("#", "koprogo/#"):
            assert str(await asyncio.to_thread(trial.subscribe, topic_filter)) == "Unspecified error"
    finally:
        trial.close()

    # Another organization's topic: dropped by the broker, so not even a dead letter of an unknown organization.
    headers = await login(client, demo.ADMIN_EMAIL)
    sensor = running.demo.sensors[0]
    payload = json.dumps({"timestamp": utcnow().isoformat(), "value": 123456.5})
    await mosquitto_pub(device(running), f"koprogo/{uuid.uuid4()}/{uuid.uuid4()}/x/readings", payload)
    await mosquitto_pub(device(running), sensor.mqtt_topic, payload)

    async def stored() -> list[object]:
        url = f"/api/v1/iot/sensors/{sensor.id}/readings"
        today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0).isoformat()  # a zone: RFC 3339
        found = (await client.get(url, params={"start": today}, headers=headers)).json()
        return [r for r in found if r["value"] == 123456.5]

    await eventually(stored)
    counts = (await client.get("/api/v1/ingest/dead-letters/counts", headers=headers)).json()
    assert "unknown_organization" not in counts


@shared_platform
async def test_a_credential_revoked_through_the_api_is_disconnected_from_the_embedded_broker(
    platform: tuple[bootstrap.Running, httpx.AsyncClient],
) -> None:
    running, client = platform
    headers = await login(client, demo.SYNDIC_EMAIL)
    issued = (await client.post("/api/v1/iot/device-credentials", json={"name": "gw"}, headers=headers)).json()
    endpoint = running.mqtt.with_login(issued["username"], issued["password"])
    gateway = Client(endpoint, version=MQTTv311)
    try:
        assert str(await asyncio.to_thread(gateway.connect)) == "Success"
        response = await client.delete(f"/api/v1/iot/device-credentials/{issued['id']}", headers=headers)
        assert response.status_code == 200
        await asyncio.to_thread(gateway.disconnected)
    finally:
        gateway.close()
    again = Client(endpoint, version=MQTTv311)
    try:
        assert str(await asyncio.to_thread(again.connect)) == "Not authorized"
    finally:
        again.close()


async def test_up_over_the_shipped_mosquitto_in_tls_gives_the_demo_its_logins(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """`up --demo` against Mosquitto's TLS listener with its admin login and CA: the worker, the admin client and
    the simulator connect over TLS; the simulator's and the printed logins are issued through dynamic security."""
    server = mosquitto.server
    assert server.authority is not None
    ingest, admin = server.endpoint_of(server.ingest, tls=True), server.endpoint_of(server.admin, tls=True)
    settings = Settings(
        data_dir=tmp_path,
        mqtt=MqttSettings(
            url=f"mqtts://{ingest.username}:{ingest.password}@127.0.0.1:{ingest.port}",
            admin_url=f"mqtts://{admin.username}:{admin.password}@127.0.0.1:{admin.port}",
            ca_file=server.authority.ca_file,
            client_id=f"up-{uuid.uuid4().hex[:8]}",
        ),
        http=HttpSettings(port=free_port()),
    )
    ready: asyncio.Future[bootstrap.Running] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(bootstrap.run_embedded(settings, with_demo=True, on_ready=ready.set_result))
    try:
        running = await asyncio.wait_for(asyncio.shield(ready), timeout=90)
        assert running.demo is not None and running.device is not None and running.device.tls
        assert running.device.username in (await server.accounts().logins() or set())
        async with httpx.AsyncClient(base_url=running.http_url, timeout=10) as client:
            headers = await login(client, demo.SYNDIC_EMAIL)
            sensor = running.demo.sensors[0]
            url = f"/api/v1/iot/sensors/{sensor.id}/readings"
            since = {"start": utcnow().isoformat()}

            async def simulated() -> list[dict[str, object]]:
                found: list[dict[str, object]] = (await client.get(url, params=since, headers=headers)).json()
                return found

            await eventually(simulated, timeout=30)
            by_hand = Client(running.device, tls=client_tls(server.authority.ca_file))
            try:
                assert str(await asyncio.to_thread(by_hand.connect)) == "Success"
                payload = json.dumps({"timestamp": utcnow().isoformat(), "value": 4242.5})
                assert str(await asyncio.to_thread(by_hand.publish, sensor.mqtt_topic, payload)) == "Success"
            finally:
                by_hand.close()

            async def stored_by_hand() -> bool:
                return any(r["value"] == 4242.5 for r in await simulated())

            await eventually(stored_by_hand, timeout=30)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
