"""The ISTA endpoints: CSV upload, meters and their links, the report; syndics only, per organization."""

from datetime import date

from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.ista.csv_format import COLUMNS
from koprogo_iot.ista.periods import reading_instant
from koprogo_iot.storage.ports import Ingested
from tests.api.conftest import Api

CSV = {"Content-Type": "text/csv; charset=utf-8"}


def ista_file(api: Api, *extra: str) -> bytes:
    a, b = api.a, api.a.building.name
    rows = [
        f"{b};App. 1;{a.unit_sensor.sensor_id};WATER_COLD;2025-01-01;100;m³;ACTUAL",
        f"{b};App. 1;{a.unit_sensor.sensor_id};WATER_COLD;2025-07-01;200;m³;ACTUAL",
        f"{b};App. 2;ISTA-2;WATER_COLD;01/01/2025;100,0;m³;ACTUAL",
        f"{b};App. 2;ISTA-2;WATER_COLD;01/07/2025;200,0;m³;ACTUAL",
        *extra,
    ]
    return ("\ufeff" + "\r\n".join([";".join(COLUMNS), *rows])).encode()


async def test_import_link_and_report(api: Api) -> None:
    syndic = await api.token(api.a.syndic.email)
    headers = syndic | CSV
    body = ista_file(api, f"{api.a.building.name};App. 2;ISTA-2;WATER_COLD;2025-13-01;1;m³;ACTUAL")
    response = await api.client.post("/api/v1/ista/imports", content=body, headers=headers)
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["imported"], result["skipped_duplicates"]) == (4, 0)
    assert result["errors"] == [{"line": 6, "message": "reading date '2025-13-01' does not exist"}]
    again = (await api.client.post("/api/v1/ista/imports", content=body, headers=headers)).json()
    assert (again["imported"], again["skipped_duplicates"], len(again["errors"])) == (0, 4, 1)

    meters = (await api.client.get("/api/v1/ista/meters", headers=syndic)).json()
    linked = {m["meter_number"]: m["sensor_id"] for m in meters}
    assert linked == {api.a.unit_sensor.sensor_id: str(api.a.unit_sensor.id), "ISTA-2": None}
    put = await api.client.put(
        "/api/v1/ista/meters/ISTA-2/sensor", json={"sensor_id": str(api.a.other_unit_sensor.id)}, headers=syndic
    )
    assert put.status_code == 200 and put.json()["sensor_id"] == str(api.a.other_unit_sensor.id)

    for sensor, iot in ((api.a.unit_sensor, 107), (api.a.other_unit_sensor, 103)):
        readings = [
            IoTReading.measured(sensor, reading_instant(d), v)
            for d, v in ((date(2025, 1, 1), 0), (date(2025, 7, 1), iot))
        ]
        await api.storage.readings.ingest([Ingested(r) for r in readings])
    report = await api.client.get("/api/v1/ista/report", params={"start": "2025-01-01"}, headers=syndic)
    assert report.status_code == 200, report.text
    by_meter = {m["meter_number"]: m for m in report.json()["meters"]}
    [flagged] = by_meter[api.a.unit_sensor.sensor_id]["periods"]
    [within] = by_meter["ISTA-2"]["periods"]
    assert flagged["flagged"] and flagged["status"] == "deviation" and round(flagged["deviation_percent"], 6) == 7
    assert not within["flagged"] and within["status"] == "ok" and round(within["deviation_percent"], 6) == 3
    assert (flagged["start"], flagged["end"], flagged["unit_of_measure"]) == ("2025-01-01", "2025-07-01", "m³")
    assert by_meter["ISTA-2"]["unit_name"] == "App. 2" and report.json()["flagged"] == 1
    lenient = await api.client.get("/api/v1/ista/report", params={"threshold_percent": 8}, headers=syndic)
    assert lenient.json()["flagged"] == 0


async def test_tenancy_and_roles(api: Api) -> None:
    syndic = await api.token(api.a.syndic.email)
    await api.client.post("/api/v1/ista/imports", content=ista_file(api), headers=syndic | CSV)
    foreign = {"sensor_id": str(api.b.unit_sensor.id)}
    response = await api.client.put("/api/v1/ista/meters/ISTA-2/sensor", json=foreign, headers=syndic)
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    intruder = await api.token(api.b.syndic.email)
    own = {"sensor_id": str(api.b.unit_sensor.id)}
    response = await api.client.put("/api/v1/ista/meters/ISTA-2/sensor", json=own, headers=intruder)
    assert response.status_code == 404  # A's meter does not exist for B
    assert (await api.client.get("/api/v1/ista/meters", headers=intruder)).json() == []
    other_building = {"building_id": str(api.b.building.id)}
    assert (await api.client.get("/api/v1/ista/report", params=other_building, headers=syndic)).status_code == 404

    owner = await api.token(api.a.owner.email)
    attempts = [
        ("POST", "/api/v1/ista/imports", ista_file(api), CSV),
        ("GET", "/api/v1/ista/meters", None, {}),
        ("GET", "/api/v1/ista/report", None, {}),
        ("PUT", "/api/v1/ista/meters/ISTA-2/sensor", b'{"sensor_id": null}', {"Content-Type": "application/json"}),
    ]
    for method, url, content, extra in attempts:
        response = await api.client.request(method, url, content=content, headers=owner | extra)
        assert response.status_code == 403, (method, url, response.text)
    admin = await api.token(api.admin.email)
    assert (await api.client.get("/api/v1/ista/meters", headers=admin)).status_code == 200


async def test_unreadable_uploads_are_refused_whole(api: Api) -> None:
    syndic = await api.token(api.a.syndic.email)
    wrong_header = await api.client.post("/api/v1/ista/imports", content=b"a;b;c\n1;2;3\n", headers=syndic | CSV)
    assert wrong_header.status_code == 422 and "unknown column 'a'" in wrong_header.json()["message"]
    as_json = await api.client.post("/api/v1/ista/imports", json={"rows": []}, headers=syndic)
    assert as_json.status_code == 415 and as_json.json()["error"] == "unsupported_media_type"
    bad_threshold = await api.client.get("/api/v1/ista/report", params={"threshold_percent": -1}, headers=syndic)
    assert bad_threshold.status_code == 422
