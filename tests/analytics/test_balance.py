"""The building balance on both stores: the main meter against its units' meters, through the report, the API, the
insights and the window rules' alert."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from koprogo_iot.alerting.evaluator import WindowRules
from koprogo_iot.analytics.aggregates import Period
from koprogo_iot.analytics.balance import BalanceReport
from koprogo_iot.analytics.insights import InsightKind, Severity
from koprogo_iot.domain.access import Principal
from koprogo_iot.domain.alerts import AlertSeverity, AlertStatus, AlertType, IoTAlert
from koprogo_iot.domain.consumption import consumption
from koprogo_iot.domain.errors import Conflict, Forbidden, InvalidValue, NotFound
from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.domain.sensors import IoTSensor, SensorType
from koprogo_iot.domain.tenancy import Unit
from koprogo_iot.services.audit import AuditLog
from koprogo_iot.services.provisioning import Provisioning
from koprogo_iot.storage.ports import AlertFilter, Ingested, Storage
from tests.api.conftest import Api
from tests.conftest import Tenant, analytics, make_tenant

BRUSSELS = ZoneInfo("Europe/Brussels")
DAYS = 4
START = datetime(2026, 1, 5, tzinfo=BRUSSELS).astimezone(UTC)  # a local midnight, in winter (UTC+1)
END = START + timedelta(days=DAYS)  # 9 January, local midnight
# Per hour: the two units draw 60 L and 36 L; a main meter 4 % above their sum draws 100 L.
FIRST, SECOND = 0.060, 0.036
LEAKING, EXACT = 0.100, 0.096


async def counter(
    storage: Storage, t: Tenant, name: str, unit: Unit | None, uom: str = "m³", *, main: bool = False
) -> IoTSensor:
    sensor = IoTSensor(
        organization_id=t.organization.id,
        building_id=t.building.id,
        sensor_id=f"{name}-{t.organization.id.hex[:6]}",
        sensor_type=SensorType.COLD_WATER,
        manufacturer="Kamstrup",
        model="MULTICAL 21",
        location=name,
        unit_of_measure=uom,
        unit_id=unit.id if unit else None,
        sampling_interval=3600,  # read hourly: a missing hour is a gap
        main_meter=main,
    )
    await storage.sensors.add(sensor)
    return sensor


async def hourly(
    storage: Storage, sensor: IoTSensor, per_hour: float, days: int = DAYS, skip: range = range(0)
) -> list[tuple[datetime, float]]:
    """An index read every hour from START for `days` days (both ends), rising `per_hour`; hours in `skip` lost."""
    readings = [(START + timedelta(hours=h), 500.0 + h * per_hour) for h in range(days * 24 + 1) if h not in skip]
    await storage.readings.ingest([Ingested(IoTReading.measured(sensor, ts, value)) for ts, value in readings])
    return readings


async def unit_meters(storage: Storage, t: Tenant, **changes: object) -> tuple[IoTSensor, IoTSensor]:
    """The tenant's cold water counter in each of its two units, read hourly (a missing hour is a gap)."""
    meters = (
        t.unit_sensor.changed(sampling_interval=3600, **changes),
        t.other_unit_sensor.changed(sampling_interval=3600),
    )
    for meter in meters:
        await storage.sensors.update(meter)
    return meters


async def building(storage: Storage, main_per_hour: float) -> tuple[Tenant, IoTSensor]:
    """A tenant whose building has a main cold water meter and a counter in each of its two units."""
    t = await make_tenant(storage)
    main = await counter(storage, t, "main", None, main=True)
    await hourly(storage, main, main_per_hour)
    first, second = await unit_meters(storage, t)
    await hourly(storage, first, FIRST)
    await hourly(storage, second, SECOND)
    return t, main


async def report(storage: Storage, t: Tenant, period: Period = Period.DAY) -> BalanceReport:
    return await analytics(storage).building_balance(Principal.of(t.syndic), t.building.id, None, period, START, END)


async def active(storage: Storage, sensor: IoTSensor) -> list[IoTAlert]:
    alerts = await storage.alerts.select(sensor.organization_id, AlertFilter(status=AlertStatus.ACTIVE))
    return [a for a in alerts if a.sensor_id == sensor.id and a.alert_type is AlertType.BUILDING_BALANCE]


