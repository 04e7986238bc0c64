"""ISTA readings: import a CSV file, list and link the meters, and the cross-check report against IoT meters."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from koprogo_iot.api.deps import PrincipalDep, ServicesDep
from koprogo_iot.api.errors import respond
from koprogo_iot.api.inputs import Day, Finite, Text
from koprogo_iot.domain.ista import IstaMeter, MeterType
from koprogo_iot.ista.report import DEFAULT_THRESHOLD_PERCENT, IstaReport, MeterReport, PeriodStatus
from koprogo_iot.services.ista import ImportResult, IstaService

router = APIRouter(prefix="/ista", tags=["ista"])

MAX_FILE_BYTES = 10 * 1024 * 1024  # a building's yearly export is a few kB: this only stops accidents
_CSV_TYPES = ("text/csv", "text/plain", "application/csv", "application/vnd.ms-excel")  # what browsers send for .csv


def _service(services: ServicesDep) -> IstaService:
    return services.ista


IstaDep = Annotated[IstaService, Depends(_service)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SensorLinkIn(_In):
    sensor_id: UUID | None  # null removes the link


class RowErrorOut(BaseModel):
    line: int
    message: str


class ImportOut(BaseModel):
    imported: int
    skipped_duplicates: int
    errors: list[RowErrorOut]

    @classmethod
    def of(cls, result: ImportResult) -> ImportOut:
        errors = [RowErrorOut(line=e.line, message=e.message) for e in result.errors]
        return cls(imported=result.imported, skipped_duplicates=result.skipped_duplicates, errors=errors)


class MeterOut(BaseModel):
    meter_number: str
    meter_type: MeterType
    building_id: UUID
    unit_id: UUID | None
    sensor_id: UUID | None

    @classmethod
    def of(cls, meter: IstaMeter) -> MeterOut:
        return cls(
            meter_number=meter.meter_number,
            meter_type=meter.meter_type,
            building_id=meter.building_id,
            unit_id=meter.unit_id,
            sensor_id=meter.sensor_id,
        )


class PeriodOut(BaseModel):
    start: date
    end: date
    ista_consumption: float | None
    iot_consumption: float | None
    unit_of_measure: str
    deviation_percent: float | None
    flagged: bool
    status: PeriodStatus
    replacements: int
    note: str | None


class EstimatedReadingOut(BaseModel):
    reading_date: date
    value: float
    unit_of_measure: str


class MeterReportOut(MeterOut):
    building_name: str
    unit_name: str | None
    periods: list[PeriodOut]
    estimated_readings: list[EstimatedReadingOut]

    @classmethod
    def of_report(cls, report: MeterReport) -> MeterReportOut:
        meter = MeterOut.of(report.meter)
        periods = [PeriodOut.model_validate(p, from_attributes=True) for p in report.periods]
        estimated = [EstimatedReadingOut.model_validate(r, from_attributes=True) for r in report.estimated]
        return cls(
            **meter.model_dump(),
            building_name=report.building_name,
            unit_name=report.unit_name,
            periods=periods,
            estimated_readings=estimated,
        )


class ReportOut(BaseModel):
    start: date | None
    end: date | None
    threshold_percent: float
    flagged: int
    meters: list[MeterReportOut]

    @classmethod
    def of(cls, report: IstaReport) -> ReportOut:
        return cls(
            start=report.start,
            end=report.end,
            threshold_percent=report.threshold_percent,
            flagged=report.flagged,
            meters=[MeterReportOut.of_report(m) for m in report.meters],
        )


@router.post(
    "/imports",
    response_model=ImportOut,
    openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def import_readings(request: Request, principal: PrincipalDep, ista: IstaDep) -> ImportOut | JSONResponse:
    """Import an ISTA CSV file sent as the body (text/csv; layout in docs/ista-import.md).

    Valid rows are stored, a row stored before is skipped, bad rows come back with their line number. 422 only
    when nothing can be read (an unknown encoding or a wrong header).
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in _CSV_TYPES:
        return respond(415, "unsupported_media_type", "send the file as the request body with Content-Type: text/csv")
    # Larger than MAX_FILE_BYTES: refused while it is read (api/middleware.BodyLimit, given this route's limit).
    return ImportOut.of(await ista.import_csv(principal, await request.body()))


@router.get("/meters")
async def list_meters(principal: PrincipalDep, ista: IstaDep, building_id: UUID | None = None) -> list[MeterOut]:
    """The organization's ISTA meters, with the IoT sensor each is linked to."""
    return [MeterOut.of(m) for m in await ista.meters(principal, building_id)]


@router.put("/meters/{meter_number}/sensor")
async def link_sensor(meter_number: Text, body: SensorLinkIn, principal: PrincipalDep, ista: IstaDep) -> MeterOut:
    """Link the meter to an IoT sensor of the organization (null unlinks it)."""
    return MeterOut.of(await ista.link_sensor(principal, meter_number, body.sensor_id))


@router.get("/report")
async def report(
    principal: PrincipalDep,
    ista: IstaDep,
    start: Day | None = Query(None, description="periods ending after this date"),
    end: Day | None = Query(None, description="periods starting before this date"),
    threshold_percent: Annotated[
        Finite, Query(ge=0, description="flag deviations beyond this")
    ] = DEFAULT_THRESHOLD_PERCENT,
    building_id: UUID | None = None,
) -> ReportOut:
    """Per meter and period between actual readings: ISTA's consumption, the IoT sensor's, deviation %, flag."""
    return ReportOut.of(await ista.report(principal, start, end, threshold_percent, building_id))
