"""The FastAPI application, built around already-wired services."""

from __future__ import annotations

from typing import Any

import prometheus_client
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse

from koprogo_iot import __version__
from koprogo_iot.api import errors, webapp
from koprogo_iot.api.routers import (
    alert_rules,
    alerts,
    analytics,
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


def create_app(services: Services, readiness: Readiness | None = None) -> FastAPI:
    """`readiness`: what `/readyz` checks (`bootstrap.api_readiness`); by default the process's background jobs."""
    app = _routes(readiness or Readiness({"jobs": jobs_check(())}))
    app.state.services = services
    return app


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI schema, without any service: what the web application's typed client is generated from."""
    return _routes(Readiness()).openapi()


def _routes(readiness: Readiness) -> FastAPI:
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
    ):
        app.include_router(module.router, prefix=API_PREFIX)

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
    return app
