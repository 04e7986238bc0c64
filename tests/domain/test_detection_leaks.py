"""Leak rules pinned on simulated nights and flows: the acceptance's constant 3 L/h night, pauses, coverage and
the DST nights."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from koprogo_iot.domain.alerts import AlertSeverity, AlertType, ClearAlert, RaiseAlert
from koprogo_iot.domain.consumption import Point
from koprogo_iot.domain.detection import continuous_flow_leak, night_leak, night_window
from koprogo_iot.domain.rules import AlertRules, layer
from koprogo_iot.domain.sensors import IoTSensor, MeasurementKind, SensorType

STEP = timedelta(minutes=5)
RULES = layer()  # leak on, night 01:00-05:00 Brussels, continuous 6 h above 0
# 14 January 2026, winter time (UTC+1): the night 01:00-05:00 local is 00:00-04:00 UTC.
NIGHT_START, NIGHT_END = datetime(2026, 1, 14, 0, 0, tzinfo=UTC), datetime(2026, 1, 14, 4, 0, tzinfo=UTC)
MORNING = datetime(2026, 1, 14, 6, 0, tzinfo=UTC)  # 07:00 in Brussels


def meter(**changes: Any) -> IoTSensor:
    fields: dict[str, Any] = {
        "organization_id": uuid.uuid4(),
        "building_id": uuid.uuid4(),
        "unit_id": uuid.uuid4(),
        "sensor_id": "KAM-7",
        "sensor_type": SensorType.COLD_WATER,
        "manufacturer": "Kamstrup",
        "model": "MULTICAL 21",
        "location": "Flat 2B",
        "unit_of_measure": "m³",
        "sampling_interval": 300,
    }
    return IoTSensor(**(fields | changes))


def counter_night(
    per_step: float, start: datetime = NIGHT_START - timedelta(minutes=30), end: datetime = MORNING
) -> list[Point]:
    """A counter read every 5 min from `start` to `end`, rising `per_step` at each reading."""
    count = int((end - start) / STEP) + 1
    return [(start + i * STEP, 123.456 + i * per_step) for i in range(count)]


def only_raise(decisions: list[Any]) -> RaiseAlert:
    (decision,) = decisions
    assert isinstance(decision, RaiseAlert)
    return decision


def test_night_window_is_the_last_night_that_ended() -> None:
    assert night_window(MORNING, 1, 5) == (NIGHT_START, NIGHT_END)
    assert night_window(NIGHT_END, 1, 5) == (NIGHT_START, NIGHT_END)  # ended exactly now
    three_am = datetime(2026, 1, 14, 2, 0, tzinfo=UTC)  # inside the night: the previous one is the last ended
    assert night_window(three_am, 1, 5) == (NIGHT_START - timedelta(days=1), NIGHT_END - timedelta(days=1))
    # 23:00 -> 05:00 wraps midnight: it starts the evening before
    assert night_window(MORNING, 23, 5) == (datetime(2026, 1, 13, 22, tzinfo=UTC), NIGHT_END)


def test_constant_3_litres_an_hour_all_night_is_a_leak() -> None:
    sensor = meter()
    alert = only_raise(night_leak(sensor, RULES, counter_night(0.00025), MORNING)).alert  # 0.25 L per 5 min
    assert (alert.alert_type, alert.rule, alert.severity) == (
        AlertType.LEAK_DETECTED,
        "night_flow",
        AlertSeverity.WARNING,
    )
    assert (alert.triggered_at, alert.last_triggered_at) == (NIGHT_START, NIGHT_END)
    assert alert.message == "Sensor KAM-7 (Flat 2B): water ran all night (01:00-05:00): 12 L, 3 L/h on average"
    assert alert.reading_value == pytest.approx(0.012)  # the night's consumption, in the meter's unit
    assert (alert.unit_id, alert.created_at) == (sensor.unit_id, MORNING)
    # judged again at noon: the same night, the same evidence (no repeat counted)
    noon = only_raise(night_leak(sensor, RULES, counter_night(0.00025), MORNING + timedelta(hours=5))).alert
    assert noon.last_triggered_at == alert.last_triggered_at


def test_a_strong_night_flow_is_critical() -> None:
    alert = only_raise(night_leak(meter(), RULES, counter_night(0.001), MORNING)).alert  # 12 L/h
    assert alert.severity is AlertSeverity.CRITICAL and "12 L/h" in alert.message


def test_a_night_with_one_pause_clears() -> None:
    points = counter_night(0.00025)
    pause = next(i for i, (t, _) in enumerate(points) if t == NIGHT_START + timedelta(hours=2))
    # No rise for six steps (02:55 -> 03:25): half an hour, the default pause.
    points = [(t, 123.456 + 0.00025 * (i - min(max(i - pause + 1, 0), 6))) for i, (t, _) in enumerate(points)]
    sensor = meter()
    assert night_leak(sensor, RULES, points, MORNING) == [
        ClearAlert(sensor.id, AlertType.LEAK_DETECTED, NIGHT_START + timedelta(hours=2, minutes=25), "night_flow")
    ]
    shorter = [(t, 123.456 + 0.00025 * (i - min(max(i - pause + 1, 0), 5))) for i, (t, _) in enumerate(points)]
    assert only_raise(night_leak(sensor, RULES, shorter, MORNING))  # 25 minutes still is not a pause


def test_an_uncovered_night_decides_nothing() -> None:
    points = counter_night(0.00025)
    hole = [p for p in points if not NIGHT_START + timedelta(hours=1) < p[0] < NIGHT_START + timedelta(hours=2)]
    assert night_leak(meter(), RULES, hole, MORNING) == []
    late_start = [p for p in points if p[0] > NIGHT_START + STEP]  # first reading 10 min into the night
    assert night_leak(meter(), RULES, late_start, MORNING) == []
    early_end = [p for p in points if p[0] < NIGHT_END - STEP]
    assert night_leak(meter(), RULES, early_end, MORNING) == []
    # at 03:30 local the last ended night is the previous one, which has no readings
    assert night_leak(meter(), RULES, points, NIGHT_START + timedelta(hours=2, minutes=30)) == []


def test_a_step_back_in_the_night_cannot_vouch_for_a_flow() -> None:
    points = counter_night(0.00025)
    points[20] = (points[20][0], points[20][1] - 0.0004)  # 0.15 L under the reading before: jitter
    assert night_leak(meter(), RULES, points, MORNING) == []


def test_a_1_litre_meter_needs_a_minimum_pause() -> None:
    # 3 L/h read every 5 min on a meter showing whole litres: the index moves one step in four
    points = [(t, round(v, 3)) for t, v in counter_night(0.00025)]
    any_flat_step = layer({"leak": {"min_pause_minutes": 0}})
    assert isinstance(night_leak(meter(), any_flat_step, points, MORNING)[0], ClearAlert)
    assert only_raise(night_leak(meter(), RULES, points, MORNING))  # the default: a pause lasts 30 min


@pytest.mark.parametrize(
    ("start", "end", "litres"),
    [
        # 29 March 2026, clocks go forward at 02:00: 01:00 CET -> 05:00 CEST is 3 h
        (datetime(2026, 3, 29, 0, tzinfo=UTC), datetime(2026, 3, 29, 3, tzinfo=UTC), 9),
        # 25 October 2026, clocks go back at 03:00: 01:00 CEST -> 05:00 CET is 5 h
        (datetime(2026, 10, 24, 23, tzinfo=UTC), datetime(2026, 10, 25, 4, tzinfo=UTC), 15),
    ],
)
def test_dst_nights_last_3_or_5_hours(start: datetime, end: datetime, litres: int) -> None:
    morning = end + timedelta(hours=3)
    assert night_window(morning, 1, 5) == (start, end)
    points = counter_night(0.00025, start - timedelta(minutes=30), morning)
    alert = only_raise(night_leak(meter(), RULES, points, morning)).alert
    assert (alert.triggered_at, alert.last_triggered_at) == (start, end)
    assert f"{litres} L, 3 L/h on average" in alert.message


def test_night_leak_skips_gauges_other_types_and_disabled_rules() -> None:
    points = counter_night(0.00025)
    assert night_leak(meter(kind=MeasurementKind.INSTANTANEOUS), RULES, points, MORNING) == []
    assert night_leak(meter(sensor_type=SensorType.GAS), RULES, points, MORNING) == []
    assert night_leak(meter(), layer({"leak": {"enabled": False}}), points, MORNING) == []


def test_a_unit_without_litres_reports_in_its_own_unit() -> None:
    alert = only_raise(night_leak(meter(unit_of_measure="gal"), RULES, counter_night(1), MORNING)).alert
    assert "48 gal, 12 gal/h on average" in alert.message and alert.severity is AlertSeverity.WARNING


# --- continuous flow on a flow gauge


def flow(**changes: Any) -> IoTSensor:
    return meter(**({"kind": MeasurementKind.INSTANTANEOUS, "unit_of_measure": "L/h"} | changes))


def flow_series(value: float, hours: float, end: datetime = MORNING) -> list[Point]:
    count = int(timedelta(hours=hours) / STEP) + 1
    return [(end - (count - 1 - i) * STEP, value) for i in range(count)]


def test_flow_that_never_stops_for_6_hours_is_a_leak() -> None:
    alert = only_raise(continuous_flow_leak(flow(), RULES, flow_series(5, 7), MORNING)).alert
    assert (alert.alert_type, alert.rule, alert.severity) == (
        AlertType.LEAK_DETECTED,
        "continuous_flow",
        AlertSeverity.WARNING,
    )
    assert (alert.triggered_at, alert.last_triggered_at) == (MORNING - timedelta(hours=6), MORNING)
    assert alert.message == (
        "Sensor KAM-7 (Flat 2B): flow above 0 L/h for 6 h without a break, lowest 5 L/h, now 5 L/h"
    )
    strong = only_raise(continuous_flow_leak(flow(unit_of_measure="m³/h"), RULES, flow_series(0.012, 7), MORNING))
    assert strong.alert.severity is AlertSeverity.CRITICAL  # 12 L/h


def test_flow_dropping_to_zero_clears() -> None:
    points = flow_series(5, 7)
    points[-20] = (points[-20][0], 0.0)
    sensor = flow()
    assert continuous_flow_leak(sensor, RULES, points, MORNING) == [
        ClearAlert(sensor.id, AlertType.LEAK_DETECTED, points[-20][0], "continuous_flow")
    ]


def test_flow_not_covering_the_span_decides_nothing() -> None:
    assert continuous_flow_leak(flow(), RULES, flow_series(5, 3), MORNING) == []  # only 3 h of readings
    stale = MORNING + timedelta(minutes=20)  # silent for 20 min: more than 3 intervals
    assert continuous_flow_leak(flow(), RULES, flow_series(5, 7), stale) == []


def test_zero_flow_level_is_configurable() -> None:
    rules: AlertRules = layer({"leak": {"zero_flow": 5}})
    assert isinstance(continuous_flow_leak(flow(), rules, flow_series(5, 7), MORNING)[0], ClearAlert)


def test_a_register_wrapping_in_the_night_still_vouches_for_a_flow_when_its_size_is_known() -> None:
    # A 999.999 m³ register read every 5 minutes, 0.25 L a step, wrapping past 0 in the middle of the night.
    points = [(ts, (value + 876.54) % 1000) for ts, value in counter_night(0.00025)]
    assert any(b[1] < a[1] for a, b in zip(points, points[1:], strict=False))  # the wrap is inside the series
    assert night_leak(meter(), RULES, points, MORNING) == []  # unknown size: a reset, which vouches for nothing
    alert = only_raise(night_leak(meter(rollover=1000.0), RULES, points, MORNING)).alert
    assert alert.message == "Sensor KAM-7 (Flat 2B): water ran all night (01:00-05:00): 12 L, 3 L/h on average"
