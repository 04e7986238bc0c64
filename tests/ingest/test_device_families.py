"""Every device family end to end: sensors registered through the API (in units other than the device's, device ids
typed in any case), real payloads published to a real Mosquitto, read back converted, with battery and signal."""

import json
import uuid
from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from koprogo_iot.devices.registry import decoders
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.sensors import DeviceFormat
from koprogo_iot.ingest.mqtt_worker import MqttIngestWorker
from koprogo_iot.ingest.pipeline import Pipeline
from koprogo_iot.storage.ports import Storage
from tests.api.conftest import Api
from tests.conftest import Mosquitto, Tenant, eventually, mosquitto_pub, running
from tests.devices.test_chirpstack import uplink as chirpstack_uplink
from tests.devices.test_ttn import uplink as ttn_uplink

pytestmark = pytest.mark.mosquitto
SENSORS = "/api/v1/iot/sensors"


def worker(storage: Storage, mosquitto: Mosquitto) -> MqttIngestWorker:
    formats = {DeviceFormat(k): v for k, v in decoders().items()}
    return MqttIngestWorker(Pipeline(storage, decoders=formats), mosquitto.endpoint, f"fam-{uuid.uuid4().hex[:8]}")


async def register(api: Api, headers: Mapping[str, str], t: Tenant, **fields: Any) -> dict[str, Any]:
    body = {
        "building_id": str(t.building.id),
        "unit_id": str(t.units[0].id),
        "manufacturer": "m",
        "model": "m",
        "location": fields.get("device_field", "here"),
    } | fields
    response = await api.client.post(SENSORS, json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def readings(client: httpx.AsyncClient, headers: Mapping[str, str], sensor: Mapping[str, Any]) -> list[Any]:
    response = await client.get(f"{SENSORS}/{sensor['id']}/readings", headers=headers)
    assert response.status_code == 200, response.text
    found: list[Any] = response.json()
    return found


async def one_reading(api: Api, headers: Mapping[str, str], sensor: Mapping[str, Any]) -> dict[str, Any]:
    [reading] = await eventually(lambda: readings(api.client, headers, sensor))
    return dict(reading)


async def test_shelly_pro_3em(api: Api, mosquitto: Mosquitto) -> None:
    t, h = api.a, await api.token(api.a.syndic.email)
    energy = await register(
        api,
        h,
        t,
        sensor_id="ShellyPro3EM-A8032ABE54DC",
        device_format="shelly",
        device_field="emdata:0.total_act",
        sensor_type="electricity",
        unit_of_measure="kWh",
    )
    power = await register(
        api,
        h,
        t,
        sensor_id="shellypro3em-a8032abe54dc",
        device_format="shelly",
        device_field="em:0.total_act_power",
        sensor_type="electricity",
        kind="instantaneous",
        unit_of_measure="kW",
    )
    device = "shellypro3em-a8032abe54dc"
    assert energy["sensor_id"] == device  # a MAC-based id, compared in lower case
    assert energy["mqtt_topic"] == f"koprogo/{t.organization.id}/{t.building.id}/shelly/{device}"
    status = {
        "src": device,
        "method": "NotifyFullStatus",
        "params": {
            "ts": utcnow().timestamp() - 5,
            "em:0": {"id": 0, "total_act_power": 1530.0, "errors": []},
            "emdata:0": {"id": 0, "total_act": 123456.0},
            "wifi": {"sta_ip": "192.168.1.40", "status": "got ip", "ssid": "Residence", "rssi": -58},
        },
    }
    async with running(worker(api.storage, mosquitto)):
        await mosquitto_pub(mosquitto, f"{energy['mqtt_topic']}/events/rpc", json.dumps(status))
        stored_energy = await one_reading(api, h, energy)
        stored_power = await one_reading(api, h, power)
    assert stored_energy["value"] == pytest.approx(123.456) and stored_energy["unit_of_measure"] == "kWh"
    assert stored_power["value"] == pytest.approx(1.53)
    assert stored_energy["signal_strength"] == stored_power["signal_strength"] == -58  # the device's Wi-Fi
    assert stored_energy["battery_level"] is None  # mains powered


@pytest.mark.parametrize("typed", ["0101AABBCCDDEEFF", "0101aabbccddeeff"])
async def test_chirpstack_v4(api: Api, mosquitto: Mosquitto, typed: str) -> None:
    t, h = api.a, await api.token(api.a.syndic.email)
    water = await register(
        api,
        h,
        t,
        sensor_id=typed,
        device_format="chirpstack",
        device_field="water.total_m3",
        sensor_type="cold_water",
        unit_of_measure="L",
    )
    event = chirpstack_uplink(time=utcnow().isoformat())
    event["object"]["battery"] = 87
    prefix = f"koprogo/{t.organization.id}/{t.building.id}/chirpstack"
    topic = f"{prefix}/application/{event['deviceInfo']['applicationId']}/device/0101aabbccddeeff/event/up"
    async with running(worker(api.storage, mosquitto)):
        await mosquitto_pub(mosquitto, topic, json.dumps(event))
        stored = await one_reading(api, h, water)
    assert stored["value"] == pytest.approx(123456.0) and stored["unit_of_measure"] == "L"  # 123.456 m³
    assert (stored["battery_level"], stored["signal_strength"]) == (87, -87)  # the best of two gateways


async def test_the_things_stack_v3_with_an_upper_case_dev_eui(api: Api, mosquitto: Mosquitto) -> None:
    t, h = api.a, await api.token(api.a.syndic.email)
    meter = await register(
        api,
        h,
        t,
        sensor_id="70B3D57ED005A1B2",
        device_format="ttn",
        device_field="index_m3",
        sensor_type="cold_water",
        unit_of_measure="L",
    )
    water = await register(
        api,
        h,
        t,
        sensor_id="70B3D57ED005A1B2",
        device_format="ttn",
        device_field="temperature.water",
        sensor_type="temperature",
        unit_of_measure="°C",
    )
    message = ttn_uplink(decoded_payload={"index_m3": 812.345, "battery_pct": 92, "temperature": {"water": 11.5}})
    message["received_at"] = utcnow().isoformat()
    topic = f"koprogo/{t.organization.id}/{t.building.id}/ttn/v3/koprogo-water@ttn/devices/eui-70b3d57ed005a1b2/up"
    async with running(worker(api.storage, mosquitto)):
        await mosquitto_pub(mosquitto, topic, json.dumps(message))
        stored = await one_reading(api, h, meter)
        temperature = await one_reading(api, h, water)
    assert stored["value"] == pytest.approx(812345.0)
    assert temperature["value"] == 11.5
    # The device's battery and signal reach every sensor it feeds.
    for reading in (stored, temperature):
        assert (reading["battery_level"], reading["signal_strength"]) == (92, -96)


async def test_wmbusmeters_kamstrup_water_and_heat_meters(api: Api, mosquitto: Mosquitto) -> None:
    t, h = api.a, await api.token(api.a.syndic.email)
    water = await register(
        api,
        h,
        t,
        sensor_id="00112233",
        device_format="wmbus",
        device_field="total_m3",
        sensor_type="cold_water",
        unit_of_measure="L",
    )
    heat = await register(
        api,
        h,
        t,
        sensor_id="6789ABCD",
        device_format="wmbus",
        device_field="total_energy_consumption_kwh",
        sensor_type="heating",
        kind="cumulative",
        unit_of_measure="MWh",
    )
    assert heat["sensor_id"] == "6789abcd"
    now = utcnow().isoformat()
    multical21 = {
        "media": "cold water",
        "meter": "multical21",
        "name": "App1Water",
        "id": "00112233",
        "total_m3": 6.408,
        "target_m3": 6.3,
        "flow_temperature_c": 127,
        "status": "OK",
        "timestamp": now,
        "rssi_dbm": -82,
    }
    kamheat = {
        "media": "heat",
        "meter": "kamheat",
        "name": "App1Heat",
        "id": "6789abcd",
        "total_energy_consumption_kwh": 15_234,
        "total_volume_m3": 402.1,
        "status": "OK",
        "timestamp": now,
        "rssi_dbm": -71,
    }
    prefix = f"koprogo/{t.organization.id}/{t.building.id}/wmbus"
    assert water["mqtt_topic"] == f"{prefix}/00112233"
    async with running(worker(api.storage, mosquitto)):
        await mosquitto_pub(mosquitto, f"{prefix}/00112233", json.dumps(multical21))
        await mosquitto_pub(mosquitto, f"{prefix}/6789abcd", json.dumps(kamheat))
        stored_water = await one_reading(api, h, water)
        stored_heat = await one_reading(api, h, heat)
    assert (stored_water["value"], stored_water["signal_strength"]) == (6408.0, -82)
    assert (stored_heat["value"], stored_heat["signal_strength"]) == (pytest.approx(15.234), -71)


async def test_tasmota_energy_monitor(api: Api, mosquitto: Mosquitto) -> None:
    t, h = api.a, await api.token(api.a.syndic.email)
    total = await register(
        api,
        h,
        t,
        sensor_id="tasmota_8A3F1C",
        device_format="tasmota",
        device_field="ENERGY.Total",
        sensor_type="electricity",
        unit_of_measure="Wh",
    )
    power = await register(
        api,
        h,
        t,
        sensor_id="tasmota_8A3F1C",
        device_format="tasmota",
        device_field="ENERGY.Power",
        sensor_type="electricity",
        kind="instantaneous",
        unit_of_measure="kW",
    )
    assert total["mqtt_topic"] == f"koprogo/{t.organization.id}/{t.building.id}/tasmota/tele/tasmota_8A3F1C/SENSOR"
    local = utcnow().astimezone().strftime("%Y-%m-%dT%H:%M:%S%z")  # SetOption52 1: the offset is given
    sensor = {
        "Time": local,
        "ENERGY": {"TotalStartTime": "2026-01-01T00:00:00", "Total": 3.128, "Today": 0.2, "Power": 205, "Voltage": 231},
    }
    async with running(worker(api.storage, mosquitto)):
        await mosquitto_pub(mosquitto, total["mqtt_topic"], json.dumps(sensor))
        stored_total = await one_reading(api, h, total)
        stored_power = await one_reading(api, h, power)
    assert stored_total["value"] == pytest.approx(3128.0) and stored_power["value"] == pytest.approx(0.205)


async def test_a_wmbus_leak_is_one_leak_alert_on_the_volume_meter(api: Api, mosquitto: Mosquitto) -> None:
    t, h = api.a, await api.token(api.a.syndic.email)
    volume = await register(
        api,
        h,
        t,
        sensor_id="00348799",
        device_format="wmbus",
        device_field="total_m3",
        sensor_type="cold_water",
        unit_of_measure="m³",
    )
    flow_temperature = await register(
        api,
        h,
        t,
        sensor_id="00348799",
        device_format="wmbus",
        device_field="flow_temperature_c",
        sensor_type="temperature",
        unit_of_measure="°C",
    )
    telegram = {
        "meter": "multical21",
        "id": "00348799",
        "total_m3": 88.1,
        "flow_temperature_c": 14,
        "status": "LEAK",
        "timestamp": utcnow().isoformat(),
        "rssi_dbm": -77,
    }
    async with running(worker(api.storage, mosquitto)):
        await mosquitto_pub(mosquitto, volume["mqtt_topic"], json.dumps(telegram))
        await one_reading(api, h, flow_temperature)
        response = await eventually(lambda: active_alerts(api, h))
    [alert] = response
    assert (alert["sensor_id"], alert["alert_type"], alert["severity"]) == (volume["id"], "leak_detected", "critical")
    assert "LEAK" in alert["message"]


async def active_alerts(api: Api, headers: Mapping[str, str]) -> list[Any]:
    response = await api.client.get("/api/v1/iot/alerts", params={"status": "active"}, headers=headers)
    found: list[Any] = response.json()
    return found


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"device_format": "shelly", "device_field": "emdata:0.total_ac", "unit_of_measure": "kWh"},
            "emdata:0.total_act",
        ),
        (
            {"device_format": "shelly", "device_field": "emdata:0.total_act", "unit_of_measure": "m³"},
            "does not convert",
        ),
        ({"device_format": "wmbus", "device_field": "total", "unit_of_measure": "m³"}, "_m3"),
        ({"device_format": "tasmota", "device_field": "ENERGY.Today", "unit_of_measure": "kWh"}, "ENERGY.Total"),
        ({"device_format": "chirpstack", "device_field": "water total", "unit_of_measure": "m³"}, "flattened"),
        ({"device_format": "ttn", "unit_of_measure": "m³"}, "device field"),
        ({"device_format": "zigbee", "device_field": "x", "unit_of_measure": "m³"}, "device_format"),
    ],
)
async def test_a_wrong_device_field_is_a_422_naming_what_the_format_offers(
    api: Api, fields: dict[str, str], message: str
) -> None:
    h = await api.token(api.a.syndic.email)
    body = {
        "building_id": str(api.a.building.id),
        "sensor_id": "DEV-1",
        "sensor_type": "cold_water",
        "manufacturer": "m",
        "model": "m",
        "location": "here",
    } | fields
    response = await api.client.post(SENSORS, json=body, headers=h)
    assert response.status_code == 422, response.text
    assert message in response.json()["message"]


