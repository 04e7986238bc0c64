"""Login throttling, token expiry and refresh, body size limits and the browser's security headers (issue 12)."""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import AsyncIterator

import jwt

from koprogo_iot.services.accounts import ACCOUNT_FAILURES, ADDRESS_FAILURES
from tests.api.conftest import SECRET, Api, client_of
from tests.conftest import PASSWORD

LOGIN = "/api/v1/auth/login"


async def test_an_account_is_throttled_after_repeated_failures_even_with_the_right_password(api: Api) -> None:
    email = api.a.syndic.email
    for _ in range(ACCOUNT_FAILURES):
        wrong = await api.client.post(LOGIN, json={"email": email, "password": "guess"})
        assert wrong.status_code == 401
    refused = await api.client.post(LOGIN, json={"email": email.upper(), "password": PASSWORD})
    assert refused.status_code == 429
    assert refused.json()["error"] == "too_many_attempts"
    assert 0 < int(refused.headers["retry-after"]) <= 15 * 60
    # The address itself is not over its own limit: another account logs in from it.
    assert (await api.client.post(LOGIN, json={"email": api.a.owner.email, "password": PASSWORD})).status_code == 200


async def test_an_address_is_throttled_after_failures_on_many_accounts(api: Api) -> None:
    async with client_of(api.app, "203.0.113.7") as attacker, client_of(api.app, "198.51.100.1") as office:
        for n in range(ADDRESS_FAILURES):
            guess = await attacker.post(LOGIN, json={"email": f"user{n}@example.org", "password": "guess"})
            assert guess.status_code == 401
        refused = await attacker.post(LOGIN, json={"email": api.a.syndic.email, "password": PASSWORD})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        assert (await office.post(LOGIN, json={"email": api.a.syndic.email, "password": PASSWORD})).status_code == 200


def _token(user_id: object, org_id: object, *, issued: float, expires: float, logged_in: float | None = None) -> str:
    claims = {"sub": str(user_id), "org": str(org_id), "role": "syndic", "iat": int(issued), "exp": int(expires)}
    if logged_in is not None:
        claims["auth_time"] = int(logged_in)
    return jwt.encode(claims, SECRET, algorithm="HS256")


async def test_an_expired_token_says_so_and_another_keys_token_is_invalid(api: Api) -> None:
    now, syndic = time.time(), api.a.syndic
    expired = _token(syndic.id, syndic.organization_id, issued=now - 7200, expires=now - 60)
    response = await api.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401 and response.json()["error"] == "token_expired"
    assert response.headers["www-authenticate"] == "Bearer"
    forged = jwt.encode({"sub": str(syndic.id), "org": str(syndic.organization_id), "exp": int(now + 600)}, "k" * 40)
    response = await api.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401 and response.json()["error"] == "unauthenticated"


async def test_a_valid_token_is_refreshed_within_the_session(api: Api) -> None:
    headers = await api.token(api.a.syndic.email)
    old = jwt.decode(headers["Authorization"].split()[1], SECRET, algorithms=["HS256"])
    refreshed = await api.client.post("/api/v1/auth/refresh", headers=headers)
    assert refreshed.status_code == 200, refreshed.text
    body = refreshed.json()
    claims = jwt.decode(body["access_token"], SECRET, algorithms=["HS256"])
    assert claims["auth_time"] == old["auth_time"] and claims["exp"] >= old["exp"]
    me = await api.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["id"] == str(api.a.syndic.id)


async def test_refresh_is_refused_for_an_expired_token_or_an_old_session(api: Api) -> None:
    now, syndic = time.time(), api.a.syndic
    cases = {
        "expired": _token(syndic.id, syndic.organization_id, issued=now - 7200, expires=now - 1),
        "old session": _token(
            syndic.id, syndic.organization_id, issued=now, expires=now + 600, logged_in=now - 8 * 86400
        ),
    }
    for token in cases.values():
        response = await api.client.post("/api/v1/auth/refresh", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401 and response.json()["error"] == "token_expired"
    assert (await api.client.post("/api/v1/auth/refresh")).status_code == 401


async def test_request_bodies_are_capped_with_a_413_in_the_error_format(api: Api) -> None:
    headers = await api.token(api.a.syndic.email) | {"content-type": "application/json"}
    big = b'{"name": "' + b"x" * (1024 * 1024) + b'"}'
    declared = await api.client.post("/api/v1/buildings", content=big, headers=headers)
    assert declared.status_code == 413 and declared.json()["error"] == "too_large"
    assert "content-security-policy" in declared.headers

    async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for _ in range(32):
            yield b" " * 65536
        yield b'{"name": "x"}'

    chunked = await api.client.post("/api/v1/buildings", content=streamed(), headers=headers)
    assert chunked.status_code == 413 and chunked.json()["error"] == "too_large"
    assert (await api.client.post("/api/v1/buildings", json={"name": "Small"}, headers=headers)).status_code == 201


async def test_the_ista_import_keeps_its_own_ten_megabytes(api: Api) -> None:
    headers = await api.token(api.a.syndic.email) | {"content-type": "text/csv"}
    header_only = b"meter_number;meter_type\n"
    two_megabytes = header_only + b"\n" * (2 * 1024 * 1024)
    accepted = await api.client.post("/api/v1/ista/imports", content=two_megabytes, headers=headers)
    assert accepted.status_code != 413
    eleven = await api.client.post("/api/v1/ista/imports", content=b" " * (11 * 1024 * 1024), headers=headers)
    assert eleven.status_code == 413 and eleven.json()["error"] == "too_large"


async def test_every_answer_carries_the_security_headers(api: Api) -> None:
    for response in (await api.client.get("/health"), await api.client.get("/api/v1/iot/sensors")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        policy = response.headers["content-security-policy"]
        assert "script-src 'self';" in policy and "connect-src 'self' ws: wss:" in policy
        assert "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy


async def test_the_documentation_pages_allow_exactly_their_inline_script(api: Api) -> None:
    for path in ("/docs", "/redoc"):
        page = await api.client.get(path)
        assert page.status_code == 200
        scripts = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", page.text, re.S)
        assert scripts or path == "/redoc"  # Swagger UI starts from an inline script, ReDoc from its element
        policy = page.headers["content-security-policy"]
        script_src = next(d for d in policy.split(";") if d.strip().startswith("script-src"))
        for script in scripts:
            digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
            assert f"'sha256-{digest}'" in script_src
        assert "'unsafe-inline'" not in script_src and "frame-ancestors 'none'" in policy
