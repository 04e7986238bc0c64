"""The API while its database refuses connections (a maintenance, a failover): a JSON 503, then service again."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from koprogo_iot.bench.machine import allow_connections, refuse_connections
from koprogo_iot.bootstrap import open_storage
from tests.conftest import ENCRYPTION_KEY, PASSWORD, POSTGRES_ADMIN_URL, eventually, free_port, make_tenant
from tests.support.processes import answers, production_env

pytestmark = pytest.mark.postgres


async def test_the_api_answers_503_in_its_error_format_while_the_database_refuses(postgres_url: str) -> None:
    storage = await open_storage(postgres_url, ENCRYPTION_KEY)
    tenant = await make_tenant(storage, "Outage")
    await storage.close()
    port = free_port()
    env = production_env(postgres_url, KOPROGO_HTTP_PORT=str(port), KOPROGO_JOBS_IN_API="false")
    api = subprocess.Popen([sys.executable, "-m", "koprogo_iot.cli", "api"], env=env, stderr=subprocess.PIPE)
    database = postgres_url.rsplit("/", 1)[1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            await eventually(lambda: answers(client), timeout=60)
            login = {"email": tenant.syndic.email, "password": PASSWORD}
            token = (await client.post("/api/v1/auth/login", json=login)).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            assert (await client.get("/api/v1/iot/sensors", headers=headers)).status_code == 200
            await refuse_connections(POSTGRES_ADMIN_URL, database)
            try:
                refused = await client.get("/api/v1/iot/sensors", headers=headers)
                assert refused.status_code == 503, refused.text
                assert refused.json()["error"] == "storage_unavailable"
                assert (await client.get("/readyz")).status_code == 503
            finally:
                await allow_connections(POSTGRES_ADMIN_URL, database)

            async def served() -> bool:
                return (await client.get("/api/v1/iot/sensors", headers=headers)).status_code == 200

            await eventually(served, timeout=30)
    finally:
        api.kill()
        _, err = api.communicate()
    assert b"Traceback" not in err, err.decode()[-2000:]
