"""Readings: one measured value of one sensor at one instant, and how much to trust it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from koprogo_iot.domain.clock import require_aware, utcnow
from koprogo_iot.domain.errors import InvalidValue
from koprogo_iot.domain.sensors import IoTSensor

# Thresholds from the specification's `evaluate_quality`.
BATTERY_POOR, BATTERY_WARNING = 10.0, 20.0  # percent
SIGNAL_POOR, SIGNAL_WARNING = -100, -80  # dBm


class ReadingQuality(StrEnum):
    GOOD = "good"
    WARNING = "warning"  # low battery or weak signal: the value is doubtful
    POOR = "poor"  # very low battery or very weak signal: the value is unreliable


def evaluate_quality(battery_level: float | None, signal_strength: int | None) -> ReadingQuality:
    """Quality from battery and signal: the worse of the two wins."""
    quality = ReadingQuality.GOOD
    if battery_level is not None:
        if battery_level < BATTERY_POOR:
            return ReadingQuality.POOR
        if battery_level < BATTERY_WARNING:
            quality = ReadingQuality.WARNING
    if signal_strength is not None:
        if signal_strength < SIGNAL_POOR:
            return ReadingQuality.POOR
        if signal_strength < SIGNAL_WARNING:
            quality = ReadingQuality.WARNING
    return quality


@dataclass(frozen=True, slots=True)
class IoTReading:
    """A stored reading. Its identity is (sensor, timestamp): the same pair delivered twice is stored once."""

    organization_id: UUID
    sensor_id: UUID
    building_id: UUID
    timestamp: datetime
    value: float
    unit_of_measure: str
    unit_id: UUID | None = None
    battery_level: float | None = None
    signal_strength: int | None = None
    quality: ReadingQuality = ReadingQuality.GOOD
    is_anomaly: bool = False
    anomaly_reason: str | None = None
    received_at: datetime = field(default_factory=utcnow)

    def __post_init__(self) -> None:
        object.__setattr__(self, "timestamp", require_aware(self.timestamp, "timestamp"))
        object.__setattr__(self, "received_at", require_aware(self.received_at, "received_at"))
        if not math.isfinite(self.value):
            raise InvalidValue("reading value must be a finite number")
        if self.battery_level is not None and not 0 <= self.battery_level <= 100:
            raise InvalidValue("battery level must be between 0 and 100")
        object.__setattr__(self, "quality", ReadingQuality(self.quality))

    @classmethod
    def measured(
        cls,
        sensor: IoTSensor,
        timestamp: datetime,
        raw_value: float,
        battery_level: float | None = None,
        signal_strength: int | None = None,
        received_at: datetime | None = None,
    ) -> IoTReading:
        """A reading of `sensor`: calibration applied, quality evaluated, thresholds checked."""
        value = sensor.calibrate(raw_value)
        reason = sensor.check_alert(value)
        return cls(
            organization_id=sensor.organization_id,
            sensor_id=sensor.id,
            building_id=sensor.building_id,
            unit_id=sensor.unit_id,
            timestamp=timestamp,
            value=value,
            unit_of_measure=sensor.unit_of_measure,
            battery_level=battery_level,
            signal_strength=signal_strength,
            quality=evaluate_quality(battery_level, signal_strength),
            is_anomaly=reason is not None,
            anomaly_reason=reason.describe(sensor.unit_of_measure) if reason else None,
            received_at=received_at or utcnow(),
        )
