"""Per-reading rules pinned on the seed's scenario: threshold with hysteresis, low battery, device flags."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from koprogo_iot.domain.alerts import AlertSeverity, AlertType, ClearAlert, RaiseAlert
from koprogo_iot.domain.detection import reading_decisions
from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.domain.rules import AlertRules, effective_rules, layer
from koprogo_iot.domain.sensors import IoTSensor, MeasurementKind, SensorStatus, SensorType

ORG, BUILDING, UNIT = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
NOON = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


def flow_sensor(**changes: Any) -> IoTSensor:
    fields: dict[str, Any] = {
        "organization_id": ORG,
        "building_id": BUILDING,
        "unit_id": UNIT,
        "sensor_id": "KAM-123",
        "sensor_type": SensorType.COLD_WATER,
        "kind": MeasurementKind.INSTANTANEOUS,
        "manufacturer": "Kamstrup",
        "model": "MULTICAL 21",
        "location": "Basement",
        "unit_of_measure": "L/h",
        "alert_threshold_max": 50.0,
    }
    return IoTSensor(**(fields | changes))


def reading(sensor: IoTSensor, value: float, battery: float | None = None, at: datetime = NOON) -> IoTReading:
    return IoTReading.measured(sensor, at, value, battery_level=battery, received_at=at + timedelta(seconds=2))


SEED_RULES = {"threshold": {"clear_maximum": 45}}


def decide(sensor: IoTSensor, rules: AlertRules, value: float, **kwargs: Any) -> tuple[Any, ...]:
    flags = kwargs.pop("flags", None)
    return reading_decisions(sensor, rules, reading(sensor, value, **kwargs), flags)


def test_seed_scenario_75_raises_critical_48_holds_40_clears() -> None:
    sensor = flow_sensor()
    rules = effective_rules(sensor, override=SEED_RULES)
    (raised,) = decide(sensor, rules, 75)
    assert isinstance(raised, RaiseAlert)
    alert = raised.alert
    assert (alert.alert_type, alert.severity, alert.rule) == (
        AlertType.THRESHOLD_EXCEEDED,
        AlertSeverity.CRITICAL,
        "threshold",
    )
    assert alert.message == "Sensor KAM-123 (Basement): 75 L/h, maximum 50 L/h"
    assert (alert.reading_value, alert.threshold_value) == (75, 50)
    assert alert.triggered_at == alert.last_triggered_at == NOON
    assert (alert.organization_id, alert.building_id, alert.unit_id, alert.sensor_id) == (
        ORG,
        BUILDING,
        UNIT,
        sensor.id,
    )
    assert alert.created_at == NOON + timedelta(seconds=2)  # the reading's arrival, not the clock
    assert decide(sensor, rules, 48) == ()  # between the clear level (45) and the maximum (50): no decision
    assert decide(sensor, rules, 40) == (ClearAlert(sensor.id, AlertType.THRESHOLD_EXCEEDED, NOON, "threshold"),)


@pytest.mark.parametrize(("value", "severity"), [(55, AlertSeverity.WARNING), (62.5, AlertSeverity.CRITICAL)])
def test_critical_from_a_quarter_past_the_threshold(value: float, severity: AlertSeverity) -> None:
    sensor = flow_sensor()
    (raised,) = decide(sensor, effective_rules(sensor), value)
    assert isinstance(raised, RaiseAlert) and raised.alert.severity is severity


def test_below_minimum_raises_and_clears_at_clear_minimum() -> None:
    sensor = flow_sensor(alert_threshold_max=None, alert_threshold_min=10.0)
    rules = effective_rules(sensor, override={"threshold": {"clear_minimum": 12}})
    (raised,) = decide(sensor, rules, 8)
    assert isinstance(raised, RaiseAlert) and "8 L/h, minimum 10 L/h" in raised.alert.message
    assert decide(sensor, rules, 11) == ()
    assert decide(sensor, rules, 12) == (ClearAlert(sensor.id, AlertType.THRESHOLD_EXCEEDED, NOON, "threshold"),)


def test_with_a_duration_only_the_clear_is_per_reading() -> None:
    sensor = flow_sensor()
    rules = effective_rules(sensor, override={"threshold": {"duration_s": 900}})
    assert decide(sensor, rules, 75) == ()
    assert decide(sensor, rules, 40) == (ClearAlert(sensor.id, AlertType.THRESHOLD_EXCEEDED, NOON, "threshold"),)


def test_no_threshold_no_threshold_decision() -> None:
    sensor = flow_sensor(alert_threshold_max=None)
    assert decide(sensor, effective_rules(sensor), 1e6) == ()


def test_maintenance_decides_nothing() -> None:
    sensor = flow_sensor(status=SensorStatus.MAINTENANCE)
    assert decide(sensor, effective_rules(sensor), 75, battery=5, flags=frozenset({"LEAK"})) == ()


def test_low_battery_raises_at_low_and_clears_at_clear_percent() -> None:
    sensor = flow_sensor(alert_threshold_max=None)
    rules = layer()  # battery 20 % / 25 %
    (raised,) = decide(sensor, rules, 1, battery=20)
    assert isinstance(raised, RaiseAlert)
    assert (raised.alert.alert_type, raised.alert.rule, raised.alert.severity) == (
        AlertType.LOW_BATTERY,
        "battery",
        AlertSeverity.WARNING,
    )
    assert raised.alert.message == "Sensor KAM-123 (Basement): battery 20 %, low level 20 %"
    assert decide(sensor, rules, 1, battery=22) == ()
    assert decide(sensor, rules, 1, battery=25) == (ClearAlert(sensor.id, AlertType.LOW_BATTERY, NOON, "battery"),)
    assert decide(sensor, rules, 1) == ()  # no battery level, no opinion


@pytest.mark.parametrize(
    ("flags", "raised", "cleared"),
    [
        ({"LEAK"}, {AlertType.LEAK_DETECTED: AlertSeverity.CRITICAL}, AlertType.SENSOR_FAULTY),
        ({"burst"}, {AlertType.LEAK_DETECTED: AlertSeverity.CRITICAL}, AlertType.SENSOR_FAULTY),
        ({"V1_V2_BURST_WATER_LOSS"}, {AlertType.LEAK_DETECTED: AlertSeverity.CRITICAL}, AlertType.SENSOR_FAULTY),
        ({"LOW_BATTERY_LEVEL"}, {AlertType.SENSOR_FAULTY: AlertSeverity.WARNING}, AlertType.LEAK_DETECTED),
        ({"DRY"}, {AlertType.SENSOR_FAULTY: AlertSeverity.WARNING}, AlertType.LEAK_DETECTED),
        (
            {"leak", "REVERSE"},
            {AlertType.LEAK_DETECTED: AlertSeverity.CRITICAL, AlertType.SENSOR_FAULTY: AlertSeverity.WARNING},
            None,
        ),
    ],
)
def test_device_flags_are_a_leak_or_a_hardware_fault(
    flags: set[str], raised: dict[AlertType, AlertSeverity], cleared: AlertType | None
) -> None:
    sensor = flow_sensor(alert_threshold_max=None)
    decisions = decide(sensor, layer(), 1, flags=frozenset(flags))
    raises = {d.alert.alert_type: d.alert for d in decisions if isinstance(d, RaiseAlert)}
    assert {t: a.severity for t, a in raises.items()} == raised
    assert all(a.rule == "device_flag" for a in raises.values())
    assert (
        raises.get(AlertType.LEAK_DETECTED) is None
        or "LEAK" in raises[AlertType.LEAK_DETECTED].message
        or ("BURST" in raises[AlertType.LEAK_DETECTED].message)
    )
    clears = [d for d in decisions if isinstance(d, ClearAlert)]
    assert clears == ([] if cleared is None else [ClearAlert(sensor.id, cleared, NOON, "device_flag")])


def test_device_flags_clear_when_empty_and_say_nothing_when_unsupported_or_off() -> None:
    sensor = flow_sensor(alert_threshold_max=None)
    assert decide(sensor, layer(), 1, flags=frozenset()) == (
        ClearAlert(sensor.id, AlertType.LEAK_DETECTED, NOON, "device_flag"),
        ClearAlert(sensor.id, AlertType.SENSOR_FAULTY, NOON, "device_flag"),
    )
    assert decide(sensor, layer(), 1, flags=None) == ()
    assert decide(sensor, layer({"faulty": {"device_flags": False}}), 1, flags=frozenset({"LEAK"})) == ()


def test_all_rules_of_one_reading_come_together() -> None:
    sensor = flow_sensor()
    decisions = decide(sensor, effective_rules(sensor), 75, battery=10, flags=frozenset({"LEAK"}))
    assert [d.alert.alert_type for d in decisions if isinstance(d, RaiseAlert)] == [
        AlertType.THRESHOLD_EXCEEDED,
        AlertType.LOW_BATTERY,
        AlertType.LEAK_DETECTED,
    ]
