"""Tenancy is sacred: another organization's ids answer 404; owners see their own and the common meters."""

import json
from datetime import timedelta

from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.detection import reading_decisions
from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.domain.rules import effective_rules
from koprogo_iot.storage.ports import Ingested
from tests.api.conftest import Api
from tests.conftest import PASSWORD


async def raise_alert(api: Api) -> str:
    sensor = api.a.common_sensor
    reading = IoTReading.measured(sensor, utcnow() - timedelta(minutes=1), 75.0)
    await api.storage.readings.ingest(
        [Ingested(reading, reading_decisions(sensor, effective_rules(sensor), reading, None))]
    )
    [alert] = await api.storage.alerts.select(api.a.organization.id)
    return str(alert.id)


async def test_another_organizations_ids_answer_404(api: Api) -> None:
    alert_id = await raise_alert(api)
    intruder = await api.token(api.b.syndic.email)
    a = api.a
    sensor = f"/api/v1/iot/sensors/{a.unit_sensor.id}"
    attempts = [
        ("GET", sensor, None),
        ("PUT", sensor, {"location": "mine now"}),
        ("DELETE", sensor, None),
        ("POST", f"{sensor}/calibrate", {"calibration_factor": 2}),
        ("GET", f"{sensor}/readings", None),
        ("GET", f"/api/v1/buildings/{a.building.id}", None),
        ("POST", f"/api/v1/iot/alerts/{alert_id}/acknowledge", {"note": "not mine"}),
        ("POST", "/api/v1/units", {"building_id": str(a.building.id), "name": "squat"}),
        (
            "POST",
            "/api/v1/iot/sensors",
            {
                "building_id": str(a.building.id),
                "sensor_id": "x",
                "sensor_type": "gas",
                "manufacturer": "m",
                "model": "m",
                "location": "l",
                "unit_of_measure": "m³",
            },
        ),
    ]
    for method, url, body in attempts:
        response = await api.client.request(method, url, json=body, headers=intruder)
        assert response.status_code == 404, (method, url, response.text)
    listed = await api.client.get("/api/v1/iot/sensors", headers=intruder)
    assert a.unit_sensor.id not in {s["id"] for s in listed.json()}
    assert (await api.client.get("/api/v1/iot/alerts", headers=intruder)).json() == []
    # Nothing changed for the rightful owner.
    mine = await api.token(a.syndic.email)
    assert (await api.client.get(sensor, headers=mine)).json()["location"] == a.unit_sensor.location


async def test_owner_sees_their_unit_and_common_meters_only(api: Api) -> None:
    alert_id = await raise_alert(api)
    owner = await api.token(api.a.owner.email)
    listed = await api.client.get("/api/v1/iot/sensors", headers=owner)
    assert {s["id"] for s in listed.json()} == {str(api.a.unit_sensor.id), str(api.a.common_sensor.id)}
    neighbour = await api.client.get(f"/api/v1/iot/sensors/{api.a.other_unit_sensor.id}", headers=owner)
    assert neighbour.status_code == 404
    readings = await api.client.get(f"/api/v1/iot/sensors/{api.a.unit_sensor.id}/readings", headers=owner)
    assert readings.status_code == 200
    assert [a["id"] for a in (await api.client.get("/api/v1/iot/alerts", headers=owner)).json()] == [alert_id]
    units = await api.client.get("/api/v1/units", headers=owner)
    assert [u["id"] for u in units.json()] == [str(api.a.units[0].id)]


async def test_owner_cannot_change_anything(api: Api) -> None:
    alert_id = await raise_alert(api)
    owner = await api.token(api.a.owner.email)
    attempts = [
        ("PUT", f"/api/v1/iot/sensors/{api.a.unit_sensor.id}", {"location": "x"}),
        ("POST", f"/api/v1/iot/alerts/{alert_id}/acknowledge", {"note": "x"}),
        ("POST", "/api/v1/buildings", {"name": "x"}),
        ("GET", "/api/v1/users", None),
    ]
    for method, url, body in attempts:
        response = await api.client.request(method, url, json=body, headers=owner)
        assert response.status_code == 403, (method, url, response.text)


