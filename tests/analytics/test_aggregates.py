"""Consumption aggregates and comparisons from stored readings, checked against hand-computed figures on both stores."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from koprogo_iot.analytics.aggregates import ConsumptionReport, GroupBy, Period, SensorScope
from koprogo_iot.analytics.export import to_csv
from koprogo_iot.domain.access import Principal
from koprogo_iot.domain.errors import Forbidden, NotFound
from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.domain.sensors import IoTSensor, SensorType
from koprogo_iot.domain.tenancy import Unit
from koprogo_iot.storage.ports import Ingested, Storage
from tests.conftest import Tenant, analytics, make_tenant

DAY = datetime(2026, 3, 2, tzinfo=UTC)


def at(hours: float) -> datetime:
    return DAY + timedelta(hours=hours)


async def ingest(storage: Storage, sensor: IoTSensor, readings: list[tuple[datetime, float]]) -> None:
    await storage.readings.ingest([Ingested(IoTReading.measured(sensor, ts, value)) for ts, value in readings])


def hourly(*values: float) -> list[tuple[datetime, float]]:
    """Readings at 10:00, 11:00, 12:00... of DAY."""
    return [(at(10 + i), value) for i, value in enumerate(values)]


@dataclass
class Building:
    t: Tenant
    hot: IoTSensor  # unit 1, m³
    power: IoTSensor  # unit 1, kWh
    main: IoTSensor  # common cold water meter, m³

    @property
    def syndic(self) -> Principal:
        return Principal.of(self.t.syndic)

    @property
    def owner(self) -> Principal:
        return Principal.of(self.t.owner, [self.t.building.id])


async def add_sensor(
    storage: Storage, t: Tenant, name: str, sensor_type: SensorType, uom: str, unit: Unit | None
) -> IoTSensor:
    sensor = IoTSensor(
        organization_id=t.organization.id,
        building_id=t.building.id,
        sensor_id=f"{name}-{t.organization.id.hex[:6]}",
        sensor_type=sensor_type,
        manufacturer="Kamstrup",
        model="M",
        location=name,
        unit_of_measure=uom,
        unit_id=unit.id if unit else None,
    )
    await storage.sensors.add(sensor)
    return sensor


async def building(storage: Storage) -> Building:
    """Two hours of readings; per hour: cw1 1, 2 - cw2 2, 0 - hot 0.5, 0.5 - power 10, 20 - main 4, 5."""
    t = await make_tenant(storage)
    app1 = t.units[0]
    b = Building(
        t,
        hot=await add_sensor(storage, t, "hw1", SensorType.HOT_WATER, "m³", app1),
        power=await add_sensor(storage, t, "el1", SensorType.ELECTRICITY, "kWh", app1),
        main=await add_sensor(storage, t, "main", SensorType.COLD_WATER, "m³", None),
    )
    await ingest(storage, t.unit_sensor, hourly(0, 1, 3))
    await ingest(storage, t.other_unit_sensor, hourly(10, 12, 12))
    await ingest(storage, b.hot, hourly(5, 5.5, 6))
    await ingest(storage, b.power, hourly(100, 110, 130))
    await ingest(storage, b.main, hourly(1000, 1004, 1009))
    await ingest(storage, t.common_sensor, hourly(30, 60, 10))  # a gauge (L/h): never summed
    return b


async def report(
    storage: Storage, principal: Principal, group_by: GroupBy, scope: SensorScope | None = None
) -> ConsumptionReport:
    return await analytics(storage).consumption(
        principal,
        scope or SensorScope(),
        group_by,
        Period.HOUR,
        at(10),
        at(12),
    )


def figures(result: ConsumptionReport) -> dict[tuple[str, str], list[float | None]]:
    return {(g.label, g.unit_of_measure): [b.consumption for b in g.buckets] for g in result.groups}


async def test_grouping_by_unit_building_type_and_sensor(storage: Storage) -> None:
    b = await building(storage)
    by_unit = await report(storage, b.syndic, GroupBy.UNIT)
    assert figures(by_unit) == {
        ("App. 1", "m³"): [1.5, 2.5],  # cold 1, 2 + hot 0.5, 0.5
        ("App. 1", "kWh"): [10.0, 20.0],  # electricity is never added to water
        ("App. 2", "m³"): [2.0, 0.0],
        ("Tenant building common meters", "m³"): [4.0, 5.0],
    }
    assert {(g.label, g.unit_of_measure): g.total for g in by_unit.groups}[("App. 1", "m³")] == 4.0
    by_building = await report(storage, b.syndic, GroupBy.BUILDING)
    assert figures(by_building) == {("Tenant building", "m³"): [7.5, 7.5], ("Tenant building", "kWh"): [10.0, 20.0]}
    assert [bucket.sensors for bucket in by_building.groups[1].buckets] == [4, 4]
    by_type = await report(storage, b.syndic, GroupBy.SENSOR_TYPE)
    assert figures(by_type) == {
        ("cold_water", "m³"): [7.0, 7.0],
        ("electricity", "kWh"): [10.0, 20.0],
        ("hot_water", "m³"): [0.5, 0.5],
    }
    by_sensor = await report(storage, b.syndic, GroupBy.SENSOR)
    assert len(by_sensor.groups) == 5 and b.t.common_sensor.id not in {
        s for g in by_sensor.groups for s in g.sensor_ids
    }


async def test_filters(storage: Storage) -> None:
    b = await building(storage)
    cold = await report(storage, b.syndic, GroupBy.BUILDING, SensorScope(sensor_type=SensorType.COLD_WATER))
    assert figures(cold) == {("Tenant building", "m³"): [7.0, 7.0]}
    unit = await report(storage, b.syndic, GroupBy.BUILDING, SensorScope(unit_id=b.t.units[0].id))
    assert figures(unit) == {("Tenant building", "m³"): [1.5, 2.5], ("Tenant building", "kWh"): [10.0, 20.0]}
    other = await make_tenant(storage, "Other")
    with pytest.raises(NotFound):
        await report(storage, b.syndic, GroupBy.BUILDING, SensorScope(building_id=other.building.id))


async def test_owners_see_their_units_and_the_common_meters(storage: Storage) -> None:
    b = await building(storage)
    by_unit = await report(storage, b.owner, GroupBy.UNIT)
    assert figures(by_unit) == {
        ("App. 1", "m³"): [1.5, 2.5],
        ("App. 1", "kWh"): [10.0, 20.0],
        ("Tenant building common meters", "m³"): [4.0, 5.0],
    }
    by_building = await report(storage, b.owner, GroupBy.BUILDING)
    assert figures(by_building)[("Tenant building", "m³")] == [5.5, 7.5]
    with pytest.raises(NotFound):
        await report(storage, b.owner, GroupBy.UNIT, SensorScope(unit_id=b.t.units[1].id))


async def test_daily_buckets_across_the_dst_change(storage: Storage) -> None:
    t = await make_tenant(storage)
    # 1 m³ an hour, read every 6 h from 18:00 UTC: local midnights (23:00 and 22:00 UTC) fall between readings.
    origin = datetime(2026, 3, 27, 18, tzinfo=UTC)
    await ingest(storage, t.unit_sensor, [(origin + timedelta(hours=h), float(h)) for h in range(0, 84, 6)])
    start, end = datetime(2026, 3, 27, 23, tzinfo=UTC), datetime(2026, 3, 30, 22, tzinfo=UTC)  # Brussels midnights
    result = await analytics(storage).consumption(
        Principal.of(t.syndic),
        SensorScope(unit_id=t.units[0].id),
        GroupBy.UNIT,
        Period.DAY,
        start,
        end,
    )
    (group,) = result.groups
    assert [(b.start, b.end) for b in group.buckets] == [
        (datetime(2026, 3, 27, 23, tzinfo=UTC), datetime(2026, 3, 28, 23, tzinfo=UTC)),
        (datetime(2026, 3, 28, 23, tzinfo=UTC), datetime(2026, 3, 29, 22, tzinfo=UTC)),  # 29 March lasts 23 h
        (datetime(2026, 3, 29, 22, tzinfo=UTC), datetime(2026, 3, 30, 22, tzinfo=UTC)),
    ]
    assert [b.consumption for b in group.buckets] == pytest.approx([24.0, 23.0, 24.0])
    assert group.total == pytest.approx(71.0) and group.complete


async def test_monthly_buckets(storage: Storage) -> None:
    t = await make_tenant(storage)
    # Unit 1 uses 1 m³ a day, unit 2 2 m³ a day, read every 12 h from 31 January 00:00 UTC to 1 April.
    origin = datetime(2026, 1, 31, tzinfo=UTC)
    for sensor, per_day in ((t.unit_sensor, 1.0), (t.other_unit_sensor, 2.0)):
        await ingest(storage, sensor, [(origin + timedelta(hours=12 * i), per_day * i / 2) for i in range(121)])
    start, end = datetime(2026, 1, 31, 23, tzinfo=UTC), datetime(2026, 3, 31, 22, tzinfo=UTC)  # 1 Feb, 1 Apr local
    result = await analytics(storage).consumption(
        Principal.of(t.syndic),
        SensorScope(),
        GroupBy.BUILDING,
        Period.MONTH,
        start,
        end,
    )
    (group,) = result.groups
    assert [b.start for b in group.buckets] == [start, datetime(2026, 2, 28, 23, tzinfo=UTC)]
    # February: 28 days; March: 31 days less the hour lost to DST, 743 h. Times 3 m³ a day for both units.
    assert [b.consumption for b in group.buckets] == pytest.approx([3 * 28, 3 * 743 / 24])


async def test_unit_against_the_building_median(storage: Storage) -> None:
    b = await building(storage)
    third = Unit(organization_id=b.t.organization.id, building_id=b.t.building.id, name="App. 3", floor=3)
    await storage.tenancy.add_unit(third)
    cw3 = await add_sensor(storage, b.t, "cw3", SensorType.COLD_WATER, "m³", third)
    await ingest(storage, cw3, hourly(0, 3, 7))
    result = await analytics(storage).units_vs_median(b.syndic, b.t.building.id, SensorType.COLD_WATER, at(10), at(12))
    # Totals 3, 2 and 7 m³: the median is 3; the common meter is not a unit.
    rows = {u.unit_name: (u.consumption, u.median, u.deviation_percent) for u in result.units}
    assert rows == {
        "App. 1": (3.0, 3.0, 0.0),
        "App. 2": (2.0, 3.0, pytest.approx(-100 / 3)),
        "App. 3": (7.0, 3.0, pytest.approx(400 / 3)),
    }
    with pytest.raises(Forbidden):
        await analytics(storage).units_vs_median(b.owner, b.t.building.id, SensorType.COLD_WATER)


async def test_period_against_the_previous_one(storage: Storage) -> None:
    b = await building(storage)
    result = await analytics(storage).period_comparison(
        b.syndic,
        SensorScope(sensor_type=SensorType.COLD_WATER),
        GroupBy.UNIT,
        at(11),
        at(12),
    )
    assert (result.previous_start, result.previous_end) == (at(10), at(11))
    rows = {g.label: (g.current, g.previous, g.change_percent) for g in result.groups}
    assert rows == {
        "App. 1": (2.0, 1.0, 100.0),
        "App. 2": (0.0, 2.0, -100.0),
        "Tenant building common meters": (5.0, 4.0, 25.0),
    }


async def test_a_bucket_without_data_is_unknown_not_zero(storage: Storage) -> None:
    b = await building(storage)
    result = await analytics(storage).consumption(
        b.syndic,
        SensorScope(sensor_type=SensorType.HOT_WATER),
        GroupBy.SENSOR,
        Period.HOUR,
        at(11),
        at(14),
    )
    (group,) = result.groups
    assert [bucket.consumption for bucket in group.buckets] == [0.5, None, None]
    assert group.total == 0.5 and not group.complete


async def test_consumption_csv(storage: Storage) -> None:
    b = await building(storage)
    result = await report(storage, b.syndic, GroupBy.BUILDING, SensorScope(sensor_type=SensorType.COLD_WATER))
    building_id = b.t.building.id
    assert to_csv(result).splitlines() == [
        "group,label,unit_of_measure,start,end,consumption,sensors,complete",
        f"{building_id},Tenant building,m³,2026-03-02T10:00:00Z,2026-03-02T11:00:00Z,7,3,true",
        f"{building_id},Tenant building,m³,2026-03-02T11:00:00Z,2026-03-02T12:00:00Z,7,3,true",
    ]
