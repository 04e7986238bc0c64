"""Insights: recommendations computed from the readings (probable leaks, high consumers, standby), with figures."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from koprogo_iot.analytics import insights
from koprogo_iot.analytics.insights import InsightKind, InsightReport, Prices, Severity
from koprogo_iot.api.deps import PrincipalDep, ServicesDep
from koprogo_iot.api.inputs import Finite
from koprogo_iot.api.routers.analytics import EndQuery, StartQuery

router = APIRouter(prefix="/iot", tags=["analytics"])


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class FigureOut(_Out):
    value: int | float  # counts (nights, units) stay integers
    unit: str


class InsightOut(_Out):
    kind: InsightKind
    severity: Severity
    sensor_id: UUID | None
    unit_id: UUID | None
    building_id: UUID
    title: str
    message: str
    figures: dict[str, FigureOut]


class InsightsOut(BaseModel):
    start: datetime
    end: datetime
    timezone: str
    building_id: UUID | None
    water_price_eur_per_m3: float
    electricity_price_eur_per_kwh: float
    insights: list[InsightOut]

    @classmethod
    def of(cls, report: InsightReport) -> InsightsOut:
        return cls(
            start=report.start,
            end=report.end,
            timezone=report.timezone,
            building_id=report.building_id,
            water_price_eur_per_m3=report.prices.water_eur_per_m3,
            electricity_price_eur_per_kwh=report.prices.electricity_eur_per_kwh,
            insights=[InsightOut.model_validate(i) for i in report.insights],
        )


@router.get("/insights", response_model=InsightsOut)
async def list_insights(
    principal: PrincipalDep,
    services: ServicesDep,
    building_id: UUID | None = None,
    start: StartQuery = None,
    end: EndQuery = None,
    water_price: Annotated[
        Finite, Query(gt=0, description="EUR per m³ valuing leaked water")
    ] = insights.DEFAULT_WATER_PRICE_EUR_PER_M3,
    electricity_price: Annotated[
        Finite, Query(gt=0, description="EUR per kWh valuing standby")
    ] = insights.DEFAULT_ELECTRICITY_PRICE_EUR_PER_KWH,
) -> InsightsOut:
    """Insights on the counters the caller may see, in whole hours; default: the last 30 days, every building."""
    report = await services.analytics.insights(
        principal, building_id, start, end, Prices(water_price, electricity_price)
    )
    return InsightsOut.of(report)
