"""ISTA meters and their readings: what kind of meter, what kind of reading."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from uuid import UUID

from koprogo_iot.domain.clock import utcnow


class MeterType(StrEnum):
    WATER_COLD = "WATER_COLD"
    WATER_HOT = "WATER_HOT"
    HEAT = "HEAT"
    HCA = "HCA"  # heat cost allocator: counts dimensionless units, not energy

    @property
    def reference_unit(self) -> str:
        """The unit readings are converted to before they are compared; "units" for allocators."""
        if self is MeterType.HEAT:
            return "kWh"
        if self is MeterType.HCA:
            return "units"
        return "m³"

    @property
    def measures_physical_quantity(self) -> bool:
        """Whether an IoT meter can measure the same thing (allocator units are ISTA's own scale)."""
        return self is not MeterType.HCA


class ReadingKind(StrEnum):
    ACTUAL = "ACTUAL"  # read on the meter
    ESTIMATED = "ESTIMATED"  # guessed by ISTA (meter not accessible): never used for the cross-check
    REPLACED_OLD = "REPLACED_OLD"  # the final index of a meter taken out
    REPLACED_NEW = "REPLACED_NEW"  # the initial index of the meter put in its place


@dataclass(frozen=True, slots=True)
class IstaReading:
    """One index of one meter on one day, in the unit ISTA gave."""

    reading_date: date
    kind: ReadingKind
    value: float
    unit_of_measure: str


@dataclass(frozen=True, slots=True)
class IstaMeter:
    """A metering point as ISTA numbers it; `sensor_id` is the IoT sensor measuring the same thing, if any."""

    organization_id: UUID
    meter_number: str
    building_id: UUID
    unit_id: UUID | None  # None: a common meter of the building
    meter_type: MeterType
    sensor_id: UUID | None = None
    created_at: datetime = field(default_factory=utcnow, compare=False)  # when first imported