async def test_a_main_meter_four_percent_above_its_units_shows_four_percent_each_day_and_month(
    storage: Storage,
) -> None:
    t, main = await building(storage, LEAKING)
    result = await report(storage, t)
    [balance] = result.balances
    assert (balance.main_sensor_id, balance.sensor_type, balance.unit_of_measure) == (main.id, "cold_water", "m³")
    assert len(balance.unit_sensor_ids) == 2 and len(balance.buckets) == DAYS
    for day in balance.buckets:
        assert day.main == pytest.approx(24 * LEAKING, abs=1e-9)
        assert day.units == pytest.approx(24 * (FIRST + SECOND), abs=1e-9)
        assert day.unexplained == pytest.approx(24 * (LEAKING - FIRST - SECOND), abs=1e-9)
        assert day.share == pytest.approx(0.04, abs=1e-9)
        assert (day.estimated, day.complete, day.units_measured, day.units_total) == (False, True, 2, 2)
    [month] = (await report(storage, t, Period.MONTH)).balances[0].buckets
    assert month.share == pytest.approx(0.04, abs=1e-9) and month.main == pytest.approx(DAYS * 24 * LEAKING)
    assert balance.total is not None and balance.total.share == pytest.approx(0.04, abs=1e-9)


async def test_an_exact_building_shows_zero(storage: Storage) -> None:
    t, _ = await building(storage, EXACT)
    [balance] = (await report(storage, t)).balances
    assert [d.share for d in balance.buckets] == [pytest.approx(0.0, abs=1e-9)] * DAYS
    assert not any(d.estimated for d in balance.buckets)


async def test_a_gap_in_a_unit_meter_makes_the_day_estimated_with_the_references_figure(storage: Storage) -> None:
    t = await make_tenant(storage)
    main = await counter(storage, t, "main", None, main=True)
    await hourly(storage, main, LEAKING)
    first, second = await unit_meters(storage, t)
    await hourly(storage, first, FIRST)
    # The second unit's meter lost five readings on the second day: one six-hour step, spread by the reference.
    points = await hourly(storage, second, SECOND, skip=range(30, 35))
    [balance] = (await report(storage, t)).balances
    assert [d.estimated for d in balance.buckets] == [False, True, False, False]
    gap_day = balance.buckets[1]
    expected = consumption(points, gap_day.start, gap_day.end, max_gap=timedelta(hours=3))
    assert expected.estimated and expected.consumption is not None
    assert gap_day.units == pytest.approx(24 * FIRST + expected.consumption, abs=1e-9)
    assert gap_day.share == pytest.approx(0.04, abs=1e-9)  # a steady draw: the spread step is exact


async def test_a_unit_meter_without_readings_makes_every_day_estimated(storage: Storage) -> None:
    t, _ = await building(storage, LEAKING)
    third = Unit(organization_id=t.organization.id, building_id=t.building.id, name="App. 3", floor=3)
    await storage.tenancy.add_unit(third)
    await counter(storage, t, "u3", third)
    [balance] = (await report(storage, t)).balances
    assert all(d.estimated and (d.units_measured, d.units_total) == (2, 3) for d in balance.buckets)
    assert balance.buckets[0].share == pytest.approx(0.04, abs=1e-9)


async def test_unit_meters_in_litres_count_in_the_main_meters_cubic_metres(storage: Storage) -> None:
    t = await make_tenant(storage)
    main = await counter(storage, t, "main", None, main=True)
    await hourly(storage, main, LEAKING)
    first, second = await unit_meters(storage, t, unit_of_measure="L")
    await hourly(storage, first, FIRST * 1000)
    await hourly(storage, second, SECOND)
    [balance] = (await report(storage, t)).balances
    assert balance.buckets[0].share == pytest.approx(0.04, abs=1e-9)


async def test_the_balance_is_for_the_syndic_of_the_building_only(storage: Storage) -> None:
    t, _ = await building(storage, LEAKING)
    other = await make_tenant(storage, "Other")
    service = analytics(storage)
    with pytest.raises(NotFound):
        await service.building_balance(Principal.of(other.syndic), t.building.id)
    with pytest.raises(Forbidden):
        await service.building_balance(Principal.of(t.owner, [t.building.id]), t.building.id)
    assert (await service.building_balance(Principal.of(other.syndic), other.building.id)).balances == []


async def test_one_main_meter_per_building_and_type_and_only_a_common_counter(storage: Storage) -> None:
    t, main = await building(storage, EXACT)
    provisioning = Provisioning(storage.tenancy, storage.sensors, AuditLog(storage.audit))
    syndic = Principal.of(t.syndic)
    spare = await counter(storage, t, "spare", None)
    with pytest.raises(Conflict, match="already the building's main cold_water meter"):
        await provisioning.update_sensor(syndic, spare.id, {"main_meter": True})
    with pytest.raises(Conflict):  # the database refuses it too, should a writer skip the service
        await storage.sensors.update(spare.changed(main_meter=True))
    with pytest.raises(InvalidValue, match="a main meter is a common counter"):
        await provisioning.update_sensor(syndic, t.unit_sensor.id, {"main_meter": True})
    await provisioning.update_sensor(syndic, main.id, {"main_meter": False})
    assert (await provisioning.update_sensor(syndic, spare.id, {"main_meter": True})).main_meter
    assert [s.id for s in await storage.sensors.select(t.organization.id) if s.main_meter] == [spare.id]


