"""The audit log through the API: who changed which sensor, rule, threshold, calibration, route, user, and who
acknowledged which alert with what note; read by syndics, newest first, within their organization."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Api
from tests.api.test_alerts import ingest
from tests.conftest import PASSWORD

AUDIT = "/api/v1/audit"


async def _events(api: Api, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    response = await api.client.get(AUDIT, params=params, headers=headers)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()
    return events


async def test_changes_are_logged_with_who_what_and_how(api: Api) -> None:
    syndic = await api.token(api.a.syndic.email)
    sensor = api.a.common_sensor
    url = f"/api/v1/iot/sensors/{sensor.id}"
    steps = [
        ("PUT", url, {"alert_threshold_max": 60.0}),
        ("POST", f"{url}/calibrate", {"calibration_factor": 1.5}),
        ("PUT", f"{url}/alert-rules", {"leak": {"enabled": False}}),
        ("PUT", "/api/v1/iot/alert-rules/gas", {"threshold": {"maximum": 9}}),
        ("POST", "/api/v1/iot/notifications/routes", {"email": "plumber@example.org"}),
        ("PUT", f"/api/v1/users/{api.a.owner.id}/contacts", {"phone": "+32 470 12 34 56"}),
        (
            "PUT",
            "/api/v1/iot/notifications/settings",
            {"email_url": "mailtos://u:secret-pass@smtp.example.com?to={to}"},
        ),
    ]
    for method, path, body in steps:
        response = await api.client.request(method, path, json=body, headers=syndic)
        assert response.status_code in (200, 201), response.text
    route_id = (await api.client.get("/api/v1/iot/notifications/routes", headers=syndic)).json()[0]["id"]
    deleted = await api.client.delete(f"/api/v1/iot/notifications/routes/{route_id}", headers=syndic)
    assert deleted.status_code == 204

    events = await _events(api, syndic)
    assert all(e["actor_id"] == str(api.a.syndic.id) for e in events)
    seen = [(e["entity_type"], e["action"]) for e in events]
    assert seen == [  # newest first
        ("notification_route", "deleted"),
        ("notification_settings", "changed"),
        ("user", "changed"),
        ("notification_route", "created"),
        ("type_rules", "changed"),
        ("sensor_rules", "changed"),
        ("sensor", "changed"),
        ("sensor", "changed"),
    ]
    by_kind = {(e["entity_type"], e["action"], e["entity_id"]): e["details"] for e in events}
    assert by_kind[("sensor", "changed", str(sensor.id))] in (
        {"alert_threshold_max": [50.0, 60.0]},
        {"calibration_factor": [1.0, 1.5]},
    )
    sensor_events = await _events(api, syndic, entity_type="sensor", entity_id=str(sensor.id))
    assert [e["details"] for e in sensor_events] == [
        {"calibration_factor": [1.0, 1.5]},
        {"alert_threshold_max": [50.0, 60.0]},
    ]
    assert by_kind[("type_rules", "changed", "gas")] == {"rules": {"threshold": {"maximum": 9}}}
    assert by_kind[("user", "changed", str(api.a.owner.id))] == {"phone": [None, "+32470123456"]}
    assert by_kind[("notification_route", "created", route_id)]["email"] == "plumber@example.org"
    settings_change = by_kind[("notification_settings", "changed", str(api.a.organization.id))]
    assert settings_change == {"email_url": "(secret)", "reminder_interval": [None, 14400.0]}
    text = str(events)
    assert "secret-pass" not in text


async def test_an_acknowledgment_is_logged_once_with_its_note(api: Api) -> None:
    await ingest(api, 75.0, 1)  # above the common sensor's 50 L/h
    alert = (await api.storage.alerts.select(api.a.organization.id))[0]
    syndic = await api.token(api.a.syndic.email)
    for note in ("plumber called", "second look"):
        response = await api.client.post(
            f"/api/v1/iot/alerts/{alert.id}/acknowledge", json={"note": note}, headers=syndic
        )
        assert response.status_code == 200
    events = await _events(api, syndic, action="acknowledged")
    assert [(e["entity_id"], e["details"]["note"]) for e in events] == [(str(alert.id), "plumber called")]


async def test_owners_may_not_read_it_and_organizations_see_only_their_own(api: Api) -> None:
    a_syndic, b_syndic = await api.token(api.a.syndic.email), await api.token(api.b.syndic.email)
    created = await api.client.post("/api/v1/buildings", json={"name": "Annexe"}, headers=a_syndic)
    assert created.status_code == 201
    owner = await api.client.get(AUDIT, headers=await api.token(api.a.owner.email))
    assert owner.status_code == 403
    assert [e["entity_id"] for e in await _events(api, a_syndic)] == [created.json()["id"]]
    assert await _events(api, b_syndic) == []
    assert await _events(api, a_syndic, entity_type="sensor") == []
    future = await _events(api, a_syndic, start="2099-01-01T00:00:00Z")
    assert future == []


async def test_a_superadmin_creating_a_user_elsewhere_is_logged_in_that_organization(api: Api) -> None:
    admin = await api.token(api.admin.email)
    body = {
        "email": "new.syndic@example.org",
        "password": PASSWORD,
        "full_name": "New Syndic",
        "role": "syndic",
        "organization_id": str(api.b.organization.id),
    }
    created = await api.client.post("/api/v1/users", json=body, headers=admin)
    assert created.status_code == 201, created.text
    b_events = await _events(api, await api.token(api.b.syndic.email))
    assert [(e["entity_type"], e["actor_id"], e["details"]["email"]) for e in b_events] == [
        ("user", str(api.admin.id), "new.syndic@example.org")
    ]
    assert await _events(api, admin) == []


async def test_device_credentials_and_bacnet_points_are_logged_without_passwords(api: Api) -> None:
    syndic = await api.token(api.a.syndic.email)
    issued = await api.client.post("/api/v1/iot/device-credentials", json={"name": "Gateway"}, headers=syndic)
    assert issued.status_code == 201, issued.text
    credential = issued.json()
    rotated = await api.client.post(f"/api/v1/iot/device-credentials/{credential['id']}/rotate", headers=syndic)
    point = {
        "building_id": str(api.a.building.id),
        "sensor_id": str(api.a.common_sensor.id),
        "address": "192.0.2.10",
        "object_type": "analog-input",
        "object_instance": 3,
    }
    created = await api.client.post("/api/v1/iot/bacnet/points", json=point, headers=syndic)
    assert created.status_code == 201, created.text
    events = await _events(api, syndic)
    assert [(e["entity_type"], e["action"]) for e in events] == [
        ("bacnet_point", "created"),
        ("device_credential", "changed"),
        ("device_credential", "created"),
    ]
    assert events[2]["details"]["username"] == credential["username"]
    text = str(events)
    assert credential["password"] not in text and rotated.json()["password"] not in text
