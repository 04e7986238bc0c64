"""BACnet points of a building: which controller object feeds which native sensor (read by `koprogo-iot bacnet`).

Managers only (syndics, superadmins): the BMS network layout is the syndic's and the integrator's business.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from koprogo_iot.api.deps import PrincipalDep, ServicesDep
from koprogo_iot.api.inputs import Finite, Int32, Text
from koprogo_iot.domain.bacnet import BacnetPoint, ObjectType, PropertyIdentifier

router = APIRouter(prefix="/iot/bacnet/points", tags=["bacnet"])

_ADDRESS = "the controller's BACnet/IP address, IP or IP:port (47808 when absent)"
_DEVICE = "the controller's device instance; when given, every poll checks the address still answers as it"
_SCALE = "multiplies the raw value: e.g. an accumulator's units per pulse times 0.001 for Wh to kWh"
_INTERVAL = "seconds between two reads, 10 to 86400; default: the sensor's sampling interval"


class PointUpdate(BaseModel):
    """Every field optional: only those sent change."""

    model_config = ConfigDict(extra="forbid")

    sensor_id: UUID | None = Field(None, description="the registered native sensor the point feeds (its id)")
    address: Text | None = Field(None, description=_ADDRESS, examples=["192.168.10.21", "192.168.10.21:47809"])
    device_instance: Int32 | None = Field(None, description=_DEVICE + "; null: not checked")
    object_type: ObjectType | None = None
    object_instance: Int32 | None = None
    property_identifier: PropertyIdentifier | None = Field(None, description="default present-value")
    scale: Finite | None = Field(None, description=_SCALE)
    polling_interval: Int32 | None = Field(None, description=_INTERVAL)

    @model_validator(mode="after")
    def _only_the_device_instance_may_be_null(self) -> PointUpdate:
        for name in sorted(self.model_fields_set - {"device_instance"}):
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class PointIn(PointUpdate):
    building_id: UUID
    sensor_id: UUID = Field(description="the registered native sensor the point feeds (its id), in that building")
    address: Text = Field(description=_ADDRESS, examples=["192.168.10.21", "192.168.10.21:47809"])
    object_type: ObjectType
    object_instance: Int32 = Field(description="0 to 4194302")

    def fields(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True) | {"device_instance": self.device_instance}


class PointOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    organization_id: UUID
    building_id: UUID
    sensor_id: UUID
    address: str
    device_instance: int | None
    object_type: ObjectType
    object_instance: int
    object_identifier: str = Field(description="as BACnet tools write it: analog-input,3")
    property_identifier: PropertyIdentifier
    scale: float
    polling_interval: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, point: BacnetPoint) -> PointOut:
        return cls.model_validate(point)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_point(body: PointIn, principal: PrincipalDep, services: ServicesDep) -> PointOut:
    """Map one BACnet object property of a controller to a registered native sensor of the building."""
    return PointOut.of(await services.bacnet.create_point(principal, body.fields()))


@router.get("")
async def list_points(
    principal: PrincipalDep, services: ServicesDep, building_id: UUID | None = None
) -> list[PointOut]:
    """A building's points (or the organization's), in the order they were created."""
    return [PointOut.of(p) for p in await services.bacnet.list_points(principal, building_id)]


@router.get("/{point_id}")
async def get_point(point_id: UUID, principal: PrincipalDep, services: ServicesDep) -> PointOut:
    return PointOut.of(await services.bacnet.get_point(principal, point_id))


@router.put("/{point_id}")
async def update_point(point_id: UUID, body: PointUpdate, principal: PrincipalDep, services: ServicesDep) -> PointOut:
    """Change the fields sent, leave the others; the poller picks the change up at its next configuration read."""
    return PointOut.of(await services.bacnet.update_point(principal, point_id, body.changes()))


@router.delete("/{point_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_point(point_id: UUID, principal: PrincipalDep, services: ServicesDep) -> Response:
    await services.bacnet.delete_point(principal, point_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
