"""The FastAPI application, built around already-wired services."""

from __future__ import annotations

import prometheus_client
from fastapi import FastAPI, Response

from koprogo_iot import __version__
from koprogo_iot.api import errors
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
from koprogo_iot.services.container import Services

API_PREFIX = "/api/v1"


def create_app(services: Services, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> FastAPI:
    app = FastAPI(
        title="KoproGo IoT",
        version=__version__,
        description="Real-time consumption monitoring for condominium buildings.",
    )
    app.state.services = services
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

    # Outermost last: the security headers go on every answer, the body limit's 413 included.
    app.add_middleware(BodyLimit, default=max_body_bytes, larger={API_PREFIX + "/ista/imports": ista.MAX_FILE_BYTES})
    app.add_middleware(SecurityHeaders)
    return app
