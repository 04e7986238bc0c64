"""Alert rules through the API: type defaults, sensor overrides, the effective result, and who may do what."""

from __future__ import annotations

import uuid

from koprogo_iot.domain.access import Principal
from koprogo_iot.domain.sensors import IoTSensor, SensorType
from koprogo_iot.services.alert_rules import AlertRuleSettings
from koprogo_iot.services.audit import AuditLog
from koprogo_iot.services.provisioning import Provisioning
from tests.api.conftest import Api

RULES = "/api/v1/iot/alert-rules"


def sensor_rules(sensor: IoTSensor) -> str:
    return f"/api/v1/iot/sensors/{sensor.id}/alert-rules"


async def test_type_defaults_listed_set_and_reset(api: Api) -> None:
    headers = await api.token(api.a.syndic.email)
    listed = (await api.client.get(RULES, headers=headers)).json()
    by_type = {item["sensor_type"]: item for item in listed}
    assert by_type["cold_water"]["defaults"] is None and by_type["cold_water"]["builtin"]["leak"]["enabled"] is True
    assert by_type["electricity"]["builtin"]["leak"]["enabled"] is False  # built-in: leaks are a water thing
    assert by_type["cold_water"]["effective"] == by_type["cold_water"]["builtin"]

    document = {
        "threshold": {"maximum": 90, "clear_maximum": 45, "duration_s": 300},
        "offline": {"missed_intervals": 4},
    }
    put = await api.client.put(f"{RULES}/cold_water", json=document, headers=headers)
    assert put.status_code == 200, put.text
    body = put.json()
    assert body["defaults"] == document
    assert body["effective"]["threshold"]["maximum"] == 90 and body["effective"]["offline"]["missed_intervals"] == 4
    assert body["effective"]["battery"] == by_type["cold_water"]["builtin"]["battery"]  # untouched fields stay
    assert (await api.client.get(f"{RULES}/cold_water", headers=headers)).json() == body

    # The common flow sensor keeps its own maximum (50) over the type's, and takes the rest.
    effective = (await api.client.get(f"{sensor_rules(api.a.common_sensor)}/effective", headers=headers)).json()
    assert effective["alert_threshold_max"] == 50.0 and effective["alert_threshold_min"] is None
    assert effective["type_defaults"] == document and effective["override"] is None
    threshold = effective["effective"]["threshold"]
    assert (threshold["maximum"], threshold["clear_maximum"], threshold["duration_s"]) == (50.0, 45, 300)

    deleted = await api.client.delete(f"{RULES}/cold_water", headers=headers)
    assert deleted.status_code == 204
    assert (await api.client.get(f"{RULES}/cold_water", headers=headers)).json()["defaults"] is None


async def test_invalid_rules_are_422_with_the_faulty_field(api: Api) -> None:
    headers = await api.token(api.a.syndic.email)
    bad = await api.client.put(f"{RULES}/cold_water", json={"threshold": {"maximum": "lots"}}, headers=headers)
    assert bad.status_code == 422 and "$.threshold.maximum" in bad.json()["message"]
    unknown = await api.client.put(f"{RULES}/cold_water", json={"leak": {"night_start": 1}}, headers=headers)
    assert unknown.status_code == 422 and "night_start" in unknown.json()["message"]
    not_object = await api.client.put(f"{RULES}/cold_water", json=[1, 2], headers=headers)
    assert not_object.status_code == 422
    no_type = await api.client.put(f"{RULES}/lava", json={}, headers=headers)
    assert no_type.status_code == 422
    override = await api.client.put(
        sensor_rules(api.a.unit_sensor), json={"battery": {"low_percent": 30, "clear_percent": 20}}, headers=headers
    )
    assert override.status_code == 422 and "battery.clear_percent" in override.json()["message"]

    # Valid alone, but a type minimum of 60 contradicts the common sensor's own maximum of 50.
    clash = await api.client.put(f"{RULES}/cold_water", json={"threshold": {"minimum": 60}}, headers=headers)
    assert clash.status_code == 422 and api.a.common_sensor.sensor_id in clash.json()["message"]
    clash = await api.client.put(
        sensor_rules(api.a.common_sensor), json={"threshold": {"minimum": 60}}, headers=headers
    )
    assert clash.status_code == 422
    assert (await api.client.get(f"{RULES}/cold_water", headers=headers)).json()["defaults"] is None


