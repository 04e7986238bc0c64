"""A building's BACnet points: managers configure them, owners cannot; another organization's ids look absent."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from koprogo_iot.domain.access import Principal
from koprogo_iot.domain.audit import AuditAction, AuditEntity, differences
from koprogo_iot.domain.bacnet import BacnetPoint
from koprogo_iot.domain.errors import Conflict, InvalidValue
from koprogo_iot.domain.sensors import DeviceFormat
from koprogo_iot.services.audit import AuditLog
from koprogo_iot.storage.ports import BacnetPointRepository, SensorRepository, TenancyRepository


class BacnetConfiguration:
    def __init__(
        self, points: BacnetPointRepository, tenancy: TenancyRepository, sensors: SensorRepository, audit: AuditLog
    ) -> None:
        self.points = points
        self.tenancy = tenancy
        self.sensors = sensors
        self.audit = audit

    async def _check(self, principal: Principal, point: BacnetPoint) -> None:
        """That the point's building and sensor are the organization's, and the point may feed the sensor."""
        await self.tenancy.get_building(principal.organization_id, point.building_id)
        sensor = await self.sensors.get(principal.organization_id, point.sensor_id)
        if sensor.building_id != point.building_id:
            raise InvalidValue(f"sensor {sensor.id} is not in building {point.building_id}")
        if sensor.device_format is not DeviceFormat.NATIVE:
            # The poller publishes native payloads: a sensor decoded from a device format would never match them.
            raise InvalidValue(f"sensor {sensor.id} must be a native sensor, not {sensor.device_format.value}")
        for other in await self.points.select(principal.organization_id):
            if other.sensor_id == sensor.id and other.id != point.id:
                raise Conflict(f"sensor {sensor.id} already has BACnet point {other.id}")

    async def create_point(self, principal: Principal, fields: dict[str, Any]) -> BacnetPoint:
        """`polling_interval` defaults to the sensor's sampling interval."""
        principal.require_manager()
        if fields.get("polling_interval") is None:
            sensor = await self.sensors.get(principal.organization_id, fields["sensor_id"])
            fields = fields | {"polling_interval": sensor.sampling_interval}
        point = BacnetPoint(organization_id=principal.organization_id, **fields)
        await self._check(principal, point)
        await self.points.add(point)
        details = {"sensor_id": point.sensor_id, "address": point.address, "object": point.object_instance}
        await self.audit.record(principal, AuditEntity.BACNET_POINT, point.id, AuditAction.CREATED, details)
        return point

    async def list_points(self, principal: Principal, building_id: UUID | None = None) -> list[BacnetPoint]:
        principal.require_manager()
        if building_id is not None:
            await self.tenancy.get_building(principal.organization_id, building_id)
        return await self.points.select(principal.organization_id, building_id)

    async def get_point(self, principal: Principal, point_id: UUID) -> BacnetPoint:
        principal.require_manager()
        return await self.points.get(principal.organization_id, point_id)

    async def update_point(self, principal: Principal, point_id: UUID, changes: dict[str, Any]) -> BacnetPoint:
        principal.require_manager()
        before = await self.points.get(principal.organization_id, point_id)
        point = before.changed(**changes)
        await self._check(principal, point)
        await self.points.update(point)
        details = differences(before, point, ignore=frozenset({"updated_at"}))
        await self.audit.record(principal, AuditEntity.BACNET_POINT, point_id, AuditAction.CHANGED, details)
        return point

    async def delete_point(self, principal: Principal, point_id: UUID) -> None:
        principal.require_manager()
        await self.points.delete(principal.organization_id, point_id)
        await self.audit.record(principal, AuditEntity.BACNET_POINT, point_id, AuditAction.DELETED)
