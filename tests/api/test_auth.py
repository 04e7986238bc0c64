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
