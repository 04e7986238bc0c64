"""An API client over real storage (both adapters), with two provisioned organizations."""

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from koprogo_iot.api.app import create_app
from koprogo_iot.domain.tenancy import Role, User
from koprogo_iot.services.accounts import hash_password
from koprogo_iot.services.container import Services
from koprogo_iot.storage.sql_store import SqlStore
from tests.conftest import PASSWORD, Tenant, make_tenant


@dataclass
class Api:
    client: httpx.AsyncClient
    store: SqlStore
    a: Tenant
    b: Tenant
    admin: User

    async def token(self, email: str) -> dict[str, str]:
        response = await self.client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
async def api(store: SqlStore) -> AsyncIterator[Api]:
    a, b = await make_tenant(store, "A"), await make_tenant(store, "B")
    admin = User(a.organization.id, "admin@example.org", "Admin", Role.SUPERADMIN, hash_password(PASSWORD))
    await store.add_user(admin)
    app = create_app(Services.over(store, secret="test-secret-" + "x" * 40))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://koprogo.test") as client:
        yield Api(client, store, a, b, admin)
