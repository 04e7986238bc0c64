"""Alert rules in the database, on SQLite and PostgreSQL: type defaults, overrides, and their layering."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from koprogo_iot.domain.errors import InvalidValue, NotFound
from koprogo_iot.domain.rules import effective_rules
from koprogo_iot.domain.sensors import IoTSensor, SensorType
from koprogo_iot.storage.ports import Storage
from koprogo_iot.storage.sql.alert_rules import SqlAlertRules
from koprogo_iot.storage.sql.database import Database, Row
from tests.conftest import make_tenant

COLD = SensorType.COLD_WATER


class CountingDb:
    """The test's database, counting the statements `organization_rules` sends."""

    def __init__(self, db: Database) -> None:
        self.inner = db
        self.statements = 0

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        self.statements += 1
        return await self.inner.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: object) -> Row | None:
        self.statements += 1
        return await self.inner.fetchrow(sql, *args)


async def test_type_defaults_are_stored_replaced_and_deleted_per_organization(storage: Storage) -> None:
    a, b = await make_tenant(storage, "A"), await make_tenant(storage, "B")
    rules = storage.alert_rules
    org = a.organization.id
    assert await rules.get_type_defaults(org, COLD) is None

    stored = await rules.put_type_defaults(org, COLD, {"threshold": {"maximum": 80.0}, "offline": {}})
    assert stored == {"threshold": {"maximum": 80.0}, "offline": {}}
    assert await rules.get_type_defaults(org, COLD) == stored
    await rules.put_type_defaults(org, COLD, {"spike": {"enabled": True, "max_rate_per_hour": 10}})  # replaces
    await rules.put_type_defaults(org, SensorType.ELECTRICITY, {"battery": {"low_percent": 10}})
    assert await rules.all_type_defaults(org) == {
        COLD: {"spike": {"enabled": True, "max_rate_per_hour": 10}},
        SensorType.ELECTRICITY: {"battery": {"low_percent": 10}},
    }
    assert await rules.all_type_defaults(b.organization.id) == {}
    assert await rules.get_type_defaults(b.organization.id, COLD) is None

    assert await rules.delete_type_defaults(org, COLD) is True
    assert await rules.delete_type_defaults(org, COLD) is False
    assert await rules.get_type_defaults(org, COLD) is None
    assert list(await rules.all_type_defaults(org)) == [SensorType.ELECTRICITY]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"threshold": {"maximum": "high"}}, "$.threshold.maximum"),
        ({"threshold": {"minimum": 10, "maximum": 5}}, "threshold.minimum must be below threshold.maximum"),
        ({"thresholds": {}}, "unknown field `thresholds`"),
        ({"battery": {"low_percent": 150}}, "$.battery.low_percent"),
        ({"threshold": {"maximum": float("nan")}}, "NaN"),
        (["threshold"], "JSON object"),
    ],
)
async def test_invalid_rules_are_refused_with_the_faulty_field(storage: Storage, document: Any, message: str) -> None:
    t = await make_tenant(storage)
    rules = storage.alert_rules
    with pytest.raises(InvalidValue, match=re.escape(message)):
        await rules.put_type_defaults(t.organization.id, COLD, document)
    with pytest.raises(InvalidValue):
        await rules.put_override(t.organization.id, t.unit_sensor.id, document)
    assert await rules.get_type_defaults(t.organization.id, COLD) is None
    assert await rules.get_override(t.organization.id, t.unit_sensor.id) is None


async def test_sensor_overrides_belong_to_the_sensors_organization(storage: Storage) -> None:
    a, b = await make_tenant(storage, "A"), await make_tenant(storage, "B")
    rules = storage.alert_rules
    org, sensor = a.organization.id, a.unit_sensor.id
    assert await rules.get_override(org, sensor) is None

    await rules.put_override(org, sensor, {"leak": {"continuous_hours": 3}})
    await rules.put_override(org, sensor, {"leak": {"continuous_hours": 4}})  # replaces
    assert await rules.get_override(org, sensor) == {"leak": {"continuous_hours": 4}}
    assert await rules.overrides(org) == {sensor: {"leak": {"continuous_hours": 4}}}

    other = b.organization.id
    for attempt in (
        rules.get_override(other, sensor),
        rules.put_override(other, sensor, {}),
        rules.delete_override(other, sensor),
        rules.get_override(org, uuid.uuid4()),
    ):
        with pytest.raises(NotFound):
            await attempt
    assert await rules.overrides(other) == {}
    assert await rules.get_override(org, sensor) == {"leak": {"continuous_hours": 4}}  # untouched by B

    assert await rules.delete_override(org, sensor) is True
    assert await rules.delete_override(org, sensor) is False
    assert await rules.get_override(org, sensor) is None


