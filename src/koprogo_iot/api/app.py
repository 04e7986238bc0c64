"""The FastAPI application, built around already-wired services."""

from __future__ import annotations

from typing import Any

import prometheus_client
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse

from koprogo_iot import __version__
from koprogo_iot.api import errors, webapp
from koprogo_iot.api.middleware import DEFAULT_MAX_BODY_BYTES, BodyLimit, SecurityHeaders
from koprogo_iot.api.routers import (
    alert_rules,
    alerts,
    analytics,
    audit,
    auth,
    bacnet,
    credentials,
    devices,
    ingest,
    insights,
    integrations,
    ista,
    notifications,
    sensors,
    stream,
    tenancy,
)
from koprogo_iot.health import Readiness, jobs_check, liveness, readiness_response
from koprogo_iot.services.container import Services

API_PREFIX = "/api/v1"


def create_app(
    services: Services, readiness: Readiness | None = None, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
) -> FastAPI:
    """`readiness`: what `/readyz` checks (`bootstrap.api_readiness`); by default the process's background jobs.
    `max_body_bytes`: the largest request body (413 beyond; ISTA imports have their own limit)."""
    app = _routes(readiness or Readiness({"jobs": jobs_check(())}), max_body_bytes)
    app.state.services = services
    return app


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI schema, without any service: what the web application's typed client is generated from."""
    return _routes(Readiness(), DEFAULT_MAX_BODY_BYTES).openapi()


def _routes(readiness: Readiness, max_body_bytes: int) -> FastAPI:
    # /docs and /redoc are webapp's, with their assets served from this process instead of a CDN.
    app = FastAPI(
        title="KoproGo IoT",
        version=__version__,
        description="Real-time consumption monitoring for condominium buildings.",
        docs_url=None,
        redoc_url=None,
    )
    errors.install(app)
    for module in (
        auth,
        tenancy,
        sensors,
        devices,
        credentials,
        integrations,
        alerts,
        alert_rules,
        notifications,
        ingest,
        stream,
        analytics,
        ista,
        insights,
        bacnet,
        audit,
    ):
        app.include_router(module.router, prefix=API_PREFIX, responses=errors.RESPONSES)

    @app.get("/metrics", tags=["operations"], include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus metrics of this process (in embedded mode, ingestion's too)."""
        return Response(prometheus_client.generate_latest(), media_type=prometheus_client.CONTENT_TYPE_LATEST)

    @app.get("/health", tags=["operations"])
    async def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers. Nothing else is checked: a database outage must not restart it."""
        return liveness()

    @app.get("/readyz", tags=["operations"], responses={503: {"description": "a dependency is not ready"}})
    async def readyz() -> JSONResponse:
        """Readiness: database, migrations, broker, Redis and background jobs; 503 says which is not ready."""
        return await readiness_response(readiness)

    webapp.install(app)  # last: its catch-all route answers the application's own pages
    # Outermost last: the security headers go on every answer, the body limit's 413 included.
    app.add_middleware(BodyLimit, default=max_body_bytes, larger={API_PREFIX + "/ista/imports": ista.MAX_FILE_BYTES})
    app.add_middleware(SecurityHeaders)
    return app
