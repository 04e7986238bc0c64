"""Alerts: list and acknowledge."""

from uuid import UUID

from fastapi import APIRouter, Query

from koprogo_iot.api.deps import PrincipalDep, ServicesDep
from koprogo_iot.api.schemas import AcknowledgeIn, AlertOut
from koprogo_iot.domain.alerts import AlertStatus
from koprogo_iot.storage.ports import AlertFilter

router = APIRouter(prefix="/iot/alerts", tags=["alerts"])


@router.get("")
async def list_alerts(
    principal: PrincipalDep,
    services: ServicesDep,
    status: AlertStatus | None = None,
    acknowledged: bool | None = None,
    sensor_id: UUID | None = None,
    building_id: UUID | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> list[AlertOut]:
    """Newest first."""
    where = AlertFilter(status, acknowledged, sensor_id, building_id, limit=limit)
    return [AlertOut.of(a) for a in await services.monitoring.alerts(principal, where)]


@router.post("/{alert_id}/acknowledge")
async def acknowledge_alert(
    alert_id: UUID, principal: PrincipalDep, services: ServicesDep, body: AcknowledgeIn | None = None
) -> AlertOut:
    """Record who saw the alert, when, and their note; the first acknowledgment is kept."""
    note = body.note if body else None
    return AlertOut.of(await services.monitoring.acknowledge(principal, alert_id, note))
