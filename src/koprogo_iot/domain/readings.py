"""Readings: one measured value of one sensor at one instant, and how much to trust it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from koprogo_iot.domain.clock import require_aware, utcnow
from koprogo_iot.domain.errors import InvalidValue
from koprogo_iot.domain.rules import AlertRules, effective_rules
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
        rules: AlertRules | None = None,
    ) -> IoTReading:
        """A reading of `sensor`: its calibration applied (the one place it is), quality evaluated, and flagged an
        anomaly when it crosses the threshold of the sensor's rules (`rules`: its effective rules, else computed
        from the sensor alone)."""
        value = sensor.calibrate(raw_value)
        threshold = (rules or effective_rules(sensor)).threshold
        crossed = threshold.crossed(value) if math.isfinite(value) else None
        unit = sensor.unit_of_measure
        reason = None
        if crossed is not None:
            word = "above maximum" if value > crossed else "below minimum"
            reason = f"{value:g} {unit} {word} {crossed:g} {unit}"
        return cls(
            organization_id=sensor.organization_id,
            sensor_id=sensor.id,
            building_id=sensor.building_id,
            unit_id=sensor.unit_id,
            timestamp=timestamp,
            value=value,
            unit_of_measure=unit,
            battery_level=battery_level,
            signal_strength=signal_strength,
            quality=evaluate_quality(battery_level, signal_strength),
            is_anomaly=reason is not None,
            anomaly_reason=reason,
            received_at=received_at or utcnow(),
        )
