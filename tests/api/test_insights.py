"""Insights through the API: the figures behind each one, owner scoping, tenancy and parameters."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.domain.sensors import IoTSensor
from koprogo_iot.storage.ports import Ingested
from tests.api.conftest import Api

START = datetime(2026, 1, 5, tzinfo=ZoneInfo("Europe/Brussels")).astimezone(UTC)
PERIOD = {"start": "2026-01-04T23:00:00Z", "end": "2026-01-08T23:00:00Z"}  # 5 to 8 January, Brussels days
URL = "/api/v1/iot/insights"


async def leaking(api: Api, sensor: IoTSensor) -> None:
    """Hourly readings over the period: 3 L/h from 02:00 to 05:00 Brussels time, 30 L/h otherwise."""
    index, readings = 100.0, []
    for hour in range(4 * 24 + 1):
        ts = START + timedelta(hours=hour)
        readings.append(Ingested(IoTReading.measured(sensor, ts, index)))
        index += 0.003 if 1 <= ts.hour < 4 else 0.03  # UTC+1 in January
    await api.storage.readings.ingest(readings)


async def test_a_probable_leak_with_its_figures(api: Api) -> None:
    await leaking(api, api.a.unit_sensor)
    headers = await api.token(api.a.syndic.email)
    params = PERIOD | {"building_id": str(api.a.building.id), "water_price": "4"}
    response = await api.client.get(URL, params=params, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert {k: body[k] for k in ("start", "end", "timezone", "building_id", "water_price_eur_per_m3")} == {
        "start": "2026-01-04T23:00:00Z",
        "end": "2026-01-08T23:00:00Z",
        "timezone": "Europe/Brussels",
        "building_id": str(api.a.building.id),
        "water_price_eur_per_m3": 4.0,
    }
    [leak] = body["insights"]
    assert {k: leak[k] for k in ("kind", "severity", "sensor_id", "unit_id", "building_id")} == {
        "kind": "continuous_flow",
        "severity": "warning",
        "sensor_id": str(api.a.unit_sensor.id),
        "unit_id": str(api.a.units[0].id),
        "building_id": str(api.a.building.id),
    }
    assert leak["figures"]["min_night_flow"] == {"value": 3.0, "unit": "L/h"}
    assert leak["figures"]["nights_examined"] == {"value": 4, "unit": "nights"}
    assert leak["figures"]["yearly_waste"] == {"value": 26.28, "unit": "m³"}
    assert leak["figures"]["yearly_cost"] == {"value": 105.12, "unit": "EUR"}  # at 4 EUR/m³
    assert "leak" in leak["title"] and "3.0 L/h" in leak["message"]


async def test_owner_sees_only_their_unit_and_foreign_buildings_are_absent(api: Api) -> None:
    await leaking(api, api.a.unit_sensor)
    await leaking(api, api.a.other_unit_sensor)
    syndic = await api.token(api.a.syndic.email)
    everything = (await api.client.get(URL, params=PERIOD, headers=syndic)).json()["insights"]
    assert {i["sensor_id"] for i in everything} == {str(api.a.unit_sensor.id), str(api.a.other_unit_sensor.id)}
    owner = await api.token(api.a.owner.email)
    mine = (await api.client.get(URL, params=PERIOD, headers=owner)).json()["insights"]
    assert [i["sensor_id"] for i in mine] == [str(api.a.unit_sensor.id)]
    foreign = {"building_id": str(api.b.building.id)}
    assert (await api.client.get(URL, params=PERIOD | foreign, headers=syndic)).status_code == 404
    assert (await api.client.get(URL, params=PERIOD | foreign, headers=owner)).status_code == 404


async def test_default_period_and_bad_parameters(api: Api) -> None:
    headers = await api.token(api.a.syndic.email)
    response = await api.client.get(URL, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    span = datetime.fromisoformat(body["end"]) - datetime.fromisoformat(body["start"])
    assert span == timedelta(days=30) and body["insights"] == [] and body["building_id"] is None
    assert (await api.client.get(URL, params={"water_price": "0"}, headers=headers)).status_code == 422
    reversed_period = {"start": PERIOD["end"], "end": PERIOD["start"]}
    assert (await api.client.get(URL, params=reversed_period, headers=headers)).status_code == 422
    assert (await api.client.get(URL)).status_code == 401
