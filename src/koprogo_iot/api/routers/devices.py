"""Device families: what each offers a sensor, and the devices heard that no sensor reads yet."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel

from koprogo_iot.api.deps import PrincipalDep, ServicesDep
from koprogo_iot.devices.catalog import FORMATS, FormatInfo
from koprogo_iot.domain.devices import DeviceFields
from koprogo_iot.domain.sensors import DeviceFormat

router = APIRouter(prefix="/iot/devices", tags=["devices"])


class FieldOut(BaseModel):
    field: str
    unit: str
    kind: str


class FormatOut(BaseModel):
    format: DeviceFormat
    label: str
    device_id: str
    field_rule: str
    closed: bool
    fields: list[FieldOut]
    topic: str

    @classmethod
    def of(cls, info: FormatInfo) -> FormatOut:
        return cls(
            format=info.format,
            label=info.label,
            device_id=info.device_id,
            field_rule=info.field_rule,
            closed=info.closed,
            fields=[FieldOut(field=f.field, unit=f.unit, kind=f.kind.value) for f in info.fields],
            topic=info.format.topic("{organization_id}", "{building_id}", "{sensor_id}"),
        )


@router.get("/formats")
async def list_formats(principal: PrincipalDep) -> list[FormatOut]:
    """Each device family: its device id, how it names fields (every field of a closed family), and its topic."""
    return [FormatOut.of(info) for info in FORMATS.values()]


class SeenFieldOut(BaseModel):
    field: str
    value: float
    unit: str
    kind: str
    sensor_id: UUID | None  # the sensor reading it; null: nobody yet


class DeviceOut(BaseModel):
    device_format: DeviceFormat
    device_id: str
    building_id: UUID | None
    topic: str
    last_seen_at: datetime
    battery_level: float | None
    signal_strength: int | None
    fields: list[SeenFieldOut]

    @classmethod
    def of(cls, found: DeviceFields) -> DeviceOut:
        s = found.sighting
        return cls(
            device_format=s.device_format,
            device_id=s.device_id,
            building_id=s.building_id,
            topic=s.topic,
            last_seen_at=s.last_seen_at,
            battery_level=s.battery_level,
            signal_strength=s.signal_strength,
            fields=[
                SeenFieldOut(field=name, value=f.value, unit=f.unit, kind=f.kind, sensor_id=found.readers[name])
                for name, f in s.fields.items()
            ],
        )


@router.get("/unclaimed")
async def list_unclaimed(
    principal: PrincipalDep, services: ServicesDep, building_id: UUID | None = None
) -> list[DeviceOut]:
    """Devices heard sending values no sensor reads yet, with every field they send and its last value: register
    sensors from these (`sensor_id` = `device_id`, `device_field` = a field). Syndics; the last 30 days."""
    return [DeviceOut.of(found) for found in await services.devices.unclaimed(principal, building_id)]