async def test_sensor_override_set_read_and_removed(api: Api) -> None:
    headers = await api.token(api.a.syndic.email)
    url = sensor_rules(api.a.unit_sensor)
    assert (await api.client.get(url, headers=headers)).json() == {
        "sensor_id": str(api.a.unit_sensor.id),
        "override": None,
    }
    await api.client.put(f"{RULES}/cold_water", json={"leak": {"continuous_hours": 8}}, headers=headers)

    document = {"leak": {"night_start_hour": 0, "night_end_hour": 6}, "faulty": {"max_increase_per_hour": 2.5}}
    put = await api.client.put(url, json=document, headers=headers)
    assert put.status_code == 200, put.text
    assert put.json() == {"sensor_id": str(api.a.unit_sensor.id), "override": document}
    assert (await api.client.get(url, headers=headers)).json()["override"] == document

    effective = (await api.client.get(f"{url}/effective", headers=headers)).json()
    leak = effective["effective"]["leak"]
    assert (leak["night_start_hour"], leak["night_end_hour"], leak["continuous_hours"]) == (0, 6, 8)
    assert effective["effective"]["faulty"]["max_increase_per_hour"] == 2.5
    assert effective["builtin"] == {} and effective["type_defaults"] == {"leak": {"continuous_hours": 8}}
    assert effective["sensor_type"] == "cold_water" and effective["alert_threshold_max"] is None

    assert (await api.client.delete(url, headers=headers)).status_code == 204
    assert (await api.client.get(url, headers=headers)).json()["override"] is None
    leak = (await api.client.get(f"{url}/effective", headers=headers)).json()["effective"]["leak"]
    assert (leak["night_start_hour"], leak["continuous_hours"]) == (1, 8)


async def test_owners_read_their_sensors_rules_and_change_nothing(api: Api) -> None:
    syndic, owner = await api.token(api.a.syndic.email), await api.token(api.a.owner.email)
    await api.client.put(sensor_rules(api.a.unit_sensor), json={"offline": {"missed_intervals": 6}}, headers=syndic)

    assert (await api.client.get(RULES, headers=owner)).status_code == 200
    mine = await api.client.get(sensor_rules(api.a.unit_sensor), headers=owner)
    assert mine.status_code == 200 and mine.json()["override"] == {"offline": {"missed_intervals": 6}}
    effective = await api.client.get(f"{sensor_rules(api.a.common_sensor)}/effective", headers=owner)
    assert effective.status_code == 200  # the building's common meter
    neighbour = sensor_rules(api.a.other_unit_sensor)
    assert (await api.client.get(neighbour, headers=owner)).status_code == 404
    assert (await api.client.get(f"{neighbour}/effective", headers=owner)).status_code == 404

    for response in (
        await api.client.put(f"{RULES}/cold_water", json={}, headers=owner),
        await api.client.delete(f"{RULES}/cold_water", headers=owner),
        await api.client.put(sensor_rules(api.a.unit_sensor), json={}, headers=owner),
        await api.client.delete(sensor_rules(api.a.unit_sensor), headers=owner),
    ):
        assert response.status_code == 403, response.text
    assert (await api.client.get(sensor_rules(api.a.unit_sensor), headers=owner)).json()["override"] is not None


async def test_another_organizations_sensors_and_defaults_are_out_of_reach(api: Api) -> None:
    a, b = await api.token(api.a.syndic.email), await api.token(api.b.syndic.email)
    await api.client.put(f"{RULES}/cold_water", json={"battery": {"low_percent": 15}}, headers=a)
    await api.client.put(sensor_rules(api.a.unit_sensor), json={"battery": {"low_percent": 10}}, headers=a)

    assert (await api.client.get(f"{RULES}/cold_water", headers=b)).json()["defaults"] is None
    url = sensor_rules(api.a.unit_sensor)
    for response in (
        await api.client.get(url, headers=b),
        await api.client.get(f"{url}/effective", headers=b),
        await api.client.put(url, json={"battery": {"low_percent": 50}}, headers=b),
        await api.client.delete(url, headers=b),
        await api.client.get(f"/api/v1/iot/sensors/{uuid.uuid4()}/alert-rules", headers=a),
    ):
        assert response.status_code == 404, response.text
    assert (await api.client.get(url, headers=a)).json()["override"] == {"battery": {"low_percent": 10}}
    assert (await api.client.get(f"{RULES}/cold_water", headers=a)).json()["defaults"] == {
        "battery": {"low_percent": 15}
    }


async def test_changes_are_announced_for_every_sensor_they_touch(api: Api) -> None:
    """Ingestion caches rules per sensor: each change names the sensors whose rules it changed."""
    audit = AuditLog(api.storage.audit)
    settings = AlertRuleSettings(
        api.storage.alert_rules, Provisioning(api.storage.tenancy, api.storage.sensors, audit), audit
    )
    told: list[uuid.UUID] = []
    settings.listeners.append(lambda sensor: told.append(sensor.id))
    syndic = Principal.of(api.a.syndic)
    water = {api.a.common_sensor.id, api.a.unit_sensor.id, api.a.other_unit_sensor.id}

    await settings.set_type_rules(syndic, SensorType.COLD_WATER, {"offline": {"missed_intervals": 2}})
    assert set(told) == water and len(told) == 3
    told.clear()
    await settings.set_type_rules(syndic, SensorType.HEATING, {"offline": {"missed_intervals": 2}})
    assert told == []  # no heating sensor
    await settings.set_sensor_override(syndic, api.a.unit_sensor.id, {"battery": {"low_percent": 5}})
    await settings.delete_sensor_override(syndic, api.a.unit_sensor.id)
    assert told == [api.a.unit_sensor.id, api.a.unit_sensor.id]
    told.clear()
    await settings.delete_type_rules(syndic, SensorType.COLD_WATER)
    assert set(told) == water
