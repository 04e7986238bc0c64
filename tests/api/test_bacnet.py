"""BACnet points through the API: syndics configure their buildings' points, owners cannot, other organizations
see nothing, and a bad field is a 422 naming it."""

import dataclasses
import uuid
from typing import Any

from koprogo_iot.domain.sensors import DeviceFormat
from tests.api.conftest import Api

POINTS = "/api/v1/iot/bacnet/points"


def body(api: Api, **changes: Any) -> dict[str, Any]:
    return {
        "building_id": str(api.a.building.id),
        "sensor_id": str(api.a.common_sensor.id),
        "address": "192.168.10.21",
        "object_type": "analog-input",
        "object_instance": 3,
    } | changes


async def test_point_lifecycle(api: Api) -> None:
    headers = await api.token(api.a.syndic.email)
    created = await api.client.post(POINTS, json=body(api, device_instance=2098177), headers=headers)
    assert created.status_code == 201, created.text
    point = created.json()
    assert point["address"] == "192.168.10.21:47808" and point["object_identifier"] == "analog-input,3"
    assert point["property_identifier"] == "present-value" and point["scale"] == 1.0
    assert point["polling_interval"] == api.a.common_sensor.sampling_interval  # the sensor's, when not given
    assert point["device_instance"] == 2098177
    url = f"{POINTS}/{point['id']}"
    assert (await api.client.get(url, headers=headers)).json() == point
    listed = await api.client.get(POINTS, params={"building_id": str(api.a.building.id)}, headers=headers)
    assert [p["id"] for p in listed.json()] == [point["id"]]

    changes = {"object_type": "accumulator", "scale": 0.001, "polling_interval": 900, "device_instance": None}
    updated = await api.client.put(url, json=changes, headers=headers)
    assert updated.status_code == 200, updated.text
    assert {k: updated.json()[k] for k in changes} == changes
    assert updated.json()["address"] == point["address"]  # untouched fields stay

    assert (await api.client.delete(url, headers=headers)).status_code == 204
    assert (await api.client.get(url, headers=headers)).status_code == 404
    assert (await api.client.get(POINTS, headers=headers)).json() == []


async def test_owners_cannot_see_or_change_points(api: Api) -> None:
    syndic, owner = await api.token(api.a.syndic.email), await api.token(api.a.owner.email)
    point = (await api.client.post(POINTS, json=body(api), headers=syndic)).json()
    url = f"{POINTS}/{point['id']}"
    for response in (
        await api.client.post(POINTS, json=body(api, sensor_id=str(api.a.unit_sensor.id)), headers=owner),
        await api.client.get(POINTS, headers=owner),
        await api.client.get(url, headers=owner),
        await api.client.put(url, json={"scale": 2}, headers=owner),
        await api.client.delete(url, headers=owner),
    ):
        assert response.status_code == 403, response.text
    assert (await api.client.get(url, headers=syndic)).json() == point


async def test_another_organizations_ids_answer_404(api: Api) -> None:
    a, b = await api.token(api.a.syndic.email), await api.token(api.b.syndic.email)
    point = (await api.client.post(POINTS, json=body(api), headers=a)).json()
    url = f"{POINTS}/{point['id']}"
    for response in (
        await api.client.get(url, headers=b),
        await api.client.put(url, json={"scale": 2}, headers=b),
        await api.client.delete(url, headers=b),
        await api.client.get(POINTS, params={"building_id": str(api.a.building.id)}, headers=b),
        # B's building with A's sensor, and A's building with B's sensor
        await api.client.post(POINTS, json=body(api, building_id=str(api.b.building.id)), headers=b),
        await api.client.post(POINTS, json=body(api, sensor_id=str(api.b.common_sensor.id)), headers=a),
        await api.client.put(url, json={"sensor_id": str(api.b.common_sensor.id)}, headers=a),
    ):
        assert response.status_code == 404, response.text
    assert (await api.client.get(POINTS, headers=b)).json() == []
    assert (await api.client.get(url, headers=a)).json() == point


async def test_bad_fields_are_422_naming_the_field(api: Api) -> None:
    headers = await api.token(api.a.syndic.email)
    cases = [
        (body(api, address="pxc-3.local"), "address must be a controller's IPv4 address"),
        (body(api, address="10.0.0.1:99999"), "address port must be a number from 1 to 65535"),
        (body(api, object_type="trend-log"), "object_type: Input should be 'analog-input'"),
        (body(api, object_instance=5_000_000), "object instance must be a whole number from 0 to 4194302"),
        (body(api, property_identifier="pulse-rate"), "property identifier of analog-input objects must be one of"),
        (body(api, polling_interval=5), "polling interval must be between 10 s and 86400 s"),
        (body(api, scale=0), "scale must be a finite number other than zero"),
        (body(api, scale=None), "scale cannot be null"),
        (body(api, colour="blue"), "colour: Extra inputs are not permitted"),
        ({k: v for k, v in body(api).items() if k != "address"}, "address: Field required"),
        (body(api, sensor_id="KAM-123"), "sensor_id: Input should be a valid UUID"),
    ]
    for sent, message in cases:
        response = await api.client.post(POINTS, json=sent, headers=headers)
        assert response.status_code == 422, (sent, response.text)
        assert message in response.json()["message"], response.json()


async def test_the_sensor_must_be_a_native_sensor_of_that_building_without_another_point(api: Api) -> None:
    headers = await api.token(api.a.syndic.email)
    annexe = (await api.client.post("/api/v1/buildings", json={"name": "Annexe"}, headers=headers)).json()
    moved = await api.client.post(POINTS, json=body(api, building_id=annexe["id"]), headers=headers)
    assert moved.status_code == 422 and f"is not in building {annexe['id']}" in moved.json()["message"]

    shelly = dataclasses.replace(
        api.a.unit_sensor, id=uuid.uuid4(), sensor_id="shelly-1", device_format=DeviceFormat.SHELLY, device_field="x"
    )
    await api.storage.sensors.add(shelly)
    decoded = await api.client.post(POINTS, json=body(api, sensor_id=str(shelly.id)), headers=headers)
    assert decoded.status_code == 422 and "must be a native sensor, not shelly" in decoded.json()["message"]

    first = await api.client.post(POINTS, json=body(api), headers=headers)
    second = await api.client.post(POINTS, json=body(api, object_instance=4), headers=headers)
    assert second.status_code == 409 and f"already has BACnet point {first.json()['id']}" in second.json()["message"]
    # The point itself may change its object without conflicting with itself.
    changed = await api.client.put(f"{POINTS}/{first.json()['id']}", json={"object_instance": 4}, headers=headers)
    assert changed.status_code == 200 and changed.json()["object_identifier"] == "analog-input,4"