async def test_organization_rules_layer_builtin_type_override_and_thresholds_in_two_queries(
    storage: Storage, db: Database
) -> None:
    t = await make_tenant(storage)
    org = t.organization.id
    meter = IoTSensor(
        organization_id=org,
        building_id=t.building.id,
        sensor_id=f"el-{uuid.uuid4().hex[:6]}",
        sensor_type=SensorType.ELECTRICITY,
        manufacturer="Landis+Gyr",
        model="E350",
        location="hall",
        unit_of_measure="kWh",
    )
    await storage.sensors.add(meter)
    rules = storage.alert_rules
    await rules.put_type_defaults(org, COLD, {"threshold": {"maximum": 80.0, "clear_maximum": 40.0}, "offline": {}})
    await rules.put_type_defaults(org, COLD, {"threshold": {"maximum": 80.0, "clear_maximum": 40.0, "duration_s": 60}})
    await rules.put_override(org, t.unit_sensor.id, {"threshold": {"maximum": 2.0, "clear_maximum": 1.5}})
    await rules.put_override(org, t.other_unit_sensor.id, {"leak": {"enabled": False}})

    counting = CountingDb(db)
    sensors = [t.common_sensor, t.unit_sensor, t.other_unit_sensor, meter]
    layers = await SqlAlertRules(counting).organization_rules(org)  # type: ignore[arg-type]
    assert counting.statements == 2
    found = {s.id: layers.for_sensor(s) for s in sensors}

    common = found[t.common_sensor.id]  # its own maximum (50) wins over the type's, the rest of the type's stays
    assert (common.threshold.maximum, common.threshold.clear_maximum, common.threshold.duration_s) == (50.0, 40.0, 60)
    assert common.leak.enabled  # water: leak detection on by default
    unit = found[t.unit_sensor.id]
    assert (unit.threshold.maximum, unit.threshold.clear_maximum, unit.threshold.duration_s) == (2.0, 1.5, 60)
    other = found[t.other_unit_sensor.id]
    assert not other.leak.enabled and other.threshold.maximum == 80.0
    electricity = found[meter.id]
    assert not electricity.leak.enabled and electricity.threshold.maximum is None  # built-in, nothing chosen
    assert electricity == effective_rules(meter)


async def test_a_layer_that_no_longer_combines_is_left_out(storage: Storage) -> None:
    t = await make_tenant(storage)
    org = t.organization.id
    rules = storage.alert_rules
    # Each valid alone; together the override's minimum is above the type's maximum.
    await rules.put_type_defaults(org, COLD, {"threshold": {"maximum": 10.0}})
    await rules.put_override(org, t.unit_sensor.id, {"threshold": {"minimum": 20.0}})
    # And the common sensor's own maximum (50) is below this override's minimum: both layers go.
    await rules.put_override(org, t.common_sensor.id, {"threshold": {"minimum": 60.0}})
    layers = await rules.organization_rules(org)
    found = {s.id: layers.for_sensor(s) for s in (t.unit_sensor, t.common_sensor)}
    assert (found[t.unit_sensor.id].threshold.minimum, found[t.unit_sensor.id].threshold.maximum) == (None, 10.0)
    assert (found[t.common_sensor.id].threshold.minimum, found[t.common_sensor.id].threshold.maximum) == (None, 50.0)


async def test_an_override_goes_with_its_sensor(storage: Storage) -> None:
    t = await make_tenant(storage)
    org = t.organization.id
    rules = storage.alert_rules
    await rules.put_override(org, t.unit_sensor.id, {"offline": {"missed_intervals": 5}})
    await storage.sensors.delete(org, t.unit_sensor.id)
    assert await rules.overrides(org) == {}
    with pytest.raises(NotFound):
        await rules.get_override(org, t.unit_sensor.id)
