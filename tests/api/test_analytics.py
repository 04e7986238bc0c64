"""Time series, consumption and comparisons through the API, as JSON and CSV, with tenancy."""

from datetime import UTC, datetime, timedelta

from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.domain.sensors import IoTSensor
from koprogo_iot.storage.ports import Ingested
from tests.api.conftest import Api

DAY = datetime(2026, 3, 2, tzinfo=UTC)
PERIOD = {"start": "2026-03-02T10:00:00Z", "end": "2026-03-02T12:00:00Z"}


async def ingest(api: Api, sensor: IoTSensor, *values: float) -> None:
    """Readings at 10:00, 11:00, 12:00... of DAY."""
    readings = [IoTReading.measured(sensor, DAY + timedelta(hours=10 + i), v) for i, v in enumerate(values)]
    await api.storage.readings.ingest([Ingested(r) for r in readings])


async def test_time_series_json_and_csv(api: Api) -> None:
    await ingest(api, api.a.unit_sensor, 100, 101, 103)
    headers = await api.token(api.a.syndic.email)
    url = f"/api/v1/iot/sensors/{api.a.unit_sensor.id}/time-series"
    response = await api.client.get(url, params=PERIOD | {"aggregation_interval": 3600}, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["kind"] == "cumulative" and body["unit_of_measure"] == "m³" and body["aggregation_interval"] == 3600
    assert [(p["start"], p["consumption"], p["last_index"]) for p in body["points"]] == [
        ("2026-03-02T10:00:00Z", 1.0, 100.0),
        ("2026-03-02T11:00:00Z", 2.0, 101.0),
    ]
    csv = await api.client.get(url, params=PERIOD | {"aggregation_interval": 3600, "format": "csv"}, headers=headers)
    assert csv.status_code == 200
    assert csv.headers["content-type"] == "text/csv; charset=utf-8"
    assert csv.headers["content-disposition"] == (
        f'attachment; filename="time-series-{api.a.unit_sensor.sensor_id}-20260302T100000Z-20260302T120000Z.csv"'
    )
    # Whole hours are served from the hourly rollups, which flag lost readings as the raw readings do: read hourly,
    # a sensor sampling every 5 minutes lost some (estimated: true).
    assert csv.text.splitlines()[1] == (
        f"{api.a.unit_sensor.id},m³,2026-03-02T10:00:00Z,2026-03-02T11:00:00Z,1,100,1,0,true,true"
    )


async def test_time_series_errors_and_tenancy(api: Api) -> None:
    syndic = await api.token(api.a.syndic.email)
    foreign = f"/api/v1/iot/sensors/{api.b.unit_sensor.id}/time-series"
    assert (await api.client.get(foreign, headers=syndic)).status_code == 404
    owner = await api.token(api.a.owner.email)
    neighbour = f"/api/v1/iot/sensors/{api.a.other_unit_sensor.id}/time-series"
    assert (await api.client.get(neighbour, headers=owner)).status_code == 404
    own = f"/api/v1/iot/sensors/{api.a.unit_sensor.id}/time-series"
    assert (await api.client.get(own, headers=owner)).status_code == 200
    too_fine = await api.client.get(
        own,
        params={"start": "2026-01-01T00:00:00Z", "end": "2026-03-01T00:00:00Z", "aggregation_interval": 60},
        headers=owner,
    )
    assert too_fine.status_code == 422
    assert "at least 510 s" in too_fine.json()["message"]  # 59 days = 5,097,600 s, / 10,000 rounded up
    naive = await api.client.get(own, params={"start": "2026-03-01T00:00:00"}, headers=owner)
    assert naive.status_code == 422 and "time zone" in naive.json()["message"]


async def test_consumption_by_unit_and_owner_scope(api: Api) -> None:
    await ingest(api, api.a.unit_sensor, 0, 1, 3)
    await ingest(api, api.a.other_unit_sensor, 10, 12, 12)
    await ingest(api, api.a.common_sensor, 20, 30, 40)  # a gauge: not summed
    syndic = await api.token(api.a.syndic.email)
    params = PERIOD | {"group_by": "unit", "period": "hour"}
    response = await api.client.get("/api/v1/iot/consumption", params=params, headers=syndic)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["timezone"] == "Europe/Brussels" and "unit of measure" in body["note"]
    assert {g["label"]: (g["total"], [b["consumption"] for b in g["buckets"]]) for g in body["groups"]} == {
        "App. 1": (3.0, [1.0, 2.0]),
        "App. 2": (2.0, [2.0, 0.0]),
    }
    owner = await api.token(api.a.owner.email)
    mine = (await api.client.get("/api/v1/iot/consumption", params=params, headers=owner)).json()
    assert [g["label"] for g in mine["groups"]] == ["App. 1"]
    neighbour = params | {"unit_id": str(api.a.units[1].id)}
    assert (await api.client.get("/api/v1/iot/consumption", params=neighbour, headers=owner)).status_code == 404
    foreign = params | {"building_id": str(api.b.building.id)}
    assert (await api.client.get("/api/v1/iot/consumption", params=foreign, headers=syndic)).status_code == 404
    wrong = await api.client.get("/api/v1/iot/consumption", params=params | {"period": "week"}, headers=syndic)
    assert wrong.status_code == 422
    years = {"start": "2024-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z", "period": "hour"}
    too_many = await api.client.get("/api/v1/iot/consumption", params=years, headers=syndic)
    assert too_many.status_code == 422 and "17544 hour buckets is more than 10000" in too_many.json()["message"]

    csv = await api.client.get("/api/v1/iot/consumption", params=params | {"format": "csv"}, headers=syndic)
    assert csv.headers["content-disposition"] == (
        'attachment; filename="consumption-by-unit-per-hour-20260302T100000Z-20260302T120000Z.csv"'
    )
    unit1, unit2 = api.a.units[0].id, api.a.units[1].id
    assert csv.text.splitlines() == [
        "group,label,unit_of_measure,start,end,consumption,sensors,complete",
        f"{unit1},App. 1,m³,2026-03-02T10:00:00Z,2026-03-02T11:00:00Z,1,1,true",
        f"{unit1},App. 1,m³,2026-03-02T11:00:00Z,2026-03-02T12:00:00Z,2,1,true",
        f"{unit2},App. 2,m³,2026-03-02T10:00:00Z,2026-03-02T11:00:00Z,2,1,true",
        f"{unit2},App. 2,m³,2026-03-02T11:00:00Z,2026-03-02T12:00:00Z,0,1,true",
    ]


async def test_comparisons(api: Api) -> None:
    await ingest(api, api.a.unit_sensor, 0, 1, 3)
    await ingest(api, api.a.other_unit_sensor, 10, 12, 12)
    syndic = await api.token(api.a.syndic.email)
    params = PERIOD | {"building_id": str(api.a.building.id), "sensor_type": "cold_water"}
    median = await api.client.get("/api/v1/iot/consumption/units-vs-median", params=params, headers=syndic)
    assert median.status_code == 200, median.text
    # Totals 3 and 2: the median of two is their mean, 2.5.
    assert [
        (u["unit_name"], u["consumption"], u["median"], u["deviation_percent"]) for u in median.json()["units"]
    ] == [
        ("App. 1", 3.0, 2.5, 20.0),
        ("App. 2", 2.0, 2.5, -20.0),
    ]
    owner = await api.token(api.a.owner.email)
    assert (
        await api.client.get("/api/v1/iot/consumption/units-vs-median", params=params, headers=owner)
    ).status_code == 403
    csv = await api.client.get(
        "/api/v1/iot/consumption/units-vs-median", params=params | {"format": "csv"}, headers=syndic
    )
    assert csv.text.splitlines()[0] == (
        "unit_id,unit_name,unit_of_measure,start,end,consumption,median,deviation_percent,complete"
    )
    assert csv.text.splitlines()[2].endswith(",App. 2,m³,2026-03-02T10:00:00Z,2026-03-02T12:00:00Z,2,2.5,-20,true")

    later = {"start": "2026-03-02T11:00:00Z", "end": "2026-03-02T12:00:00Z", "group_by": "unit"}
    change = await api.client.get("/api/v1/iot/consumption/period-comparison", params=later, headers=syndic)
    assert change.status_code == 200, change.text
    body = change.json()
    assert (body["previous_start"], body["previous_end"]) == ("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z")
    assert [(g["label"], g["current"], g["previous"], g["change_percent"]) for g in body["groups"]] == [
        ("App. 1", 2.0, 1.0, 100.0),
        ("App. 2", 0.0, 2.0, -100.0),
    ]
    csv = await api.client.get(
        "/api/v1/iot/consumption/period-comparison", params=later | {"format": "csv"}, headers=syndic
    )
    assert csv.headers["content-type"] == "text/csv; charset=utf-8"
    assert csv.text.splitlines()[1] == (
        f"{api.a.units[0].id},App. 1,m³,2026-03-02T10:00:00Z,2026-03-02T11:00:00Z,1,"
        "2026-03-02T11:00:00Z,2026-03-02T12:00:00Z,2,100,true"
    )