async def test_formats_are_listed_with_their_fields_and_topic(api: Api) -> None:
    h = await api.token(api.a.owner.email)
    response = await api.client.get("/api/v1/iot/devices/formats", headers=h)
    formats = {f["format"]: f for f in response.json()}
    assert set(formats) == {"shelly", "chirpstack", "ttn", "wmbus", "tasmota"}
    shelly = formats["shelly"]
    assert shelly["closed"] and {"field": "emdata:0.total_act", "unit": "Wh", "kind": "cumulative"} in shelly["fields"]
    assert formats["ttn"]["topic"].endswith("/ttn/v3/+/devices/+/up")


async def test_a_device_nobody_reads_is_listed_with_what_it_sends(api: Api, mosquitto: Mosquitto) -> None:
    t, h = api.a, await api.token(api.a.syndic.email)
    message = ttn_uplink(decoded_payload={"index_m3": 812.345, "battery_pct": 92, "temperature": {"water": 11.5}})
    message["received_at"] = utcnow().isoformat()
    topic = f"koprogo/{t.organization.id}/{t.building.id}/ttn/v3/koprogo-water@ttn/devices/eui-70b3d57ed005a1b2/up"

    async def unclaimed(headers: Mapping[str, str]) -> list[Any]:
        response = await api.client.get("/api/v1/iot/devices/unclaimed", headers=headers)
        assert response.status_code == 200, response.text
        found: list[Any] = response.json()
        return found

    async with running(worker(api.storage, mosquitto)):
        await mosquitto_pub(mosquitto, topic, json.dumps(message))
        [device] = await eventually(lambda: unclaimed(h))
    assert (device["device_format"], device["device_id"], device["building_id"]) == (
        "ttn",
        "70b3d57ed005a1b2",
        str(t.building.id),
    )
    assert (device["battery_level"], device["signal_strength"], device["topic"]) == (92, -96, topic)
    fields = {f["field"]: f for f in device["fields"]}
    assert fields["index_m3"] == {
        "field": "index_m3",
        "value": 812.345,
        "unit": "m3",
        "kind": "cumulative",
        "sensor_id": None,
    }
    assert set(fields) == {"index_m3", "battery_pct", "temperature.water"}
    assert await unclaimed(await api.token(api.b.syndic.email)) == []  # another organization sees nothing
    owner = await api.client.get("/api/v1/iot/devices/unclaimed", headers=await api.token(t.owner.email))
    assert owner.status_code == 403

    meter = await register(
        api,
        h,
        t,
        sensor_id="70B3D57ED005A1B2",
        device_format="ttn",
        device_field="index_m3",
        sensor_type="cold_water",
        unit_of_measure="m³",
    )
    [device] = await unclaimed(h)
    assert {f["field"]: f["sensor_id"] for f in device["fields"]}["index_m3"] == meter["id"]
    for field, kind, unit in (("battery_pct", "humidity", "%"), ("temperature.water", "temperature", "°C")):
        await register(
            api,
            h,
            t,
            sensor_id="70b3d57ed005a1b2",
            device_format="ttn",
            device_field=field,
            sensor_type=kind,
            unit_of_measure=unit,
        )
    assert await unclaimed(h) == []  # every field read: nothing left to register
