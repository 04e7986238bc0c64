"""The FastAPI application, built around already-wired services."""

from __future__ import annotations

from typing import Any

import prometheus_client
from fastapi import FastAPI, Response

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
from koprogo_iot.services.container import Services

API_PREFIX = "/api/v1"


def create_app(services: Services) -> FastAPI:
    app = _routes()
    app.state.services = services
    return app


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI schema, without any service: what the web application's typed client is generated from."""
    return _routes().openapi()


def _routes() -> FastAPI:
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

    webapp.install(app)  # last: its catch-all route answers the application's own pages
    return app
