"""Window rules pinned on small hand-made series: threshold with duration, spikes, offline, stuck/backwards/jumps,
and how much history they need."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from koprogo_iot.domain.alerts import AlertSeverity, AlertType, ClearAlert, RaiseAlert
from koprogo_iot.domain.consumption import Point
from koprogo_iot.domain.detection import (
    FAULT_WINDOW,
    faulty_window,
    lookback,
    offline_decision,
    spike_decisions,
    threshold_window,
)
from koprogo_iot.domain.rules import layer
from koprogo_iot.domain.sensors import IoTSensor, MeasurementKind, SensorStatus, SensorType

T0 = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
STEP = timedelta(minutes=5)


def sensor(**changes: Any) -> IoTSensor:
    fields: dict[str, Any] = {
        "organization_id": uuid.uuid4(),
        "building_id": uuid.uuid4(),
        "sensor_id": "S-1",
        "sensor_type": SensorType.TEMPERATURE,
        "manufacturer": "Acme",
        "model": "T1",
        "location": "Boiler room",
        "unit_of_measure": "°C",
        "sampling_interval": 300,
    }
    return IoTSensor(**(fields | changes))


def series(*values: float, start: datetime = T0, step: timedelta = STEP) -> list[Point]:
    return [(start + i * step, value) for i, value in enumerate(values)]


def only_raise(decisions: list[Any]) -> RaiseAlert:
    (decision,) = decisions
    assert isinstance(decision, RaiseAlert)
    return decision


# --- threshold with a duration

HOLD_15 = layer({"threshold": {"maximum": 50, "clear_maximum": 45, "duration_s": 900}})


def test_threshold_raises_once_held_for_the_duration() -> None:
    s = sensor(unit_of_measure="L/h", sensor_type=SensorType.COLD_WATER, kind=MeasurementKind.INSTANTANEOUS)
    points = series(40, 60, 60, 60, 75)  # beyond from 12:05
    assert threshold_window(s, HOLD_15, points, T0 + 3 * STEP) == []  # 12:15: held 10 min only
    alert = only_raise(threshold_window(s, HOLD_15, points, T0 + 4 * STEP)).alert
    assert (alert.triggered_at, alert.last_triggered_at) == (T0 + STEP, T0 + 4 * STEP)
    assert (alert.rule, alert.severity, alert.reading_value) == ("threshold", AlertSeverity.CRITICAL, 75)
    assert alert.message == "Sensor S-1 (Boiler room): 75 L/h for 15 min, maximum 50 L/h"


def test_threshold_run_broken_by_a_dip_starts_again() -> None:
    s = sensor()
    points = series(60, 60, 49, 60, 60)  # 49 is under the maximum: the run restarts at 12:15
    assert threshold_window(s, HOLD_15, points, T0 + 4 * STEP) == []
    assert only_raise(threshold_window(s, HOLD_15, points, T0 + 6 * STEP)).alert.triggered_at == T0 + 3 * STEP


def test_threshold_window_clears_within_clear_level_and_holds_in_the_band() -> None:
    s = sensor()
    assert threshold_window(s, HOLD_15, series(60, 44), T0 + STEP) == [
        ClearAlert(s.id, AlertType.THRESHOLD_EXCEEDED, T0 + STEP, "threshold")
    ]
    assert threshold_window(s, HOLD_15, series(60, 48), T0 + STEP) == []


def test_threshold_window_is_off_without_duration_and_ignores_future_readings() -> None:
    s = sensor()
    assert threshold_window(s, layer({"threshold": {"maximum": 50}}), series(60, 60, 60, 60), T0 + 3 * STEP) == []
    # the 40 at 12:20 is after now: it neither breaks the run nor clears
    assert only_raise(threshold_window(s, HOLD_15, series(60, 60, 60, 60, 40), T0 + 3 * STEP))


# --- spikes

SPIKES = layer({"spike": {"enabled": True, "max_rate_per_hour": 10}})


def test_spike_raises_with_the_step_end_as_evidence_then_clears() -> None:
    s = sensor()
    points = series(20, 20, 25, 25)  # +5 °C in 5 min = 60 °C/h
    now = T0 + 3 * STEP
    alert = only_raise(spike_decisions(s, SPIKES, points, now)).alert
    assert (alert.alert_type, alert.rule, alert.severity) == (
        AlertType.ANOMALY_DETECTED,
        "spike",
        AlertSeverity.WARNING,
    )
    assert alert.last_triggered_at == T0 + 2 * STEP
    assert alert.message == "Sensor S-1 (Boiler room): 20 °C to 25 °C in 5 min (60 °C/h), maximum 10 °C/h"
    # re-judged a minute later: the same evidence, so no repeat is counted
    again = only_raise(spike_decisions(s, SPIKES, points, now + timedelta(minutes=1))).alert
    assert again.last_triggered_at == alert.last_triggered_at
    calm = points + series(25, 25, 25, 25, start=T0 + 4 * STEP)
    later = T0 + 7 * STEP  # 25 min after the spike: beyond the 15 min hold
    assert spike_decisions(s, SPIKES, calm, later) == [ClearAlert(s.id, AlertType.ANOMALY_DETECTED, later, "spike")]


def test_spike_downwards_counts_and_counters_are_skipped() -> None:
    assert spike_decisions(sensor(), SPIKES, series(20, 18), T0 + STEP)  # -24 °C/h
    counter = sensor(sensor_type=SensorType.ELECTRICITY, unit_of_measure="kWh")
    assert spike_decisions(counter, SPIKES, series(20, 30), T0 + STEP) == []


def test_spike_is_off_by_default() -> None:
    assert spike_decisions(sensor(), layer(), series(20, 90), T0 + STEP) == []


# --- offline


def test_offline_after_missed_intervals_dated_when_overdue() -> None:
    s = sensor(last_reading_at=T0)  # every 5 min, 3 missed intervals
    assert offline_decision(s, layer(), T0 + 15 * timedelta(minutes=1)) == ClearAlert(
        s.id, AlertType.SENSOR_OFFLINE, T0, "offline"
    )
    first = offline_decision(s, layer(), T0 + timedelta(minutes=16))
    later = offline_decision(s, layer(), T0 + timedelta(hours=5))
    assert isinstance(first, RaiseAlert) and isinstance(later, RaiseAlert)
    assert (first.alert.alert_type, first.alert.rule, first.alert.severity) == (
        AlertType.SENSOR_OFFLINE,
        "offline",
        AlertSeverity.WARNING,
    )
    assert first.alert.triggered_at == first.alert.last_triggered_at == T0 + timedelta(minutes=15)
    assert later.alert.last_triggered_at == first.alert.last_triggered_at  # still the same silence: no repeat
    assert "no reading for 5 h" in later.alert.message


def test_offline_clears_when_the_sensor_reports_again() -> None:
    back = sensor(last_reading_at=T0 + timedelta(hours=6))
    assert offline_decision(back, layer(), T0 + timedelta(hours=6, minutes=1)) == ClearAlert(
        back.id, AlertType.SENSOR_OFFLINE, T0 + timedelta(hours=6), "offline"
    )


def test_offline_needs_a_first_reading_and_respects_maintenance() -> None:
    assert offline_decision(sensor(), layer(), T0) is None
    muted = sensor(last_reading_at=T0, status=SensorStatus.MAINTENANCE)
    assert offline_decision(muted, layer(), T0 + timedelta(days=1)) is None
    off = layer({"offline": {"enabled": False}})
    assert offline_decision(sensor(last_reading_at=T0), off, T0 + FAULT_WINDOW) is None


# --- faulty: stuck gauges

STUCK_4 = layer({"faulty": {"stuck_readings": 4}})


def test_stuck_gauge_raises_from_the_first_equal_reading() -> None:
    s = sensor()
    alert = only_raise(faulty_window(s, STUCK_4, series(20, 21.5, 21.5, 21.5, 21.5, 21.5), T0 + 5 * STEP)).alert
    assert (alert.alert_type, alert.rule) == (AlertType.SENSOR_FAULTY, "stuck")
    assert (alert.triggered_at, alert.last_triggered_at) == (T0 + STEP, T0 + 5 * STEP)
    assert alert.message == "Sensor S-1 (Boiler room): stuck at 21.5 °C for 5 readings (20 min)"


def test_stuck_clears_on_a_change_and_waits_for_enough_readings() -> None:
    s = sensor()
    now = T0 + 5 * STEP
    assert faulty_window(s, STUCK_4, series(21.5, 21.5, 21.5, 21.5, 21.5, 21.6), now) == [
        ClearAlert(s.id, AlertType.SENSOR_FAULTY, now, "stuck")
    ]
    assert faulty_window(s, STUCK_4, series(21.5, 21.5, 21.5), now) == []
    assert faulty_window(s, layer(), series(21.5, 21.5, 21.5, 21.5, 21.5), now) == []  # off by default


# --- faulty: counters going backwards, resets, jumps


def counter(**changes: Any) -> IoTSensor:
    return sensor(sensor_type=SensorType.COLD_WATER, unit_of_measure="m³", **changes)


def test_counter_going_backwards_is_a_fault() -> None:
    s = counter()
    alert = only_raise(faulty_window(s, layer(), series(100, 101, 95, 95.1), T0 + 3 * STEP)).alert
    assert (alert.alert_type, alert.rule) == (AlertType.SENSOR_FAULTY, "backwards")
    assert alert.last_triggered_at == T0 + 2 * STEP
    assert alert.message == "Sensor S-1 (Boiler room): index went back from 101 m³ to 95 m³"


def test_reset_to_near_zero_and_jitter_are_not_backwards() -> None:
    s = counter()
    now = T0 + 3 * STEP
    cleared = [ClearAlert(s.id, AlertType.SENSOR_FAULTY, now, "backwards")]
    assert faulty_window(s, layer(), series(100, 101, 2, 2.5), now) == cleared  # under 10 %: a restart
    assert faulty_window(s, layer(), series(100, 101, 100.5, 101), now) == cleared  # under 1 %: jitter


def test_backwards_step_leaves_the_window_after_a_day() -> None:
    s = counter()
    points = series(100, 101, 95, 95.1)
    now = T0 + FAULT_WINDOW + 3 * STEP
    assert faulty_window(s, layer(), points, now) == [ClearAlert(s.id, AlertType.SENSOR_FAULTY, now, "backwards")]


def test_implausible_jump() -> None:
    s = counter()
    rules = layer({"faulty": {"max_increase_per_hour": 1, "detect_backwards": False}})
    alert = only_raise(faulty_window(s, rules, series(100, 100.05, 100.55, 100.6), T0 + 3 * STEP)).alert
    assert (alert.rule, alert.last_triggered_at, alert.threshold_value) == ("jump", T0 + 2 * STEP, 1)
    assert "(6 m³/h), maximum 1 m³/h" in alert.message
    assert faulty_window(s, rules, series(100, 100.05, 100.1), T0 + 2 * STEP) == [
        ClearAlert(s.id, AlertType.SENSOR_FAULTY, T0 + 2 * STEP, "jump")
    ]


# --- lookback


def test_lookback_covers_what_each_sensor_needs() -> None:
    assert lookback(sensor(), layer({"leak": {"enabled": False}})) == timedelta(0)
    # a water counter: the last night (01:00-05:00) ended up to a day ago, plus an hour for DST and one interval
    assert lookback(counter(), layer()) == timedelta(hours=25 + 4) + STEP
    assert lookback(counter(), layer({"leak": {"enabled": False}})) == FAULT_WINDOW
    assert lookback(sensor(), HOLD_15) == timedelta(minutes=15) + 3 * STEP
    assert lookback(sensor(), SPIKES) == timedelta(minutes=15) + 3 * STEP
    assert lookback(sensor(), STUCK_4) == 7 * STEP
    assert lookback(counter(status=SensorStatus.MAINTENANCE), layer()) == timedelta(0)
