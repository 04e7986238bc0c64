"""Devices heard on the network: what a device sends, so that a syndic registers sensors from its real fields."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from koprogo_iot.domain.sensors import DeviceFormat, IoTSensor

MAX_FIELDS = 200  # a device's fields kept; a hostile payload cannot grow a sighting without bound


@dataclass(frozen=True, slots=True)
class SeenField:
    """The last value a device sent for one of its fields."""

    value: float
    unit: str  # as the device states it; "" when it does not say
    kind: str  # cumulative, instantaneous or snapshot


@dataclass(frozen=True, slots=True)
class DeviceSighting:
    """A device of an organization that sent values no registered sensor reads (yet)."""

    organization_id: UUID
    device_format: DeviceFormat
    device_id: str  # as the format compares it (`DeviceFormat.device_key`)
    building_id: UUID | None  # the building of the topic; None when it came through an integration
    topic: str
    fields: Mapping[str, SeenField]
    last_seen_at: datetime
    battery_level: float | None = None
    signal_strength: int | None = None

    @property
    def key(self) -> tuple[UUID, DeviceFormat, str]:
        return self.organization_id, self.device_format, self.device_id

    def updated(self, later: DeviceSighting) -> DeviceSighting:
        """This sighting with a later message's fields merged in (a Shelly sends only what changed)."""
        merged = dict(self.fields) | dict(later.fields)
        return DeviceSighting(
            self.organization_id,
            self.device_format,
            self.device_id,
            later.building_id or self.building_id,
            later.topic,
            dict(list(merged.items())[-MAX_FIELDS:]),
            max(self.last_seen_at, later.last_seen_at),
            later.battery_level if later.battery_level is not None else self.battery_level,
            later.signal_strength if later.signal_strength is not None else self.signal_strength,
        )


@dataclass(frozen=True, slots=True)
class DeviceFields:
    """A sighted device's fields, each with the sensor reading it (None: nobody reads it yet)."""

    sighting: DeviceSighting
    readers: Mapping[str, UUID | None] = field(default_factory=dict)

    @property
    def unclaimed(self) -> list[str]:
        return [name for name, reader in self.readers.items() if reader is None]


def claims(sighting: DeviceSighting, sensors: Iterable[IoTSensor]) -> DeviceFields:
    """Which of the sighted device's fields the organization's sensors read."""
    readers = {
        s.device_field: s.id
        for s in sensors
        if s.device_format is sighting.device_format and s.sensor_id == sighting.device_id
    }
    return DeviceFields(sighting, {name: readers.get(name) for name in sighting.fields})
