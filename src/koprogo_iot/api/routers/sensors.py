"""IoT sensors: provisioning, calibration and their readings."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response, status
from pydantic import TypeAdapter

from koprogo_iot.api.deps import PrincipalDep, ServicesDep
from koprogo_iot.api.encoding import json_off_loop
from koprogo_iot.api.inputs import Instant, Int32
from koprogo_iot.api.schemas import CalibrateIn, ReadingOut, SensorIn, SensorOut, SensorUpdate

router = APIRouter(prefix="/iot/sensors", tags=["sensors"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_sensor(body: SensorIn, principal: PrincipalDep, services: ServicesDep) -> SensorOut:
    """Register a sensor; it then publishes to the `mqtt_topic` of the response."""
    return SensorOut.of(await services.provisioning.create_sensor(principal, body.fields()))


_SENSOR_LIST = TypeAdapter(list[SensorOut])


@router.get("", response_model=list[SensorOut])
async def list_sensors(
    principal: PrincipalDep,
    services: ServicesDep,
    building_id: UUID | None = None,
    unit_id: UUID | None = None,
) -> Response:
    """The sensors the caller may see: all of the organization's for a syndic, an owner's own otherwise."""
    sensors = await services.provisioning.list_sensors(principal, building_id, unit_id)
    return await json_off_loop(lambda: _SENSOR_LIST.dump_json([SensorOut.of(s) for s in sensors]))


@router.get("/{sensor_id}")
async def get_sensor(sensor_id: UUID, principal: PrincipalDep, services: ServicesDep) -> SensorOut:
    return SensorOut.of(await services.provisioning.get_sensor(principal, sensor_id))


@router.put("/{sensor_id}")
async def update_sensor(
    sensor_id: UUID, body: SensorUpdate, principal: PrincipalDep, services: ServicesDep
) -> SensorOut:
    """Change the fields sent, leave the others."""
    changes = body.model_dump(exclude_unset=True)
    return SensorOut.of(await services.provisioning.update_sensor(principal, sensor_id, changes))


@router.delete("/{sensor_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_sensor(sensor_id: UUID, principal: PrincipalDep, services: ServicesDep) -> Response:
    """Remove a sensor with its readings and alerts."""
    await services.provisioning.delete_sensor(principal, sensor_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{sensor_id}/calibrate")
async def calibrate_sensor(
    sensor_id: UUID, body: CalibrateIn, principal: PrincipalDep, services: ServicesDep
) -> SensorOut:
    """Set the factor applied to every later raw value (stored readings keep the factor they had)."""
    return SensorOut.of(await services.provisioning.calibrate_sensor(principal, sensor_id, body.calibration_factor))


@router.get("/{sensor_id}/readings", response_model=list[ReadingOut])
async def list_readings(
    sensor_id: UUID,
    principal: PrincipalDep,
    services: ServicesDep,
    start: Instant | None = Query(None, description="included, RFC 3339"),
    end: Instant | None = Query(None, description="excluded, RFC 3339"),
    limit: Annotated[Int32, Query(description="at most 10,000")] = 1000,
) -> object:
    """Newest first."""
    return await services.monitoring.readings(principal, sensor_id, start, end, limit)
