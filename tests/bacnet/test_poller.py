"""The poller against a BACnet controller simulated on loopback, a real Mosquitto and a real ingest worker.

Points are configured through the API (or the port); what is asserted is what ingestion stored. Intervals run 20
times faster than configured (10 s becomes 0.5 s), and controllers have 0.3 s to answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from koprogo_iot.api.app import create_app
from koprogo_iot.bacnet.client import BacnetClient
from koprogo_iot.bacnet.poller import BacnetPoller
from koprogo_iot.bacnet.publisher import ReadingPublisher
from koprogo_iot.bootstrap import build_services
from koprogo_iot.domain.bacnet import BacnetPoint
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.domain.sensors import IoTSensor, SensorType
from koprogo_iot.ingest.mqtt_worker import MqttIngestWorker
from koprogo_iot.ingest.pipeline import Pipeline
from koprogo_iot.storage.ports import Storage
from tests.bacnet.conftest import PXC_INSTANCE, free_udp_port, native_sensor, simulated_controller
from tests.conftest import PASSWORD, Mosquitto, Tenant, eventually, make_tenant, running

pytestmark = pytest.mark.mosquitto

POINTS = "/api/v1/iot/bacnet/points"
SPEED = 20.0


@contextlib.asynccontextmanager
async def polling(storage: Storage, mosquitto: Mosquitto, t: Tenant) -> AsyncIterator[BacnetPoller]:
    """An ingest worker and a poller of the tenant's building, both running until the block ends."""
    worker = MqttIngestWorker(Pipeline(storage), mosquitto.endpoint, f"bacnet-test-{uuid.uuid4().hex[:8]}")
    client = await BacnetClient.open("127.0.0.1", free_udp_port(), 4_194_300, timeout=0.3)
    publisher = ReadingPublisher(await mosquitto.server.device(t.organization.id))
    publisher.start()
    poller = BacnetPoller(
        storage.bacnet, storage.sensors, client, publisher, t.organization.id, [t.building.id], 0.2, SPEED
    )
    async with running(worker), _task(poller.run()):
        try:
            yield poller
        finally:
            await publisher.close()
            client.close()


@contextlib.asynccontextmanager
async def _task(job: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    task = asyncio.ensure_future(job)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def count_of(storage: Storage, t: Tenant, sensor: IoTSensor, at_least: int) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        return await storage.readings.count(t.organization.id, sensor.id) >= at_least

    return probe


async def readings_with(storage: Storage, t: Tenant, sensor: IoTSensor, value: float) -> list[IoTReading]:
    """Once stored, the sensor's readings of `value` (to the micro-unit)."""

    async def probe() -> list[IoTReading]:
        found = await storage.readings.recent(t.organization.id, sensor.id)
        return [r for r in found if abs(r.value - value) < 1e-6]

    return await eventually(probe)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_points_configured_through_the_api_are_stored_scaled_and_follow_the_controller(
    storage: Storage, mosquitto: Mosquitto
) -> None:
    t = await make_tenant(storage)
    temperature = native_sensor(t, "outside", SensorType.TEMPERATURE, "°C")
    energy = native_sensor(t, "electricity", SensorType.ELECTRICITY, "kWh", interval=900)
    water = native_sensor(t, "water", SensorType.COLD_WATER, "m³")
    heating = native_sensor(t, "flow", SensorType.HEATING, "°C")
    for sensor in (temperature, energy, water, heating):
        await storage.sensors.add(sensor)
    app = create_app(build_services(storage, secret="test-secret-" + "x" * 40))
    async with (
        simulated_controller() as pxc,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://koprogo.test") as api,
    ):
        login = await api.post("/api/v1/auth/login", json={"email": t.syndic.email, "password": PASSWORD})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}

        async def configure(sensor: IoTSensor, **fields: object) -> dict[str, Any]:
            body = {"building_id": str(t.building.id), "sensor_id": str(sensor.id), "address": pxc.address}
            response = await api.post(POINTS, json=body | fields, headers=headers)
            assert response.status_code == 201, response.text
            return dict(response.json())

        await configure(temperature, object_type="analog-input", object_instance=1, polling_interval=10)
        # The energy index is read at its sensor's interval, 900 s (45 s here): no second read during the test,
        # but the one its configuration change brings.
        energy_point = await configure(energy, object_type="accumulator", object_instance=1, scale=0.01)
        await configure(
            water, object_type="pulse-converter", object_instance=1, property_identifier="count", scale=0.001
        )
        await configure(heating, object_type="analog-value", object_instance=1, device_instance=PXC_INSTANCE)
        published = metric("koprogo_bacnet_readings_published_total")

        started = utcnow()
        async with polling(storage, mosquitto, t) as poller:
            assert await readings_with(storage, t, temperature, 21.5)
            assert await readings_with(storage, t, energy, 1234.56)  # 123456 pulses of 0.01 kWh
            assert await readings_with(storage, t, water, 4.2)  # 4200 pulses of a litre
            [flow] = await readings_with(storage, t, heating, 65.0)
            assert started <= flow.timestamp <= utcnow()  # stamped with the poll time
            assert flow.unit_of_measure == "°C" and flow.battery_level is None and flow.signal_strength is None

            # The controller's values change: the next poll (0.5 s here) brings the temperature's.
            pxc.temperature.presentValue = -3.25
            pxc.energy.presentValue = 123_789
            assert await readings_with(storage, t, temperature, -3.25)

            # A configuration change is picked up at the next configuration read, and the point read at once.
            changed = await api.put(f"{POINTS}/{energy_point['id']}", json={"scale": 0.001}, headers=headers)
            assert changed.status_code == 200, changed.text
            assert await readings_with(storage, t, energy, 123.789)
            assert await storage.readings.count(t.organization.id, energy.id) == 2
            assert metric("koprogo_bacnet_points") == 4 and metric("koprogo_bacnet_points_failing") == 0
            assert await eventually(_acknowledged(poller.publisher))
    assert metric("koprogo_bacnet_readings_published_total") - published >= 6


