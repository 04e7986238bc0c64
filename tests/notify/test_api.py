"""The notification API: settings, routes, the outbox and users' contacts, scoped by organization."""

from __future__ import annotations

from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.tenancy import Building
from koprogo_iot.notify.notifier import Notifier
from tests.api.conftest import Api
from tests.notify.conftest import insert_alert

SETTINGS = "/api/v1/iot/notifications/settings"
ROUTES = "/api/v1/iot/notifications/routes"
OUTBOX = "/api/v1/iot/notifications"


async def test_settings_default_then_saved_after_apprise_checked_them(api: Api) -> None:
    syndic = await api.token(api.a.syndic.email)
    got = (await api.client.get(SETTINGS, headers=syndic)).json()
    assert got == {
        "email_url": None,
        "sms_url": None,
        "push_url": None,
        "reminder_interval_s": None,
        "updated_at": None,
    }
    body = {
        "email_url": "mailtos://alerts:secret@smtp.example.org?from=alerts@example.org&to={to}",
        "sms_url": "smseagle://token@sms.example.org/{to}",
        "push_url": "ntfys://ntfy.example.org/{to}",
        "reminder_interval_s": 3600,
    }
    response = await api.client.put(SETTINGS, json=body, headers=syndic)
    assert response.status_code == 200, response.text
    assert response.json()["reminder_interval_s"] == 3600 and response.json()["updated_at"] is not None
    assert (await api.client.get(SETTINGS, headers=syndic)).json()["push_url"] == body["push_url"]
    # Another organization's settings are its own.
    other = await api.token(api.b.syndic.email)
    assert (await api.client.get(SETTINGS, headers=other)).json()["email_url"] is None

    bad = await api.client.put(SETTINGS, json={"email_url": "not a url {to}"}, headers=syndic)
    assert bad.status_code == 422 and "email" in bad.text
    too_often = await api.client.put(SETTINGS, json={"reminder_interval_s": 5}, headers=syndic)
    assert too_often.status_code == 422


async def test_owners_may_neither_read_nor_change_the_setup(api: Api) -> None:
    owner = await api.token(api.a.owner.email)
    assert (await api.client.get(SETTINGS, headers=owner)).status_code == 403
    assert (await api.client.put(SETTINGS, json={}, headers=owner)).status_code == 403
    assert (await api.client.get(ROUTES, headers=owner)).status_code == 403
    assert (await api.client.post(ROUTES, json={"role": "owner"}, headers=owner)).status_code == 403
    assert (await api.client.get(OUTBOX, headers=owner)).status_code == 403


async def test_routes_are_created_listed_and_deleted_per_organization(api: Api) -> None:
    syndic, other = await api.token(api.a.syndic.email), await api.token(api.b.syndic.email)
    by_role = await api.client.post(
        ROUTES, json={"role": "owner", "building_id": str(api.a.building.id)}, headers=syndic
    )
    assert by_role.status_code == 201, by_role.text
    assert by_role.json()["channels"] == {"info": [], "warning": ["email"], "critical": ["email", "push", "sms"]}
    contact = {"name": "Plumber", "phone": "+32 470 11 22 33", "channels": {"critical": ["sms"]}}
    explicit = await api.client.post(ROUTES, json=contact, headers=syndic)
    assert explicit.status_code == 201, explicit.text
    assert explicit.json()["phone"] == "+32470112233"
    assert explicit.json()["channels"] == {"info": [], "warning": [], "critical": ["sms"]}
    listed = (await api.client.get(ROUTES, headers=syndic)).json()
    assert [r["id"] for r in listed] == [by_role.json()["id"], explicit.json()["id"]]
    assert (await api.client.get(ROUTES, headers=other)).json() == []

    # Another organization's building or route: not found.
    elsewhere = await api.client.post(
        ROUTES, json={"role": "syndic", "building_id": str(api.b.building.id)}, headers=syndic
    )
    assert elsewhere.status_code == 404
    assert (await api.client.delete(f"{ROUTES}/{explicit.json()['id']}", headers=other)).status_code == 404
    assert (await api.client.delete(f"{ROUTES}/{explicit.json()['id']}", headers=syndic)).status_code == 204
    assert len((await api.client.get(ROUTES, headers=syndic)).json()) == 1


