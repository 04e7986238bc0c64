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

# Device status flags that mean water is escaping now: a leak, and somebody has to act. Flags name it as a word:
# multical21's LEAK and BURST, kamheat's V1_V2_BURST_WATER_LOSS. The others (DRY, REVERSE, TAMPER,
# LOW_BATTERY_LEVEL...; Shelly's overtemp, overpower...) say the device cannot be trusted: a hardware fault, a warning.
LEAK_WORDS = frozenset({"LEAK", "BURST"})


def is_leak_flag(flag: str) -> bool:
    return not LEAK_WORDS.isdisjoint(flag.upper().split("_"))


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
        *_device_flags(sensor, rules.faulty, reading, flags),
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
) -> tuple[AlertDecision, ...]:
    """A device's status flags: a leak (LEAK, BURST) is `leak_detected`, any other flag `sensor_faulty`; a device
    reporting no such flag clears them. Ingestion gives the flags to one sensor per device (its volume meter), so a
    device event raises one alert, not one per value the device reports."""
    if flags is None or not (rule.enabled and rule.device_flags):
        return ()
    names = {flag.upper() for flag in flags}
    leaks = sorted(name for name in names if is_leak_flag(name))
    faults = sorted(names - set(leaks))
    at = reading.timestamp

    def decide(alert_type: AlertType, found: list[str], severity: AlertSeverity) -> AlertDecision:
        if not found:
            return clear(sensor, alert_type, "device_flag", at)
        message = f"{label(sensor)}: device reports {', '.join(found)}"
        return raise_alert(
            sensor,
            alert_type,
            "device_flag",
            severity,
            message,
            at,
            at,
            decided_at=reading.received_at,
            reading_value=reading.value,
        )

    return (
        decide(AlertType.LEAK_DETECTED, leaks, AlertSeverity.CRITICAL),
        decide(AlertType.SENSOR_FAULTY, faults, AlertSeverity.WARNING),
    )