async def test_the_balance_insight_for_a_syndic(storage: Storage) -> None:
    t, main = await building(storage, LEAKING)
    found = await analytics(storage).insights(Principal.of(t.syndic), start=START, end=END)
    [insight] = [i for i in found.insights if i.kind is InsightKind.BUILDING_BALANCE]
    assert (insight.severity, insight.sensor_id, insight.building_id) == (Severity.INFO, main.id, t.building.id)
    assert insight.figures["unexplained_share"].value == pytest.approx(4.0)
    assert insight.figures["unexplained"].value == pytest.approx(DAYS * 24 * 0.004, abs=1e-3)
    assert "4.0%" in insight.title
    owner = await analytics(storage).insights(Principal.of(t.owner, [t.building.id]), start=START, end=END)
    assert not [i for i in owner.insights if i.kind is InsightKind.BUILDING_BALANCE]
    exact, _ = await building(storage, EXACT)
    quiet = await analytics(storage).insights(Principal.of(exact.syndic), start=START, end=END)
    assert not [i for i in quiet.insights if i.kind is InsightKind.BUILDING_BALANCE]


async def test_the_balance_alert_is_raised_once_and_cleared_by_the_syndics_threshold(storage: Storage) -> None:
    t, main = await building(storage, LEAKING)
    exact, exact_main = await building(storage, EXACT)
    judge = WindowRules(storage)
    now = END + timedelta(minutes=30)  # the three whole days before it are 6, 7 and 8 January
    assert await judge.run_once(now) is not None
    [alert] = await active(storage, main)
    assert (alert.rule, alert.severity, alert.building_id, alert.unit_id) == (
        "balance",
        AlertSeverity.WARNING,
        t.building.id,
        None,
    )
    assert alert.reading_value == pytest.approx(4.0) and alert.threshold_value == 3.0
    assert "4.0%" in alert.message and "2026-01-06 to 2026-01-08" in alert.message
    assert await active(storage, exact_main) == []
    # The next hour judges the same days again: the same evidence, not a repeat.
    await judge.run_once(now + timedelta(hours=1))
    [again] = await active(storage, main)
    assert (again.id, again.occurrences) == (alert.id, 1)
    # The syndic tolerates 5 % on this building: the share is back below the threshold, the alert clears.
    await storage.alert_rules.put_override(t.organization.id, main.id, {"balance": {"max_share_percent": 5}})
    await judge.run_once(now + timedelta(hours=2))
    assert await active(storage, main) == []
    # No longer the main meter: nothing judges it any more, and an alert raised before is cleared.
    await storage.alert_rules.delete_override(t.organization.id, main.id)
    await judge.run_once(now + timedelta(hours=3))
    assert len(await active(storage, main)) == 1
    await storage.sensors.update(main.changed(main_meter=False))
    await judge.run_once(now + timedelta(hours=4))
    assert await active(storage, main) == []


async def test_the_balance_through_the_api(api: Api) -> None:
    t = api.a
    main = await counter(api.storage, t, "main", None, main=True)
    await hourly(api.storage, main, LEAKING)
    first, second = await unit_meters(api.storage, t)
    await hourly(api.storage, first, FIRST)
    await hourly(api.storage, second, SECOND)
    url = f"/api/v1/iot/buildings/{t.building.id}/balance"
    params = {"start": START.isoformat(), "end": END.isoformat(), "period": "day", "sensor_type": "cold_water"}
    syndic = await api.token(t.syndic.email)
    response = await api.client.get(url, params=params, headers=syndic)
    assert response.status_code == 200, response.text
    [balance] = response.json()["balances"]
    assert balance["main_sensor_id"] == str(main.id) and len(balance["buckets"]) == DAYS
    assert abs(balance["buckets"][0]["share"] - 0.04) < 1e-9 and balance["buckets"][0]["estimated"] is False
    gas = await api.client.get(url, params=params | {"sensor_type": "gas"}, headers=syndic)
    assert gas.status_code == 200 and gas.json()["balances"] == []
    other = f"/api/v1/iot/buildings/{api.b.building.id}/balance"
    assert (await api.client.get(other, params=params, headers=syndic)).status_code == 404
    owner = await api.token(t.owner.email)
    assert (await api.client.get(url, params=params, headers=owner)).status_code == 403
    # The main-meter flag through the sensors API.
    sensor = f"/api/v1/iot/sensors/{main.id}"
    assert (await api.client.get(sensor, headers=syndic)).json()["main_meter"] is True
    changed = await api.client.put(sensor, json={"main_meter": False}, headers=syndic)
    assert changed.status_code == 200 and changed.json()["main_meter"] is False
    unit = f"/api/v1/iot/sensors/{t.unit_sensor.id}"
    refused = await api.client.put(unit, json={"main_meter": True}, headers=syndic)
    assert refused.status_code == 422 and "main meter is a common counter" in refused.text
