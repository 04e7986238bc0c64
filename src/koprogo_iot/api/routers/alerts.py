"""Alerts: list with filters, one alert, statistics, and acknowledge."""

from uuid import UUID

from fastapi import APIRouter, Query

from koprogo_iot.api.deps import PrincipalDep, ServicesDep
from koprogo_iot.api.inputs import Instant
from koprogo_iot.api.schemas import AcknowledgeIn, AlertOut, AlertStatisticsOut
from koprogo_iot.domain.alerts import AlertSeverity, AlertStatus, AlertType
from koprogo_iot.storage.ports import AlertFilter

router = APIRouter(prefix="/iot/alerts", tags=["alerts"])


@router.get("")
async def list_alerts(
    principal: PrincipalDep,
    services: ServicesDep,
    status: AlertStatus | None = None,
    acknowledged: bool | None = None,
    alert_type: AlertType | None = None,
    severity: AlertSeverity | None = None,
    sensor_id: UUID | None = None,
    building_id: UUID | None = None,
    start: Instant | None = Query(None, description="triggered at or after, RFC 3339"),
    end: Instant | None = Query(None, description="triggered before, RFC 3339"),
    limit: int = Query(100, ge=1, le=1000),
) -> list[AlertOut]:
    """Newest first."""
    where = AlertFilter(
        status,
        acknowledged,
        sensor_id,
        building_id,
        limit=limit,
        alert_type=alert_type,
        severity=severity,
        start=start,
        end=end,
    )
    return [AlertOut.of(a) for a in await services.monitoring.alerts(principal, where)]


@router.get("/statistics")
async def alert_statistics(
    principal: PrincipalDep,
    services: ServicesDep,
    start: Instant | None = Query(None, description="alerts triggered at or after, RFC 3339"),
    end: Instant | None = Query(None, description="alerts triggered before, RFC 3339"),
    building_id: UUID | None = None,
) -> AlertStatisticsOut:
    """Counts by type, severity and building, open and acknowledged counts, and the mean time to acknowledge,
    over the alerts triggered in the period that the caller may see."""
    where = AlertFilter(building_id=building_id, start=start, end=end)
    return AlertStatisticsOut.model_validate(await services.monitoring.alert_statistics(principal, where))


@router.get("/{alert_id}")
async def get_alert(alert_id: UUID, principal: PrincipalDep, services: ServicesDep) -> AlertOut:
    return AlertOut.of(await services.monitoring.alert(principal, alert_id))


@router.post("/{alert_id}/acknowledge")
async def acknowledge_alert(
    alert_id: UUID, principal: PrincipalDep, services: ServicesDep, body: AcknowledgeIn | None = None
) -> AlertOut:
    """Record who saw the alert, when, and their note; the first acknowledgment is kept."""
    note = body.note if body else None
    return AlertOut.of(await services.monitoring.acknowledge(principal, alert_id, note))