async def test_only_a_superadmin_creates_organizations_and_their_users(api: Api) -> None:
    syndic = await api.token(api.a.syndic.email)
    refused = await api.client.post("/api/v1/organizations", json={"name": "Rogue"}, headers=syndic)
    assert refused.status_code == 403
    admin = await api.token(api.admin.email)
    org = await api.client.post("/api/v1/organizations", json={"name": "Copro Nouvelle"}, headers=admin)
    assert org.status_code == 201
    user = {
        "email": "first@nouvelle.example.org",
        "password": "long enough",
        "full_name": "First Syndic",
        "role": "syndic",
        "organization_id": org.json()["id"],
    }
    assert (await api.client.post("/api/v1/users", json=user, headers=syndic)).status_code == 403
    assert (await api.client.post("/api/v1/users", json=user, headers=admin)).status_code == 201
    names = [o["name"] for o in (await api.client.get("/api/v1/organizations", headers=admin)).json()]
    assert "Copro Nouvelle" in names
    own = (await api.client.get("/api/v1/organizations", headers=syndic)).json()
    assert [o["id"] for o in own] == [str(api.a.organization.id)]


async def test_an_owner_mutes_channels_for_themselves_and_the_syndic_sees_it(api: Api) -> None:
    owner, syndic = await api.token(api.a.owner.email), await api.token(api.a.syndic.email)
    url = f"/api/v1/users/{api.a.owner.id}/contacts"
    body = {"phone": "+32 470 12 34 56", "push_topic": None, "muted_channels": ["sms", "push"]}
    saved = await api.client.put(url, json=body, headers=owner)
    assert saved.status_code == 200, saved.text
    assert saved.json()["muted_channels"] == ["push", "sms"] and saved.json()["phone"] == "+32470123456"
    assert (await api.client.get("/api/v1/auth/me", headers=owner)).json()["muted_channels"] == ["push", "sms"]
    listed = {u["id"]: u for u in (await api.client.get("/api/v1/users", headers=syndic)).json()}
    assert listed[str(api.a.owner.id)]["muted_channels"] == ["push", "sms"]
    # The syndic's users table saves contacts without the field: the owner's choice stays.
    kept = await api.client.put(url, json={"phone": None, "push_topic": "owner-topic"}, headers=syndic)
    assert kept.json()["muted_channels"] == ["push", "sms"]
    fax = await api.client.put(url, json={**body, "muted_channels": ["fax"]}, headers=owner)
    assert fax.status_code == 422 and "muted_channels" in fax.text
    foreign = f"/api/v1/users/{api.b.owner.id}/contacts"
    assert (await api.client.put(foreign, json=body, headers=syndic)).status_code == 404


async def test_a_syndic_resets_a_forgotten_password_and_the_users_sessions_end(api: Api) -> None:
    syndic, owner = await api.token(api.a.syndic.email), await api.token(api.a.owner.email)
    reset = {"new_password": "given-by-the-syndic"}
    answer = await api.client.put(f"/api/v1/users/{api.a.owner.id}/password", json=reset, headers=syndic)
    assert answer.status_code == 204, answer.text
    assert (await api.client.get("/api/v1/auth/me", headers=owner)).json()["error"] == "token_expired"
    login = {"email": api.a.owner.email, "password": "given-by-the-syndic"}
    assert (await api.client.post("/api/v1/auth/login", json=login)).status_code == 200
    for user_id, status, reason in (
        (api.a.syndic.id, 422, "current one"),  # one's own: with the current password
        (api.admin.id, 403, "superadmin"),  # a syndic cannot take a superadmin's account over
        (api.b.owner.id, 404, "not found"),
    ):
        refused = await api.client.put(f"/api/v1/users/{user_id}/password", json=reset, headers=syndic)
        assert refused.status_code == status and reason in refused.json()["message"], refused.text
    url = f"/api/v1/users/{api.a.owner.id}/password"
    assert (await api.client.put(url, json={"new_password": "x"}, headers=syndic)).status_code == 422


async def test_a_deactivated_user_can_no_longer_log_in_and_comes_back_when_reactivated(api: Api) -> None:
    syndic, owner = await api.token(api.a.syndic.email), await api.token(api.a.owner.email)
    url = f"/api/v1/users/{api.a.owner.id}/active"
    gone = await api.client.put(url, json={"active": False}, headers=syndic)
    assert gone.status_code == 200 and gone.json()["deactivated_at"] is not None, gone.text
    refused = await api.client.get("/api/v1/auth/me", headers=owner)
    assert refused.status_code == 401 and "deactivated" in refused.json()["message"]
    login = {"email": api.a.owner.email, "password": PASSWORD}
    again = await api.client.post("/api/v1/auth/login", json=login)
    assert again.status_code == 401 and "deactivated" in again.json()["message"]
    wrong = await api.client.post("/api/v1/auth/login", json={**login, "password": "wrong password"})
    assert wrong.json()["message"] == "wrong email or password"  # the account's state only to whom knows it
    listed = {u["id"]: u for u in (await api.client.get("/api/v1/users", headers=syndic)).json()}
    assert listed[str(api.a.owner.id)]["deactivated_at"] == gone.json()["deactivated_at"]
    back = await api.client.put(url, json={"active": True}, headers=syndic)
    assert back.json()["deactivated_at"] is None
    assert (await api.client.post("/api/v1/auth/login", json=login)).status_code == 200
    for user_id, status, reason in (
        (api.a.syndic.id, 422, "yourself"),
        (api.admin.id, 403, "superadmin"),
        (api.b.owner.id, 404, "not found"),
    ):
        answer = await api.client.put(f"/api/v1/users/{user_id}/active", json={"active": False}, headers=syndic)
        assert answer.status_code == status and reason in answer.json()["message"], answer.text
    trail = await api.client.get("/api/v1/audit", params={"entity_id": str(api.a.owner.id)}, headers=syndic)
    assert [e["details"] for e in trail.json()] == [{"active": True}, {"active": False}]


