"""Provisioning sensors through the API, with readable errors."""

from typing import Any

from tests.api.conftest import Api


def sensor_body(api: Api, **changes: Any) -> dict[str, Any]:
    return {
        "building_id": str(api.a.building.id),
        "unit_id": str(api.a.units[1].id),
        "sensor_id": "SHELLY-PM-01",
        "sensor_type": "electricity",
        "manufacturer": "Shelly",
        "model": "Plus PM",
        "location": "App. 2 board",
        "unit_of_measure": "kWh",
        "sampling_interval": 60,
    } | changes


async def test_sensor_lifecycle(api: Api) -> None:
    headers = await api.token(api.a.syndic.email)
    created = await api.client.post("/api/v1/iot/sensors", json=sensor_body(api), headers=headers)
    assert created.status_code == 201, created.text
    sensor = created.json()
    assert sensor["mqtt_topic"] == f"koprogo/{api.a.organization.id}/{api.a.building.id}/SHELLY-PM-01/readings"
    assert sensor["kind"] == "cumulative" and sensor["calibration_factor"] == 1.0 and sensor["status"] == "active"
    url = f"/api/v1/iot/sensors/{sensor['id']}"

    assert (await api.client.get(url, headers=headers)).json() == sensor
    listed = await api.client.get("/api/v1/iot/sensors", params={"unit_id": str(api.a.units[1].id)}, headers=headers)
    assert sensor["id"] in [s["id"] for s in listed.json()]

    updated = await api.client.put(
        url, json={"location": "Meter cupboard", "alert_threshold_max": 9000}, headers=headers
    )
    assert updated.status_code == 200
    assert updated.json()["location"] == "Meter cupboard" and updated.json()["alert_enabled"] is True
    assert updated.json()["model"] == "Plus PM"  # untouched fields stay

    calibrated = await api.client.post(f"{url}/calibrate", json={"calibration_factor": 1.05}, headers=headers)
    assert calibrated.json()["calibration_factor"] == 1.05

    assert (await api.client.delete(url, headers=headers)).status_code == 204
    assert (await api.client.get(url, headers=headers)).status_code == 404


async def test_validation_errors_are_422_with_a_readable_message(api: Api) -> None:
    headers = await api.token(api.a.syndic.email)
    cases = [
        (sensor_body(api, sampling_interval=5), "sampling interval must be between 10 s and 86400 s"),
        (sensor_body(api, sensor_id="  "), "sensor id cannot be empty"),
        (sensor_body(api, sensor_type="plutonium"), "sensor_type: Input should be"),
        ({k: v for k, v in sensor_body(api).items() if k != "location"}, "location: Field required"),
        (sensor_body(api, calibration_factor=0), "calibration factor must be a positive number"),
        (sensor_body(api, colour="blue"), "colour: Extra inputs are not permitted"),
    ]
    for body, message in cases:
        response = await api.client.post("/api/v1/iot/sensors", json=body, headers=headers)
        assert response.status_code == 422, response.text
        assert message in response.json()["message"]
    bad_query = await api.client.get(f"/api/v1/iot/sensors/{api.a.unit_sensor.id}/readings?limit=0", headers=headers)
    assert bad_query.status_code == 422 and "limit must be between 1 and 10000" in bad_query.json()["message"]
    bad_id = await api.client.get("/api/v1/iot/sensors/not-a-uuid", headers=headers)
    assert bad_id.status_code == 422 and "sensor_id" in bad_id.json()["message"]


async def test_duplicate_manufacturer_id_is_a_conflict(api: Api) -> None:
    headers = await api.token(api.a.syndic.email)
    body = sensor_body(api, sensor_id=api.a.unit_sensor.sensor_id)
    response = await api.client.post("/api/v1/iot/sensors", json=body, headers=headers)
    assert response.status_code == 409 and "already registered" in response.json()["message"]


async def test_unit_must_be_in_the_sensor_building(api: Api) -> None:
    headers = await api.token(api.a.syndic.email)
    building = await api.client.post("/api/v1/buildings", json={"name": "Annex"}, headers=headers)
    body = sensor_body(api, building_id=building.json()["id"])  # unit of the first building
    response = await api.client.post("/api/v1/iot/sensors", json=body, headers=headers)
    assert response.status_code == 422 and "is not in building" in response.json()["message"]


async def test_provisioning_a_building_from_scratch(api: Api) -> None:
    headers = await api.token(api.a.syndic.email)
    building = (await api.client.post("/api/v1/buildings", json={"name": "Les Tilleuls"}, headers=headers)).json()
    unit = await api.client.post("/api/v1/units", json={"building_id": building["id"], "name": "1A"}, headers=headers)
    assert unit.status_code == 201
    owner = await api.client.post(
        "/api/v1/users",
        json={
            "email": "new.owner@example.org",
            "password": "long enough",
            "full_name": "New Owner",
            "role": "owner",
            "unit_ids": [unit.json()["id"]],
        },
        headers=headers,
    )
    assert owner.status_code == 201 and owner.json()["unit_ids"] == [unit.json()["id"]]
    login = await api.client.post(
        "/api/v1/auth/login", json={"email": "new.owner@example.org", "password": "long enough"}
    )
    assert login.status_code == 200
    buildings = await api.client.get(
        "/api/v1/buildings", headers={"Authorization": f"Bearer {login.json()['access_token']}"}
    )
    assert [b["name"] for b in buildings.json()] == ["Les Tilleuls"]
