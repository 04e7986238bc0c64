"""Insights from stored readings (through the hourly rollups), checked against hand-computed figures on both stores."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from koprogo_iot.analytics.insights import (
    NIGHT,
    Figure,
    Insight,
    InsightKind,
    InsightReport,
    Prices,
    Severity,
    local_windows,
    whole_hours,
)
from koprogo_iot.domain.access import Principal
from koprogo_iot.domain.consumption import Point, consumption, median
from koprogo_iot.domain.errors import InvalidValue, NotFound
from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.domain.sensors import IoTSensor, SensorType
from koprogo_iot.domain.tenancy import Unit
from koprogo_iot.storage.ports import Ingested, Storage
from tests.conftest import Tenant, analytics, make_tenant

BRUSSELS = ZoneInfo("Europe/Brussels")
DAYS = 4
START = datetime(2026, 1, 5, tzinfo=BRUSSELS).astimezone(UTC)  # a local midnight, in winter (UTC+1)
END = START + timedelta(days=DAYS)


async def metered(
    storage: Storage, sensor: IoTSensor, night: float, other: float, day: float | None = None, days: int = DAYS
) -> list[Point]:
    """Hourly index readings from START for `days`: per hour `night` from 02:00 to 05:00, `day` from 08:00 to 20:00."""
    index, readings = 100.0, []
    for hour in range(days * 24 + 1):
        ts = START + timedelta(hours=hour)
        readings.append((ts, index))
        local = ts.astimezone(BRUSSELS).hour
        index += night if 2 <= local < 5 else day if day is not None and 8 <= local < 20 else other
    await storage.readings.ingest([Ingested(IoTReading.measured(sensor, ts, value)) for ts, value in readings])
    return readings


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


async def run(storage: Storage, principal: Principal, **options: object) -> InsightReport:
    return await analytics(storage).insights(principal, start=START, end=END, **options)  # type: ignore[arg-type]


def syndic(t: Tenant) -> Principal:
    return Principal.of(t.syndic)


def owner(t: Tenant) -> Principal:
    return Principal.of(t.owner, [t.building.id])


def of_kind(report: InsightReport, kind: InsightKind) -> list[Insight]:
    return [i for i in report.insights if i.kind is kind]


def values(insight: Insight) -> dict[str, tuple[float, str]]:
    return {name: (f.value, f.unit) for name, f in insight.figures.items()}


async def test_a_flow_that_never_stops_at_night_is_a_probable_leak(storage: Storage) -> None:
    t = await make_tenant(storage)
    await metered(storage, t.unit_sensor, night=0.003, other=0.03)  # 3 L/h all night, every night
    await metered(storage, t.other_unit_sensor, night=0.0, other=0.03)  # stops at night: nothing to say
    report = await run(storage, syndic(t))
    assert (report.start, report.end) == (START, END)
    [leak] = report.insights
    assert (leak.kind, leak.severity) == (InsightKind.CONTINUOUS_FLOW, Severity.WARNING)
    assert (leak.sensor_id, leak.unit_id, leak.building_id) == (t.unit_sensor.id, t.units[0].id, t.building.id)
    assert values(leak) == {
        "nights_examined": (4, "nights"),  # the nights of 5 to 8 January, 02:00-05:00
        "min_night_flow": (3.0, "L/h"),
        "median_night_flow": (3.0, "L/h"),
        "threshold": (1.0, "L/h"),
        "yearly_waste": (26.28, "m³"),  # 3 L/h x 8,760 h
        "yearly_cost": (131.4, "EUR"),  # at the default 5 EUR/m³
        "price": (5.0, "EUR/m³"),
    }
    assert "App. 1" in leak.title and "3.0 L/h" in leak.message and "2026-01-05 to 2026-01-08" in leak.message
    priced = await run(storage, syndic(t), prices=Prices(water_eur_per_m3=4.0))
    assert priced.insights[0].figures["yearly_cost"] == Figure(105.12, "EUR")


async def test_a_leak_of_ten_litres_an_hour_is_critical_and_too_few_nights_say_nothing(storage: Storage) -> None:
    t = await make_tenant(storage)
    await metered(storage, t.unit_sensor, night=0.012, other=0.03)
    [leak] = (await run(storage, syndic(t))).insights
    assert leak.severity is Severity.CRITICAL and leak.figures["min_night_flow"] == Figure(12.0, "L/h")
    two_nights = await analytics(storage).insights(syndic(t), start=START, end=START + timedelta(days=2))
    assert two_nights.insights == []


async def test_a_unit_twice_the_median_of_four_units(storage: Storage) -> None:
    t = await make_tenant(storage)
    more = [
        Unit(organization_id=t.organization.id, building_id=t.building.id, name=f"App. {n}", floor=n) for n in (3, 4)
    ]
    for unit in more:
        await storage.tenancy.add_unit(unit)
    meters = [t.unit_sensor, t.other_unit_sensor] + [
        await add_sensor(storage, t, f"cw{n}", SensorType.COLD_WATER, "m³", unit)
        for n, unit in ((3, more[0]), (4, more[1]))
    ]
    for meter, rate in zip(meters, (0.25, 0.25, 0.25, 0.5), strict=True):
        await metered(storage, meter, night=0, other=rate)
    report = await run(storage, syndic(t))
    [high] = of_kind(report, InsightKind.UNIT_ABOVE_MEDIAN)
    assert (high.severity, high.unit_id, high.sensor_id) == (Severity.WARNING, more[1].id, None)
    # 21 hours a day with flow (not 02:00-05:00), 4 days: 84 h x 0.25 m³ for the median, 84 h x 0.5 m³ for App. 4.
    assert values(high) == {
        "consumption": (42.0, "m³"),
        "median": (21.0, "m³"),
        "deviation": (100.0, "%"),
        "units_compared": (4, "units"),
    }
    assert high.title == "App. 4 uses 100% more cold water than the building's median"
    # An owner sees only their own unit: comparing it with a median over it alone would say nothing.
    assert of_kind(await run(storage, owner(t)), InsightKind.UNIT_ABOVE_MEDIAN) == []


async def test_a_long_period_adds_daily_and_hourly_rollups_like_the_raw_readings(storage: Storage) -> None:
    t = await make_tenant(storage)
    more = [
        Unit(organization_id=t.organization.id, building_id=t.building.id, name=f"App. {n}", floor=n) for n in (3, 4)
    ]
    for unit in more:
        await storage.tenancy.add_unit(unit)
    meters = [t.unit_sensor, t.other_unit_sensor] + [
        await add_sensor(storage, t, f"cw{n}", SensorType.COLD_WATER, "m³", unit)
        for n, unit in ((3, more[0]), (4, more[1]))
    ]
    rates = (0.01, 0.02, 0.02, 0.05)
    readings = [
        await metered(storage, m, night=0, other=r, day=r * 1.5, days=45) for m, r in zip(meters, rates, strict=True)
    ]
    # 40 days from 10:30 on the second day: an hourly head and tail around 38 whole local days.
    start, end = START + timedelta(days=1, hours=10, minutes=30), START + timedelta(days=41, hours=7)
    report = await analytics(storage).insights(syndic(t), start=start, end=end)
    aligned = (START + timedelta(days=1, hours=11), end)
    assert (report.start, report.end) == aligned
    raw = [consumption(points, *aligned).consumption for points in readings]
    [high] = of_kind(report, InsightKind.UNIT_ABOVE_MEDIAN)
    assert high.unit_id == more[1].id
    assert high.figures["consumption"] == Figure(round(raw[3] or 0, 3), "m³")
    assert high.figures["median"] == Figure(round(median(raw) or 0, 3), "m³")


async def test_two_units_are_too_few_for_a_median(storage: Storage) -> None:
    t = await make_tenant(storage)
    await metered(storage, t.unit_sensor, night=0, other=0.25)
    await metered(storage, t.other_unit_sensor, night=0, other=1.0)
    assert (await run(storage, syndic(t))).insights == []


async def test_hot_water_share_per_unit_and_building(storage: Storage) -> None:
    t = await make_tenant(storage)
    hot1 = await add_sensor(storage, t, "hw1", SensorType.HOT_WATER, "m³", t.units[0])
    hot2 = await add_sensor(storage, t, "hw2", SensorType.HOT_WATER, "L", t.units[1])  # litres: converted to m³
    await metered(storage, hot1, night=0, other=0.375)
    await metered(storage, t.unit_sensor, night=0, other=0.125)
    await metered(storage, hot2, night=0, other=250)
    await metered(storage, t.other_unit_sensor, night=0, other=0.25)
    report = await run(storage, syndic(t))
    [unit] = [i for i in of_kind(report, InsightKind.HOT_COLD_RATIO) if i.unit_id is not None]
    [building] = [i for i in of_kind(report, InsightKind.HOT_COLD_RATIO) if i.unit_id is None]
    # App. 1: 84 h x 0.375 m³ hot, 84 h x 0.125 m³ cold = 75 %; App. 2: 21 and 21 m³ = 50 %, not flagged;
    # the building: 52.5 m³ hot and 31.5 m³ cold = 62.5 %.
    assert (unit.unit_id, unit.severity) == (t.units[0].id, Severity.INFO)
    assert values(unit) == {
        "hot_water": (31.5, "m³"),
        "cold_water": (10.5, "m³"),
        "hot_share": (75.0, "%"),
        "threshold": (60.0, "%"),
    }
    assert building.unit_id is None and building.building_id == t.building.id
    assert values(building)["hot_share"] == (62.5, "%") and values(building)["hot_water"] == (52.5, "m³")
    [mine] = of_kind(await run(storage, owner(t)), InsightKind.HOT_COLD_RATIO)  # no building-wide figure for owners
    assert mine.unit_id == t.units[0].id


async def test_standby_electricity_of_common_areas(storage: Storage) -> None:
    t = await make_tenant(storage)
    lifts = await add_sensor(storage, t, "lifts", SensorType.ELECTRICITY, "Wh", None)
    lights = await add_sensor(storage, t, "lights", SensorType.ELECTRICITY, "kWh", None)
    flat = await add_sensor(storage, t, "el1", SensorType.ELECTRICITY, "kWh", t.units[0])
    await metered(storage, lifts, night=2000, other=2500, day=3000)  # Wh per hour: 2 kW at night, 3 kW by day
    await metered(storage, lights, night=0.125, other=1, day=4)  # 3 % of the day: fine
    await metered(storage, flat, night=2, other=2.5, day=3)  # a unit's meter: not common areas
    [standby] = (await run(storage, syndic(t))).insights
    assert (standby.kind, standby.sensor_id, standby.unit_id) == (InsightKind.STANDBY_ELECTRICITY, lifts.id, None)
    assert standby.severity is Severity.WARNING  # a night baseload of 1 kW or more
    assert values(standby) == {
        "nights_examined": (4, "nights"),
        "days_examined": (4, "days"),
        "night_power": (2.0, "kW"),
        "day_power": (3.0, "kW"),
        "night_share": (66.667, "%"),
        "yearly_standby": (17520.0, "kWh"),  # 2 kW x 8,760 h
        "yearly_cost": (5256.0, "EUR"),  # at the default 0.30 EUR/kWh
        "price": (0.3, "EUR/kWh"),
    }
    # The owner of a unit sees the building's common meters, hence their insights.
    assert [i.sensor_id for i in (await run(storage, owner(t))).insights] == [lifts.id]


async def test_owners_see_their_units_and_common_meters_never_a_neighbours(storage: Storage) -> None:
    t = await make_tenant(storage)
    main = await add_sensor(storage, t, "main", SensorType.COLD_WATER, "m³", None)
    for meter in (t.unit_sensor, t.other_unit_sensor, main):
        await metered(storage, meter, night=0.003, other=0.03)
    everything = await run(storage, syndic(t))
    assert {i.sensor_id for i in everything.insights} == {t.unit_sensor.id, t.other_unit_sensor.id, main.id}
    mine = await run(storage, owner(t), building_id=t.building.id)
    assert {i.sensor_id for i in mine.insights} == {t.unit_sensor.id, main.id}
    other = await make_tenant(storage, "Other")
    with pytest.raises(NotFound):
        await run(storage, syndic(t), building_id=other.building.id)
    with pytest.raises(NotFound):
        await run(storage, owner(t), building_id=other.building.id)


def test_period_is_trimmed_to_whole_hours() -> None:
    start, end = whole_hours(START + timedelta(minutes=10), END + timedelta(minutes=50))
    assert (start, end) == (START + timedelta(hours=1), END)
    with pytest.raises(InvalidValue, match="whole hour"):
        whole_hours(START + timedelta(minutes=10), START + timedelta(minutes=50))
    with pytest.raises(InvalidValue, match="positive"):
        Prices(water_eur_per_m3=0)


def test_night_windows_follow_brussels_time_across_dst() -> None:
    spring = datetime(2026, 3, 29, tzinfo=BRUSSELS).astimezone(UTC)  # clocks go from 02:00 to 03:00
    [(opening, closing)] = local_windows(spring, spring + timedelta(days=1), NIGHT)
    assert (opening, closing) == (datetime(2026, 3, 29, 1, tzinfo=UTC), datetime(2026, 3, 29, 3, tzinfo=UTC))
    autumn = datetime(2026, 10, 25, tzinfo=BRUSSELS).astimezone(UTC)  # clocks go from 03:00 back to 02:00
    [(opening, closing)] = local_windows(autumn, autumn + timedelta(days=1), NIGHT)
    assert closing - opening == timedelta(hours=4)
