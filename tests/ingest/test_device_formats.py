"""Field device formats through a real broker, mapped to registered sensors by (device id, field)."""

import json
import uuid

import pytest

from koprogo_iot.devices.registry import decoders
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.sensors import DeviceFormat, IoTSensor, SensorType
from koprogo_iot.ingest.mqtt_worker import MqttIngestWorker
from koprogo_iot.ingest.pipeline import Pipeline
from koprogo_iot.storage.ports import Storage
from tests.conftest import Mosquitto, Tenant, eventually, make_tenant, mosquitto_pub, running

pytestmark = pytest.mark.mosquitto


def worker(storage: Storage, mosquitto: Mosquitto) -> MqttIngestWorker:
    formats = {DeviceFormat(k): v for k, v in decoders().items()}
    return MqttIngestWorker(Pipeline(storage, decoders=formats), mosquitto.endpoint, f"fmt-{uuid.uuid4().hex[:8]}")


def device_sensor(t: Tenant, device: str, fmt: str, field: str, kind: SensorType, unit: str) -> IoTSensor:
    return IoTSensor(
        organization_id=t.organization.id,
        building_id=t.building.id,
        unit_id=t.units[0].id,
        sensor_id=device,
        device_format=fmt,
        device_field=field,
        sensor_type=kind,
        manufacturer="x",
        model="y",
        location=field,
        unit_of_measure=unit,
    )


async def test_shelly_energy_in_wh_is_stored_in_the_sensors_kwh(storage: Storage, mosquitto: Mosquitto) -> None:
    t = await make_tenant(storage)
    device = "shellypro3em-a8032abe54dc"
    energy = device_sensor(t, device, "shelly", "emdata:0.total_act", SensorType.ELECTRICITY, "kWh")
    power = device_sensor(t, device, "shelly", "em:0.total_act_power", SensorType.ELECTRICITY, "kW")
    power = IoTSensor(**{**_fields(power), "kind": "instantaneous"})
    for s in (energy, power):
        await storage.sensors.add(s)
    ts = utcnow().timestamp() - 5
    message = {
        "src": device,
        "dst": "koprogo",
        "method": "NotifyStatus",
        "params": {
            "ts": ts,
            "em:0": {"id": 0, "a_act_power": 100.0, "total_act_power": 1530.0},
            "emdata:0": {"id": 0, "total_act": 123456.0, "a_total_act_energy": 50000.0},
        },
    }
    topic = f"koprogo/{t.organization.id}/{t.building.id}/shelly/{device}/events/rpc"
    async with running(worker(storage, mosquitto)) as w:
        await mosquitto_pub(mosquitto, topic, json.dumps(message))
        [stored_energy] = await eventually(lambda: storage.readings.recent(t.organization.id, energy.id))
        [stored_power] = await eventually(lambda: storage.readings.recent(t.organization.id, power.id))
    assert stored_energy.value == pytest.approx(123.456) and stored_energy.unit_of_measure == "kWh"
    assert stored_power.value == pytest.approx(1.53)
    assert stored_energy.timestamp.timestamp() == pytest.approx(ts, abs=1e-3)
    assert w.pipeline.stats.rejected == {}  # the unregistered phase values are ignored, not errors


async def test_wmbus_water_meter_with_status_flags(storage: Storage, mosquitto: Mosquitto) -> None:
    t = await make_tenant(storage)
    meter = device_sensor(t, "00112233", "wmbus", "total_m3", SensorType.COLD_WATER, "m³")
    await storage.sensors.add(meter)
    telegram = {
        "_": "telegram",
        "media": "cold water",
        "meter": "multical21",
        "name": "App1Water",
        "id": "00112233",
        "total_m3": 6.408,
        "target_m3": 6.408,
        "max_flow_m3h": 0,
        "flow_temperature_c": 127,
        "external_temperature_c": 19,
        "status": "DRY",
        "timestamp": utcnow().isoformat(),
        "rssi_dbm": -82,
    }
    async with running(worker(storage, mosquitto)):
        await mosquitto_pub(
            mosquitto, f"koprogo/{t.organization.id}/{t.building.id}/wmbus/App1Water", json.dumps(telegram)
        )
        [reading] = await eventually(lambda: storage.readings.recent(t.organization.id, meter.id))
    assert reading.value == 6.408 and reading.signal_strength == -82 and reading.quality == "warning"
    # The meter's own status flag is a fault to look at (LEAK or BURST would be critical).
    [alert] = await storage.alerts.select(t.organization.id)
    assert (alert.alert_type, alert.rule, alert.severity) == ("sensor_faulty", "device_flag", "warning")
    assert "DRY" in alert.message and alert.status == "active"


async def test_a_device_no_sensor_reads_is_an_unknown_sensor(storage: Storage, mosquitto: Mosquitto) -> None:
    t = await make_tenant(storage)
    topic = f"koprogo/{t.organization.id}/{t.building.id}/tasmota/tele/unknown-plug/SENSOR"
    body = json.dumps({"Time": "2026-11-28T10:00:00", "ENERGY": {"Total": 1.5, "Power": 20}})
    async with running(worker(storage, mosquitto)):
        await mosquitto_pub(mosquitto, topic, body)
        [letter] = await eventually(lambda: storage.dead_letters.recent(t.organization.id))
    assert letter.reason == "unknown_sensor" and "unknown-plug" in letter.detail


def _fields(sensor: IoTSensor) -> dict[str, object]:
    return {name: getattr(sensor, name) for name in sensor.__dataclass_fields__}
