"""BACnet points in the database, on SQLite and PostgreSQL: scoped by organization, one per sensor, gone with it."""

import uuid
from dataclasses import replace

import pytest

from koprogo_iot.domain.bacnet import BacnetPoint, PropertyIdentifier
from koprogo_iot.domain.errors import Conflict, NotFound
from koprogo_iot.domain.sensors import IoTSensor
from koprogo_iot.domain.tenancy import Building
from koprogo_iot.storage.ports import Storage
from tests.conftest import Tenant, make_tenant


def point(t: Tenant, sensor: IoTSensor, address: str, instance: int, **extra: object) -> BacnetPoint:
    fields: dict[str, object] = {
        "organization_id": t.organization.id,
        "building_id": sensor.building_id,
        "sensor_id": sensor.id,
        "address": address,
        "object_type": "analog-input",
        "object_instance": instance,
        "polling_interval": 60,
    }
    return BacnetPoint(**(fields | extra))  # type: ignore[arg-type]


async def test_points_round_trip_by_organization_and_building(storage: Storage) -> None:
    a, b = await make_tenant(storage, "A"), await make_tenant(storage, "B")
    elsewhere = Building(organization_id=a.organization.id, name="Annexe")
    await storage.tenancy.add_building(elsewhere)
    annexe_sensor = replace(a.unit_sensor, id=uuid.uuid4(), sensor_id="annexe", building_id=elsewhere.id, unit_id=None)
    await storage.sensors.add(annexe_sensor)
    energy = point(
        a,
        a.unit_sensor,
        "10.0.0.2",
        7,
        object_type="accumulator",
        property_identifier="pulse-rate",
        device_instance=2098177,
        scale=0.001,
    )
    flow = point(a, a.common_sensor, "10.0.0.10:47809", 1)
    annexe = point(a, annexe_sensor, "10.0.0.1", 1)
    theirs = point(b, b.common_sensor, "10.0.0.2", 1)
    for p in (energy, flow, annexe, theirs):
        await storage.bacnet.add(p)

    assert await storage.bacnet.get(a.organization.id, energy.id) == energy
    stored = await storage.bacnet.get(a.organization.id, energy.id)
    assert stored.property_identifier is PropertyIdentifier.PULSE_RATE and stored.scale == 0.001
    assert await storage.bacnet.select(a.organization.id, a.building.id) == [energy, flow]
    assert await storage.bacnet.select(a.organization.id) == [energy, flow, annexe]
    assert await storage.bacnet.select(b.organization.id) == [theirs]
    with pytest.raises(NotFound):
        await storage.bacnet.get(b.organization.id, energy.id)  # another organization's id looks absent


async def test_update_and_delete_are_scoped_by_organization(storage: Storage) -> None:
    a, b = await make_tenant(storage, "A"), await make_tenant(storage, "B")
    p = point(a, a.common_sensor, "10.0.0.2", 1)
    await storage.bacnet.add(p)
    moved = p.changed(address="10.0.0.3", device_instance=5, polling_interval=900)
    await storage.bacnet.update(moved)
    assert await storage.bacnet.get(a.organization.id, p.id) == moved
    with pytest.raises(NotFound):
        await storage.bacnet.update(p.changed(organization_id=b.organization.id))
    with pytest.raises(NotFound):
        await storage.bacnet.delete(b.organization.id, p.id)
    await storage.bacnet.delete(a.organization.id, p.id)
    assert await storage.bacnet.select(a.organization.id) == []
    with pytest.raises(NotFound):
        await storage.bacnet.delete(a.organization.id, p.id)


async def test_one_point_per_sensor_and_the_point_goes_with_its_sensor(storage: Storage) -> None:
    t = await make_tenant(storage)
    await storage.bacnet.add(point(t, t.common_sensor, "10.0.0.2", 1))
    with pytest.raises(Conflict):
        await storage.bacnet.add(point(t, t.common_sensor, "10.0.0.2", 2))
    await storage.sensors.delete(t.organization.id, t.common_sensor.id)
    assert await storage.bacnet.select(t.organization.id) == []
