"""An API client over real storage (both adapters), with two provisioned organizations."""

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from koprogo_iot.api.app import create_app
from koprogo_iot.bootstrap import build_services
from koprogo_iot.domain.tenancy import Role, User
from koprogo_iot.services.accounts import hash_password
from koprogo_iot.services.credentials import DatabaseOnly
from koprogo_iot.storage.ports import Storage
from koprogo_iot.storage.sql.database import Database
from tests.conftest import PASSWORD, Tenant, make_tenant

SECRET = "test-secret-" + "x" * 40  # signs the API's tokens in these tests


@dataclass
class Api:
    client: httpx.AsyncClient
    storage: Storage
    db: Database  # for the few tests that set rows up as they could not be reached through the API
    a: Tenant
    b: Tenant
    admin: User
    app: FastAPI  # for clients of their own (another address)

    async def token(self, email: str) -> dict[str, str]:
        response = await self.client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
async def api(storage: Storage, db: Database) -> AsyncIterator[Api]:
    a, b = await make_tenant(storage, "A"), await make_tenant(storage, "B")
    admin = User(a.organization.id, "admin@example.org", "Admin", Role.SUPERADMIN, hash_password(PASSWORD))
    await storage.tenancy.add_user(admin)
    # The embedded broker's accounts (it reads device credentials from the database): credentials can be issued.
    app = create_app(build_services(storage, secret=SECRET, broker=DatabaseOnly()))
    async with client_of(app) as client:
        yield Api(client, storage, db, a, b, admin, app)


def client_of(app: FastAPI, address: str = "127.0.0.1") -> httpx.AsyncClient:
    """A client of `app` calling from `address`."""
    transport = httpx.ASGITransport(app=app, client=(address, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://koprogo.test")
