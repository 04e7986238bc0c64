"""A fleet of simulated meters registered for load: one organization, one building, N native sensors."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from koprogo_iot.domain.errors import NotFound
from koprogo_iot.domain.sensors import IoTSensor, SensorType
from koprogo_iot.domain.tenancy import Building, Organization
from koprogo_iot.storage.ports import SensorFilter, Storage

_NAMESPACE = uuid.UUID("8d3f2a8e-4c1b-4f7a-9b0e-2f6f1c9a7d31")


@dataclass(frozen=True, slots=True)
class Fleet:
    organization: Organization
    building: Building
    sensors: list[IoTSensor]

    @property
    def topics(self) -> list[str]:
        return [s.mqtt_topic for s in self.sensors]


async def provision_fleet(storage: Storage, count: int) -> Fleet:
    """The load-test organization with `count` water meters (`LOAD-00000`...), creating what is missing."""
    org = Organization(id=uuid.uuid5(_NAMESPACE, "organization"), name="Load test")
    building = Building(id=uuid.uuid5(_NAMESPACE, "building"), organization_id=org.id, name="Load test building")
    try:
        await storage.tenancy.get_organization(org.id)
    except NotFound:
        await storage.tenancy.add_organization(org)
        await storage.tenancy.add_building(building)
    existing = {s.sensor_id: s for s in await storage.sensors.select(org.id, SensorFilter(building_id=building.id))}
    sensors = []
    for i in range(count):
        device = f"LOAD-{i:05d}"
        sensor = existing.get(device)
        if sensor is None:
            sensor = IoTSensor(
                id=uuid.uuid5(_NAMESPACE, device),
                organization_id=org.id,
                building_id=building.id,
                sensor_id=device,
                sensor_type=SensorType.COLD_WATER,
                manufacturer="KoproGo",
                model="loadgen",
                location=f"meter {i}",
                unit_of_measure="m³",
                sampling_interval=10,
            )
            await storage.sensors.add(sensor)
        sensors.append(sensor)
    return Fleet(org, building, sensors)
