"""The API serves the web application at / and its own documentation pages with no CDN."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from koprogo_iot.api import errors, webapp
from koprogo_iot.api.app import openapi_document

ROOT = Path(__file__).resolve().parents[2]


def _app(directory: Path) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None)
    errors.install(app)

    @app.get("/api/v1/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "yes"}

    webapp.install(app, directory)
    return app


@pytest.fixture
async def built(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A stand-in build: an index page, a hashed asset and the vendored documentation files."""
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>KoproGo IoT</title>", encoding="utf-8")
    (tmp_path / "assets" / "index-abc123.js").write_text("console.log(1)", encoding="utf-8")
    for url in (webapp.SWAGGER_JS, webapp.SWAGGER_CSS, webapp.REDOC_JS):
        (tmp_path / url.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / url.lstrip("/")).write_text("/* vendored */", encoding="utf-8")
    transport = httpx.ASGITransport(app=_app(tmp_path))
    async with httpx.AsyncClient(transport=transport, base_url="http://koprogo.test") as client:
        yield client


async def test_client_routes_answer_the_application_page(built: httpx.AsyncClient) -> None:
    for path in ("/", "/sensors/123/onboarding", "/alerts/abc", "/login?next=%2Falerts"):
        response = await built.get(path)
        assert response.status_code == 200, path
        assert "<title>KoproGo IoT</title>" in response.text
        assert response.headers["cache-control"] == "no-cache"
    asset = await built.get("/assets/index-abc123.js")
    assert asset.status_code == 200 and "immutable" in asset.headers["cache-control"]


async def test_the_api_and_missing_files_stay_404(built: httpx.AsyncClient) -> None:
    assert (await built.get("/api/v1/ping")).json() == {"pong": "yes"}
    missing = await built.get("/api/v1/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert (await built.get("/assets/gone-123.js")).status_code == 404
    assert (await built.get("/favicon.png")).status_code == 404
    escape = await built.get("/%2e%2e/%2e%2e/%2e%2e/pyproject.toml")  # never a file outside the build
    assert escape.status_code == 404 and "[build-system]" not in escape.text


async def test_docs_pages_load_their_assets_from_this_server(built: httpx.AsyncClient) -> None:
    for page in ("/docs", "/redoc"):
        html = (await built.get(page)).text
        urls = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert urls and all(url.startswith("/") and not url.startswith("//") for url in urls), urls
        for url in urls:
            if url != "/openapi.json" and url != webapp.FAVICON:
                assert (await built.get(url)).status_code == 200, url


async def test_without_a_build_the_pages_say_how_to_build(tmp_path: Path) -> None:
    transport = httpx.ASGITransport(app=_app(tmp_path / "not-built"))
    async with httpx.AsyncClient(transport=transport, base_url="http://koprogo.test") as client:
        for path in ("/", "/sensors", "/docs", "/redoc"):
            response = await client.get(path)
            assert response.status_code == 503, path
            assert "make web" in response.text


async def test_the_real_build_is_served_with_its_documentation_assets() -> None:
    """What `make web` built (make test builds it first): every file the pages reference answers 200."""
    assert (webapp.STATIC_DIR / "index.html").is_file(), "the web application is not built: run `make web`"
    transport = httpx.ASGITransport(app=_app(webapp.STATIC_DIR))
    async with httpx.AsyncClient(transport=transport, base_url="http://koprogo.test") as client:
        for page in ("/", "/docs", "/redoc"):
            html = (await client.get(page)).text
            urls = [u for u in re.findall(r'(?:src|href)="([^"]+)"', html) if u != "/openapi.json"]
            assert urls and all(u.startswith("/") and not u.startswith("//") for u in urls), (page, urls)
            for url in urls:
                assert (await client.get(url)).status_code == 200, (page, url)


def test_the_built_client_was_generated_from_the_current_api() -> None:
    """web/openapi.json (the typed client's source, written by `make web`) is the API's schema as it is now."""
    written = json.loads((ROOT / "web" / "openapi.json").read_text(encoding="utf-8"))
    assert written == openapi_document(), "the web client is stale: run `make web`"
