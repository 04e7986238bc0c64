"""The fuzz run of issue 12, kept: schemathesis generates requests for every operation of the OpenAPI schema and
sends them, with a syndic's token, to the app served by uvicorn over SQLite and over PostgreSQL.

No answer may be a 5xx, and every answer must conform to the schema (status code documented, body matching).
Bounded and seeded (Hypothesis `derandomize`): the same cases every run, EXAMPLES at most per operation.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from koprogo_iot.api.app import create_app
from koprogo_iot.bootstrap import build_services, open_storage
from koprogo_iot.services.credentials import DatabaseOnly
from tests.api.conftest import SECRET
from tests.api.test_inputs import build_services_for_schema
from tests.conftest import ENCRYPTION_KEY, PASSWORD, _clone_database, _database_url, _drop_database, make_tenant

EXAMPLES = int(os.environ.get("KOPROGO_FUZZ_EXAMPLES", "6"))  # a deeper run: KOPROGO_FUZZ_EXAMPLES=200
schema = schemathesis.openapi.from_dict(create_app(build_services_for_schema()).openapi())


@dataclass(frozen=True)
class Served:
    url: str
    headers: dict[str, str]


def _serve(database_url: str) -> Iterator[Served]:
    """The app on a free port in a thread of its own (its event loop owns the database connections)."""
    started, failed = threading.Event(), []
    server: list[uvicorn.Server] = []
    syndic_email: list[str] = []

    async def main() -> None:
        storage = await open_storage(database_url, ENCRYPTION_KEY)
        try:
            tenant = await make_tenant(storage, "Fuzz")
            syndic_email.append(tenant.syndic.email)
            config = uvicorn.Config(
                create_app(build_services(storage, secret=SECRET, broker=DatabaseOnly())),
                port=0,
                log_level="critical",
                lifespan="off",
            )
            server.append(uvicorn.Server(config))
            serving = asyncio.create_task(server[0].serve())
            while not server[0].started and not serving.done():
                await asyncio.sleep(0.01)
            started.set()
            await serving
        except BaseException as exc:
            failed.append(exc)
            started.set()
            raise
        finally:
            await storage.close()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(60) and not failed, failed
    port = server[0].servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    login = requests.post(f"{url}/api/v1/auth/login", json={"email": syndic_email[0], "password": PASSWORD}, timeout=30)
    assert login.status_code == 200, login.text
    try:
        yield Served(url, {"Authorization": f"Bearer {login.json()['access_token']}"})
    finally:
        server[0].should_exit = True
        thread.join(30)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("fuzz") / "koprogo.db"
        yield from _serve(f"sqlite:///{path}")
        return
    name = _clone_database(request.getfixturevalue("postgres_template"))
    try:
        yield from _serve(_database_url(name))
    finally:
        asyncio.run(_drop_database(name))


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_input_makes_a_server_error_or_an_undocumented_answer(case: schemathesis.Case, served: Served) -> None:
    response = case.call(base_url=served.url, headers=served.headers, timeout=30)
    case.validate_response(response, checks=[not_a_server_error, status_code_conformance, response_schema_conformance])
