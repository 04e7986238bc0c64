"""The statistical rule: a robust z-score against the same local hour of the previous weeks."""

import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from koprogo_iot.domain.alerts import AlertSeverity, AlertType, ClearAlert, RaiseAlert
from koprogo_iot.domain.detection import baseline_hours, robust_z, statistical_decision
from koprogo_iot.domain.rules import layer
from koprogo_iot.domain.sensors import IoTSensor, SensorType

HOUR = datetime(2026, 2, 10, 3, tzinfo=UTC)  # Tuesday 04:00 in Brussels
END = HOUR + timedelta(hours=1)
RULES = layer({"statistical": {"enabled": True}})  # z 4, 4 weeks, at least 3 samples


def sensor() -> IoTSensor:
    return IoTSensor(
        organization_id=uuid.uuid4(),
        building_id=uuid.uuid4(),
        sensor_id="EL-1",
        sensor_type=SensorType.ELECTRICITY,
        manufacturer="Shelly",
        model="Pro 3EM",
        location="Common areas",
        unit_of_measure="kWh",
    )


def history(value: float, *weeks: float) -> dict[datetime, float]:
    hourly = {HOUR: value}
    hourly.update({HOUR - timedelta(weeks=i + 1): sample for i, sample in enumerate(weeks)})
    return hourly


def decide(hourly: dict[datetime, float], **kwargs: Any) -> Any:
    return statistical_decision(sensor(), kwargs.pop("rules", RULES), hourly, HOUR, kwargs.pop("now", END))


def test_an_outlier_hour_raises_with_its_figures() -> None:
    decision = decide(history(10, 3.0, 3.2, 2.9, 3.1))
    assert isinstance(decision, RaiseAlert)
    alert = decision.alert
    assert (alert.alert_type, alert.rule, alert.severity) == (
        AlertType.ANOMALY_DETECTED,
        "statistical",
        AlertSeverity.WARNING,
    )
    assert (alert.triggered_at, alert.last_triggered_at, alert.reading_value) == (HOUR, END, 10)
    assert alert.threshold_value == pytest.approx(3.05)
    # median 3.05, MAD 0.1: z = 0.6745 * 6.95 / 0.1 = 46.9
    assert alert.message == (
        "Sensor EL-1 (Common areas): 10 kWh on Tue 04:00, usually 3.05 kWh (median of 4 weeks), z = 46.9, limit 4"
    )


def test_a_normal_hour_clears_at_its_end() -> None:
    s = sensor()
    assert statistical_decision(s, RULES, history(3.3, 3.0, 3.2, 2.9, 3.1), HOUR, END) == ClearAlert(
        s.id, AlertType.ANOMALY_DETECTED, END, "statistical"
    )


def test_nothing_without_enough_history_an_ended_hour_or_its_value() -> None:
    assert decide(history(10, 3.0, 3.2)) is None  # 2 weeks < min_samples 3
    assert decide(history(10, 3.0, 3.2, 2.9, 3.1), now=HOUR + timedelta(minutes=30)) is None
    assert decide({HOUR - timedelta(weeks=i): 3.0 for i in range(1, 5)}) is None
    assert decide(history(10, 3.0, 3.2, 2.9, 3.1), rules=layer()) is None  # off by default


def test_zero_mad_falls_back_to_mean_deviation_then_a_floor() -> None:
    assert robust_z(20, [3, 3, 3, 10])[0] == pytest.approx(17 / (1.253314 * 1.75))
    assert robust_z(3.1, [3, 3, 3, 3])[0] == pytest.approx(0.1 / 0.15)  # 5 % of the median
    assert robust_z(0, [0, 0, 0]) == (0.0, 0, 0.0)
    assert robust_z(0.001, [0, 0, 0])[0] == math.inf  # never anything at that hour before
    assert isinstance(decide(history(0.001, 0, 0, 0, 0)), RaiseAlert)
    assert isinstance(decide(history(0, 0, 0, 0, 0)), ClearAlert)


def test_baseline_keeps_the_local_hour_across_dst() -> None:
    after_dst = datetime(2026, 4, 7, 1, tzinfo=UTC)  # Tuesday 03:00 summer time
    assert baseline_hours(after_dst, 4) == [
        datetime(2026, 3, 31, 1, tzinfo=UTC),
        datetime(2026, 3, 24, 2, tzinfo=UTC),  # Tuesday 03:00 winter time
        datetime(2026, 3, 17, 2, tzinfo=UTC),
        datetime(2026, 3, 10, 2, tzinfo=UTC),
    ]