async def test_an_owner_who_buys_a_second_flat_sees_its_sensors_at_once(api: Api) -> None:
    syndic, owner = await api.token(api.a.syndic.email), await api.token(api.a.owner.email)
    first, second = (str(u.id) for u in api.a.units)
    url = f"/api/v1/users/{api.a.owner.id}/units"
    assert (await api.client.get(f"/api/v1/iot/sensors/{api.a.other_unit_sensor.id}", headers=owner)).status_code == 404
    both = await api.client.put(url, json={"unit_ids": [first, second]}, headers=syndic)
    assert both.status_code == 200 and sorted(both.json()["unit_ids"]) == sorted([first, second]), both.text
    assert (await api.client.get(f"/api/v1/iot/sensors/{api.a.other_unit_sensor.id}", headers=owner)).status_code == 200
    sold = await api.client.put(url, json={"unit_ids": [second]}, headers=syndic)
    assert sold.json()["unit_ids"] == [second]
    assert (await api.client.get(f"/api/v1/iot/sensors/{api.a.unit_sensor.id}", headers=owner)).status_code == 404
    for target, body, status in (
        (url, {"unit_ids": []}, 422),  # deactivate an owner who left instead
        (url, {"unit_ids": [str(api.b.units[0].id)]}, 404),  # another organization's unit
        (f"/api/v1/users/{api.a.syndic.id}/units", {"unit_ids": [first]}, 422),  # only owners have units
    ):
        assert (await api.client.put(target, json=body, headers=syndic)).status_code == status, (target, body)
    assert (await api.client.put(url, json={"unit_ids": [first]}, headers=owner)).status_code == 403


async def test_a_syndic_renames_a_building_and_a_unit_and_nothing_else_moves(api: Api) -> None:
    syndic, owner = await api.token(api.a.syndic.email), await api.token(api.a.owner.email)
    unit = api.a.units[0]
    renamed = await api.client.put(
        f"/api/v1/units/{unit.id}", json={"name": "App. 0.1 bis", "floor": 0}, headers=syndic
    )
    assert renamed.status_code == 200 and renamed.json()["name"] == "App. 0.1 bis", renamed.text
    assert renamed.json()["building_id"] == str(unit.building_id)
    # The owner still owns it and sees it by its new name; its sensor stays in it.
    assert [u["name"] for u in (await api.client.get("/api/v1/units", headers=owner)).json()] == ["App. 0.1 bis"]
    sensor = await api.client.get(f"/api/v1/iot/sensors/{api.a.unit_sensor.id}", headers=owner)
    assert sensor.json()["unit_id"] == str(unit.id)
    building = await api.client.put(
        f"/api/v1/buildings/{api.a.building.id}",
        json={"name": "Résidence Les Tilleuls", "address": "Rue X 1"},
        headers=syndic,
    )
    assert building.json()["name"] == "Résidence Les Tilleuls" and building.json()["address"] == "Rue X 1"
    assert (await api.client.put(f"/api/v1/units/{unit.id}", json={"name": " "}, headers=syndic)).status_code == 422
    assert (await api.client.put(f"/api/v1/units/{unit.id}", json={"name": "x"}, headers=owner)).status_code == 403
    foreign = f"/api/v1/units/{api.b.units[0].id}"
    assert (await api.client.put(foreign, json={"name": "x"}, headers=syndic)).status_code == 404
    trail = await api.client.get("/api/v1/audit", params={"entity_id": str(unit.id)}, headers=syndic)
    assert trail.json()[0]["action"] == "changed" and "App. 0.1 bis" in json.dumps(trail.json()[0]["details"])