def _acknowledged(publisher: ReadingPublisher) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        return publisher.unacknowledged == 0

    return probe


async def test_failing_points_are_logged_once_counted_and_do_not_stop_the_others(
    storage: Storage, mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="koprogo_iot.bacnet")
    t = await make_tenant(storage)
    sensors = [native_sensor(t, f"s{i}", SensorType.TEMPERATURE, "°C") for i in range(6)]
    switched_off = dataclasses.replace(native_sensor(t, "off", SensorType.TEMPERATURE, "°C"), status="inactive")
    sensors.append(switched_off)
    for sensor in sensors:
        await storage.sensors.add(sensor)
    nobody = free_udp_port()  # no controller answers there (yet)

    def point(sensor: IoTSensor, address: str, object_type: str, instance: int, **extra: object) -> BacnetPoint:
        fields: dict[str, object] = {
            "organization_id": t.organization.id,
            "building_id": t.building.id,
            "sensor_id": sensor.id,
            "address": address,
            "object_type": object_type,
            "object_instance": instance,
            "polling_interval": 10,
        }
        return BacnetPoint(**(fields | extra))  # type: ignore[arg-type]

    unreachable_before = metric("koprogo_bacnet_reads_total", result="unreachable")
    async with simulated_controller(read_property_multiple=False) as pxc:
        good, unknown, nan, wrong_device, unreachable, no_property, off = points = [
            point(sensors[0], pxc.address, "analog-input", 1, device_instance=PXC_INSTANCE),
            point(sensors[1], pxc.address, "analog-input", 99, device_instance=PXC_INSTANCE),
            point(sensors[2], pxc.address, "analog-value", 2, device_instance=PXC_INSTANCE),
            point(sensors[3], pxc.address, "analog-input", 1, device_instance=7),
            point(sensors[4], f"127.0.0.1:{nobody}", "analog-input", 1),
            point(sensors[5], pxc.address, "accumulator", 2, property_identifier="pulse-rate"),
            point(switched_off, pxc.address, "analog-input", 1),  # its messages would be refused: not polled
        ]
        for p in points:
            await storage.bacnet.add(p)
        async with polling(storage, mosquitto, t):
            # The good point goes on being read while the others fail at every poll.
            await eventually(count_of(storage, t, sensors[0], at_least=4))
            assert metric("koprogo_bacnet_points") == 6 and metric("koprogo_bacnet_points_failing") == 5
            assert metric("koprogo_bacnet_reads_total", result="unreachable") - unreachable_before >= 2
            warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            assert len(warnings) == 5, warnings  # once per point, however many polls failed
            assert _one(warnings, str(unknown.id)).endswith(
                "the controller answered object: unknown-object (unknown_object)"
            )
            assert "is not a finite number (not_numeric)" in _one(warnings, str(nan.id))
            assert f"{pxc.address} is not BACnet device 7 (wrong_device)" in _one(warnings, str(wrong_device.id))
            assert "no answer" in _one(warnings, str(unreachable.id))
            assert "property: unknown-property (unknown_property)" in _one(warnings, str(no_property.id))
            assert _logged(caplog, f"{pxc.address} refused ReadPropertyMultiple")
            assert len(_logged(caplog, str(off.id), "not polled")) == 1
            for failing in sensors[1:]:
                assert await storage.readings.count(t.organization.id, failing.id) == 0

            # The missing controller comes up on its address: its point recovers, and says so once.
            async with simulated_controller(port=nobody, device_instance=PXC_INSTANCE + 1) as late:
                late.temperature.presentValue = 12.0
                assert await readings_with(storage, t, sensors[4], 12.0)
                recovered = _logged(caplog, "recovered")
                assert len(recovered) == 1 and str(unreachable.id) in recovered[0]
                assert metric("koprogo_bacnet_points_failing") == 4
    assert not [m for m in recovered + warnings if str(good.id) in m]  # the good point never changed state


def _logged(caplog: pytest.LogCaptureFixture, *needles: str) -> list[str]:
    messages = [r.getMessage() for r in caplog.records]
    return [m for m in messages if all(n in m for n in needles)]


def _one(messages: Sequence[str], needle: str) -> str:
    [found] = [m for m in messages if needle in m]
    return found
