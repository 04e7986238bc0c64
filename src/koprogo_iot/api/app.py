"""The FastAPI application, built around already-wired services."""

from __future__ import annotations

from fastapi import FastAPI

from koprogo_iot import __version__
from koprogo_iot.api import errors
from koprogo_iot.api.routers import alerts, auth, sensors, tenancy
from koprogo_iot.services.container import Services

API_PREFIX = "/api/v1"


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="KoproGo IoT",
        version=__version__,
        description="Real-time consumption monitoring for condominium buildings.",
    )
    app.state.services = services
    errors.install(app)
    for module in (auth, tenancy, sensors, alerts):
        app.include_router(module.router, prefix=API_PREFIX)

    @app.get("/health", tags=["operations"])
    async def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app
