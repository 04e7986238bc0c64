"""Rules one reading decides on its own (given the sensor and its rules): threshold without a duration, low
battery, device status flags. Stateless, so any ingest worker gives the same answer for the same reading."""

from __future__ import annotations

from koprogo_iot.domain.alerts import AlertDecision, AlertSeverity, AlertType
from koprogo_iot.domain.detection.common import clear, label, muted, raise_alert
from koprogo_iot.domain.detection.threshold import RULE as THRESHOLD_RULE
from koprogo_iot.domain.detection.threshold import threshold_raise
from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.domain.rules import AlertRules, BatteryRule, FaultyRule, ThresholdRule
from koprogo_iot.domain.sensors import IoTSensor

# wM-Bus status flags that mean water is escaping now: somebody has to act. Others (DRY, REVERSE, TAMPER, ...)
# say the meter cannot be trusted: a warning.
URGENT_FLAGS = frozenset({"LEAK", "BURST"})


def reading_decisions(
    sensor: IoTSensor, rules: AlertRules, reading: IoTReading, flags: frozenset[str] | None
) -> tuple[AlertDecision, ...]:
    """What `reading` decides by itself. `flags` are the device's status flags, None for devices that report none
    (an empty set is a device saying "all is well", which clears a device-flag alert)."""
    if muted(sensor):
        return ()
    decisions = (
        _threshold(sensor, rules.threshold, reading),
        _battery(sensor, rules.battery, reading),
        _device_flags(sensor, rules.faulty, reading, flags),
    )
    return tuple(decision for decision in decisions if decision is not None)


def _threshold(sensor: IoTSensor, rule: ThresholdRule, reading: IoTReading) -> AlertDecision | None:
    if not rule.active:
        return None
    threshold = rule.crossed(reading.value)
    if threshold is not None:
        if rule.duration_s:
            return None  # it must hold for a while: `threshold_window` decides over the readings
        at = reading.timestamp
        return threshold_raise(sensor, rule, reading.value, threshold, at, at, reading.received_at)
    if rule.clears(reading.value):
        return clear(sensor, AlertType.THRESHOLD_EXCEEDED, THRESHOLD_RULE, reading.timestamp)
    return None  # in the hysteresis band


def _battery(sensor: IoTSensor, rule: BatteryRule, reading: IoTReading) -> AlertDecision | None:
    level = reading.battery_level
    if level is None or not rule.enabled:
        return None
    if level <= rule.low_percent:
        return raise_alert(
            sensor,
            AlertType.LOW_BATTERY,
            "battery",
            AlertSeverity.WARNING,
            f"{label(sensor)}: battery {level:g} %, low level {rule.low_percent:g} %",
            reading.timestamp,
            reading.timestamp,
            decided_at=reading.received_at,
            reading_value=level,
            threshold_value=rule.low_percent,
        )
    if level >= rule.clear_percent:
        return clear(sensor, AlertType.LOW_BATTERY, "battery", reading.timestamp)
    return None


def _device_flags(
    sensor: IoTSensor, rule: FaultyRule, reading: IoTReading, flags: frozenset[str] | None
) -> AlertDecision | None:
    if flags is None or not (rule.enabled and rule.device_flags):
        return None
    if not flags:
        return clear(sensor, AlertType.SENSOR_FAULTY, "device_flag", reading.timestamp)
    names = sorted({flag.upper() for flag in flags})
    urgent = not URGENT_FLAGS.isdisjoint(names)
    return raise_alert(
        sensor,
        AlertType.SENSOR_FAULTY,
        "device_flag",
        AlertSeverity.CRITICAL if urgent else AlertSeverity.WARNING,
        f"{label(sensor)}: device reports {', '.join(names)}",
        reading.timestamp,
        reading.timestamp,
        decided_at=reading.received_at,
        reading_value=reading.value,
    )