async def test_a_route_names_a_role_or_a_contact(api: Api) -> None:
    syndic = await api.token(api.a.syndic.email)
    for body in (
        {},  # neither
        {"role": "owner", "email": "x@example.org"},  # both
        {"role": "superadmin"},
        {"email": "not-an-email"},
        {"push_topic": "spaces are not allowed"},
        {"email": "x@example.org", "channels": {"critical": ["pigeon"]}},
    ):
        response = await api.client.post(ROUTES, json=body, headers=syndic)
        assert response.status_code == 422, (body, response.text)


async def test_the_outbox_lists_an_alerts_messages(api: Api) -> None:
    syndic = await api.token(api.a.syndic.email)
    alert_id = await insert_alert(api.storage, api.a.common_sensor, utcnow())
    other_alert = await insert_alert(api.storage, api.b.common_sensor, utcnow())
    await Notifier(api.storage.notifications).run_once()  # no provider: recorded as failed
    [message] = (await api.client.get(OUTBOX, params={"alert_id": str(alert_id)}, headers=syndic)).json()
    assert message["recipient"] == api.a.syndic.email and message["channel"] == "email"
    assert message["status"] == "failed" and message["last_error"] == "no email provider configured"
    assert (await api.client.get(OUTBOX, params={"status": "sent"}, headers=syndic)).json() == []
    assert len((await api.client.get(OUTBOX, params={"status": "failed"}, headers=syndic)).json()) == 1
    response = await api.client.get(OUTBOX, params={"alert_id": str(other_alert)}, headers=syndic)
    assert response.status_code == 404


async def test_users_have_contacts_they_set_themselves_or_a_manager_sets(api: Api) -> None:
    syndic, owner = await api.token(api.a.syndic.email), await api.token(api.a.owner.email)
    url = f"/api/v1/users/{api.a.owner.id}/contacts"
    mine = await api.client.put(url, json={"phone": "0470 12.34.56", "push_topic": "owner-1"}, headers=owner)
    assert mine.status_code == 200, mine.text
    assert (mine.json()["phone"], mine.json()["push_topic"]) == ("0470123456", "owner-1")
    by_manager = await api.client.put(url, json={"phone": None, "push_topic": "owner-2"}, headers=syndic)
    assert (by_manager.json()["phone"], by_manager.json()["push_topic"]) == (None, "owner-2")
    syndics = f"/api/v1/users/{api.a.syndic.id}/contacts"
    assert (await api.client.put(syndics, json={"phone": "+3247"}, headers=owner)).status_code == 403
    other = f"/api/v1/users/{api.b.syndic.id}/contacts"
    assert (await api.client.put(other, json={"phone": "+32470000000"}, headers=syndic)).status_code == 404
    assert (await api.client.put(url, json={"phone": "call me"}, headers=syndic)).status_code == 422


async def test_a_user_is_created_with_contacts(api: Api) -> None:
    syndic = await api.token(api.a.syndic.email)
    body = {
        "email": "second-syndic@example.org",
        "password": "long enough password",
        "full_name": "Second",
        "role": "syndic",
        "phone": "+32 2 555 12 34",
        "push_topic": "second",
    }
    created = await api.client.post("/api/v1/users", json=body, headers=syndic)
    assert created.status_code == 201, created.text
    assert (created.json()["phone"], created.json()["push_topic"]) == ("+3225551234", "second")
    listed = {u["email"]: u for u in (await api.client.get("/api/v1/users", headers=syndic)).json()}
    assert listed["second-syndic@example.org"]["phone"] == "+3225551234"


async def test_a_route_for_a_new_building_of_the_organization(api: Api) -> None:
    building = Building(organization_id=api.a.organization.id, name="Annex")
    await api.storage.tenancy.add_building(building)
    syndic = await api.token(api.a.syndic.email)
    body = {"building_id": str(building.id), "email": "annex@example.org"}
    assert (await api.client.post(ROUTES, json=body, headers=syndic)).status_code == 201
