"""The sensor directory: a batch's sensors looked up in one query, and every entry cached for a while."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from koprogo_iot.domain.sensors import IoTSensor
from koprogo_iot.ingest.directory import SensorDirectory
from koprogo_iot.storage.ports import SensorRepository, Storage
from tests.conftest import make_tenant

Key = tuple[UUID, str, str]


class Counted:
    """The storage's sensors, counting the look-ups the directory makes."""

    def __init__(self, sensors: SensorRepository) -> None:
        self.sensors = sensors
        self.one_by_one = 0
        self.at_once = 0

    async def find(self, organization_id: UUID, device_id: str, device_field: str = "") -> IoTSensor | None:
        self.one_by_one += 1
        return await self.sensors.find(organization_id, device_id, device_field)

    async def find_many(self, keys: Sequence[Key]) -> dict[Key, IoTSensor]:
        self.at_once += 1
        return await self.sensors.find_many(keys)


async def test_a_batch_of_a_fleet_is_looked_up_in_one_query_then_served_from_the_cache(storage: Storage) -> None:
    t = await make_tenant(storage)
    sensors = [t.unit_sensor, t.common_sensor, t.other_unit_sensor]
    keys = [(s.organization_id, s.sensor_id, s.device_field) for s in sensors]
    unknown = (t.organization.id, "NOT-REGISTERED", "")
    counted = Counted(storage.sensors)
    directory = SensorDirectory(counted, storage.alert_rules.organization_rules)  # type: ignore[arg-type]
    await directory.prefetch([*keys, *keys, unknown])
    assert [await directory.find(*key) for key in keys] == sensors
    assert await directory.find(*unknown) is None  # an unknown device is remembered too, for a shorter while
    assert (counted.at_once, counted.one_by_one) == (1, 0)
    await directory.prefetch([*keys, unknown])  # all cached: no query
    await directory.prefetch([(t.organization.id, "ANOTHER", "")])  # a single one: left to `find`
    assert (counted.at_once, counted.one_by_one) == (1, 0)
