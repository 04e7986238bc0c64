"""A BACnet/IP controller simulated with bacpypes3 (the poller's own library) on the loopback network.

Loopback has no broadcast, so Who-Is discovery cannot work here (checked: a global Who-Is between 127.0.0.1 and
127.0.0.2 on one port finds nothing): the poller addresses controllers by IP:port, as a site's configuration does.
"""

from __future__ import annotations

import contextlib
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from bacpypes3.app import Application
from bacpypes3.local.analog import AnalogInputObject, AnalogValueObject
from bacpypes3.local.device import DeviceObject
from bacpypes3.local.networkport import NetworkPortObject
from bacpypes3.local.object import Object as LocalObject
from bacpypes3.object import AccumulatorObject, PulseConverterObject

from koprogo_iot.domain.sensors import IoTSensor, SensorType
from tests.conftest import Tenant

SIEMENS = 7  # BACnet vendor identifier of Siemens Building Technologies
PXC_INSTANCE = 2098177  # a Desigo PXC's device instance as they are usually numbered (site 2, device 1)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class LocalAccumulator(LocalObject, AccumulatorObject):  # bacpypes3 ships no local accumulator
    pass


class LocalPulseConverter(LocalObject, PulseConverterObject):
    pass


class ReadPropertyOnly(Application):
    """A controller without ReadPropertyMultiple: it rejects the service as unrecognized."""

    do_ReadPropertyMultipleRequest = None


@dataclass
class SimulatedController:
    """A Desigo PXC as far as the poller can tell: an outside temperature, an energy accumulator (1 pulse =
    0.01 kWh), a gas accumulator without a pulse rate, a water meter's pulse converter, a flow temperature, and a
    value that is not a number."""

    port: int
    device_instance: int
    temperature: Any
    energy: Any
    water: Any
    flow_temperature: Any

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@contextlib.asynccontextmanager
async def simulated_controller(
    port: int | None = None, device_instance: int = PXC_INSTANCE, read_property_multiple: bool = True
) -> AsyncIterator[SimulatedController]:
    port = port or free_udp_port()
    normal = {"statusFlags": [0, 0, 0, 0], "eventState": "normal", "outOfService": False}
    temperature = AnalogInputObject(
        objectIdentifier=("analog-input", 1), objectName="Outside temperature", presentValue=21.5, **normal
    )
    energy = LocalAccumulator(
        objectIdentifier=("accumulator", 1),
        objectName="Electricity index",
        presentValue=123456,
        pulseRate=42,
        scale={"floatScale": 0.01},
        maxPresValue=99_999_999,
        units="kilowatt-hours",
        **normal,
    )
    water = LocalPulseConverter(
        objectIdentifier=("pulse-converter", 1),
        objectName="Cold water meter",
        presentValue=4.2,
        count=4200,
        scaleFactor=0.001,
        units="cubic-meters",
        **normal,
    )
    no_pulse_rate = LocalAccumulator(
        objectIdentifier=("accumulator", 2), objectName="Gas index", presentValue=5, maxPresValue=99_999, **normal
    )
    flow_temperature = AnalogValueObject(
        objectIdentifier=("analog-value", 1), objectName="Flow temperature", presentValue=65.0, **normal
    )
    broken = AnalogValueObject(
        objectIdentifier=("analog-value", 2), objectName="Failed sensor", presentValue=float("nan"), **normal
    )
    device = DeviceObject(
        objectIdentifier=("device", device_instance), objectName=f"PXC {device_instance}", vendorIdentifier=SIEMENS
    )
    network = NetworkPortObject(f"127.0.0.1/32:{port}", objectIdentifier=("network-port", 1), objectName="NP-1")
    kind = Application if read_property_multiple else ReadPropertyOnly
    app = kind.from_object_list([device, network, temperature, energy, no_pulse_rate, water, flow_temperature, broken])
    try:
        yield SimulatedController(port, device_instance, temperature, energy, water, flow_temperature)
    finally:
        app.close()


def native_sensor(t: Tenant, name: str, sensor_type: SensorType, unit: str, interval: int = 60) -> IoTSensor:
    """A sensor of the tenant's building as a BMS point feeds it (a common meter: no unit)."""
    return IoTSensor(
        organization_id=t.organization.id,
        building_id=t.building.id,
        sensor_id=f"PXC-{name}-{uuid.uuid4().hex[:6]}",
        sensor_type=sensor_type,
        manufacturer="Siemens",
        model="Desigo PXC",
        location=name,
        unit_of_measure=unit,
        sampling_interval=interval,
    )
