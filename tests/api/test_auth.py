"""Logging in and being refused."""

from tests.api.conftest import Api
from tests.conftest import PASSWORD


async def test_login_returns_a_bearer_token_and_the_user(api: Api) -> None:
    response = await api.client.post("/api/v1/auth/login", json={"email": api.a.syndic.email, "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    assert body["user"]["role"] == "syndic" and body["user"]["organization_id"] == str(api.a.organization.id)
    me = await api.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["email"] == api.a.syndic.email


async def test_wrong_password_and_unknown_email_look_the_same(api: Api) -> None:
    for email, password in ((api.a.syndic.email, "wrong password"), ("nobody@example.org", PASSWORD)):
        response = await api.client.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert response.status_code == 401
        assert response.json() == {"error": "unauthenticated", "message": "wrong email or password"}


async def test_requests_without_a_valid_token_are_refused(api: Api) -> None:
    missing = await api.client.get("/api/v1/iot/sensors")
    assert missing.status_code == 401 and "login" in missing.json()["message"]
    forged = await api.client.get("/api/v1/iot/sensors", headers={"Authorization": "Bearer not.a.token"})
    assert forged.status_code == 401 and forged.json()["message"] == "invalid token"


async def test_openapi_and_health_are_served(api: Api) -> None:
    assert (await api.client.get("/health")).json()["status"] == "ok"
    spec = (await api.client.get("/openapi.json")).json()
    assert "/api/v1/iot/sensors/{sensor_id}/calibrate" in spec["paths"]
    assert (await api.client.get("/docs")).status_code == 200


async def test_changing_ones_password_ends_the_other_sessions_and_keeps_this_one(api: Api) -> None:
    email, url = api.a.owner.email, "/api/v1/auth/password"
    here, elsewhere = await api.token(email), await api.token(email)
    change = {"current_password": PASSWORD, "new_password": "a-new-password"}
    for wrong, reason in (
        ({**change, "current_password": "not it"}, "wrong password"),
        ({**change, "new_password": "short"}, "at least 8"),
        ({**change, "new_password": PASSWORD}, "the same"),
    ):
        refused = await api.client.post(url, json=wrong, headers=here)
        assert refused.status_code == 422 and reason in refused.json()["message"], refused.text
    assert (await api.client.get("/api/v1/auth/me", headers=here)).status_code == 200  # still logged in

    changed = await api.client.post(url, json=change, headers=here)
    assert changed.status_code == 200, changed.text
    this_one = {"Authorization": f"Bearer {changed.json()['access_token']}"}
    assert (await api.client.get("/api/v1/auth/me", headers=this_one)).json()["email"] == email
    for old in (here, elsewhere):
        ended = await api.client.get("/api/v1/auth/me", headers=old)
        assert ended.status_code == 401 and ended.json()["error"] == "token_expired"
        assert (await api.client.post("/api/v1/auth/refresh", headers=old)).status_code == 401
    old_password = await api.client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert old_password.status_code == 401
    new_password = await api.client.post("/api/v1/auth/login", json={"email": email, "password": "a-new-password"})
    assert new_password.status_code == 200
    syndic = await api.token(api.a.syndic.email)
    trail = await api.client.get("/api/v1/audit", params={"entity_id": str(api.a.owner.id)}, headers=syndic)
    assert [(e["action"], e["details"]) for e in trail.json()] == [("changed", {"password": "changed"})]
    assert "a-new-password" not in trail.text


async def test_wrong_current_passwords_are_throttled_like_logins(api: Api) -> None:
    owner = await api.token(api.a.owner.email)
    url, wrong = "/api/v1/auth/password", {"current_password": "not it", "new_password": "a-new-password"}
    answers = [(await api.client.post(url, json=wrong, headers=owner)).status_code for _ in range(6)]
    assert answers == [422] * 5 + [429]
    right = {**wrong, "current_password": PASSWORD}
    assert (await api.client.post(url, json=right, headers=owner)).status_code == 429
