"""A fleet of simulated meters registered for load: one organization, one building, N native sensors."""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass

from koprogo_iot.domain.errors import NotFound
from koprogo_iot.domain.sensors import IoTSensor, SensorType
from koprogo_iot.domain.tenancy import Building, Organization
from koprogo_iot.storage.ports import SensorFilter, Store

_NAMESPACE = uuid.UUID("8d3f2a8e-4c1b-4f7a-9b0e-2f6f1c9a7d31")


@dataclass(frozen=True, slots=True)
class Fleet:
    organization: Organization
    building: Building
    sensors: list[IoTSensor]

    @property
    def topics(self) -> list[str]:
        return [s.mqtt_topic for s in self.sensors]


async def provision_fleet(store: Store, count: int) -> Fleet:
    """The load-test organization with `count` water meters (`LOAD-00000`...), creating what is missing."""
    org = Organization(id=uuid.uuid5(_NAMESPACE, "organization"), name="Load test")
    building = Building(id=uuid.uuid5(_NAMESPACE, "building"), organization_id=org.id, name="Load test building")
    try:
        await store.get_organization(org.id)
    except NotFound:
        await store.add_organization(org)
        await store.add_building(building)
    existing = {s.sensor_id: s for s in await store.list_sensors(org.id, SensorFilter(building_id=building.id))}
    sensors = []
    for i in range(count):
        device = f"LOAD-{i:05d}"
        sensor = existing.get(device)
        if sensor is None:
            sensor = IoTSensor(
                id=uuid.uuid5(_NAMESPACE, device), organization_id=org.id, building_id=building.id, sensor_id=device,
                sensor_type=SensorType.COLD_WATER, manufacturer="KoproGo", model="loadgen", location=f"meter {i}",
                unit_of_measure="m³", sampling_interval=10,
            )  # fmt: skip
            await store.add_sensor(sensor)
        sensors.append(sensor)
    return Fleet(org, building, sensors)


class Progress:
    """A one-line progress report on stderr, rewritten in place."""

    def __init__(self, total: int, label: str, words: tuple[str, str | None] = ("published", "acknowledged")) -> None:
        self.total = total
        self.label = label
        self.words = words

    def __call__(self, done: int, confirmed: int) -> None:
        share = done / self.total if self.total else 1.0
        bar = "#" * int(share * 30)
        first, second = self.words
        tail = f"  {second} {confirmed:,}" if second else ""
        sys.stderr.write(f"\r{self.label} [{bar:<30}] {share:4.0%}  {first} {done:,}{tail}  ")
        sys.stderr.flush()

    def done(self) -> None:
        sys.stderr.write("\n")
