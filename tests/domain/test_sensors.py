"""Sensor validation, calibration and thresholds, as the specification states them."""

import math
import uuid
from datetime import UTC, datetime

import pytest

from koprogo_iot.domain.errors import InvalidValue
from koprogo_iot.domain.readings import IoTReading, ReadingQuality, evaluate_quality
from koprogo_iot.domain.rules import effective_rules
from koprogo_iot.domain.sensors import IoTSensor, MeasurementKind, SensorStatus, SensorType

ORG, BUILDING = uuid.uuid4(), uuid.uuid4()
NOON = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


def make(**changes: object) -> IoTSensor:
    fields: dict[str, object] = {
        "organization_id": ORG,
        "building_id": BUILDING,
        "sensor_id": "KAM-123",
        "sensor_type": SensorType.COLD_WATER,
        "manufacturer": "Kamstrup",
        "model": "MULTICAL 21",
        "location": "Basement",
        "unit_of_measure": "m³",
        "sampling_interval": 300,
    }
    return IoTSensor(**(fields | changes))  # type: ignore[arg-type]


@pytest.mark.parametrize("sensor_id", ["", "   ", "a/b", "a+b", "a#", "with space"])
def test_sensor_id_must_be_a_usable_topic_level(sensor_id: str) -> None:
    with pytest.raises(InvalidValue, match="sensor id"):
        make(sensor_id=sensor_id)


@pytest.mark.parametrize("interval", [9, 86_401, 0, -5])
def test_sampling_interval_outside_10s_to_24h_is_refused(interval: int) -> None:
    with pytest.raises(InvalidValue, match="sampling interval"):
        make(sampling_interval=interval)


@pytest.mark.parametrize("interval", [10, 300, 86_400])
def test_sampling_interval_bounds_are_included(interval: int) -> None:
    assert make(sampling_interval=interval).sampling_interval == interval


def test_new_sensor_defaults_follow_the_specification() -> None:
    sensor = make()
    assert sensor.calibration_factor == 1.0
    assert sensor.status is SensorStatus.ACTIVE
    assert not sensor.alert_enabled
    assert sensor.mqtt_topic == f"koprogo/{ORG}/{BUILDING}/KAM-123/readings"


def test_kind_defaults_by_type_and_can_be_overridden() -> None:
    assert make().measurement_kind is MeasurementKind.CUMULATIVE
    assert make(sensor_type=SensorType.TEMPERATURE, unit_of_measure="°C").kind is MeasurementKind.INSTANTANEOUS
    assert make(kind="instantaneous", unit_of_measure="L/h").kind is MeasurementKind.INSTANTANEOUS


@pytest.mark.parametrize("factor", [0.0, -1.0, math.inf, math.nan])
def test_calibration_factor_must_be_positive_and_finite(factor: float) -> None:
    with pytest.raises(InvalidValue, match="calibration factor"):
        make(calibration_factor=factor)


def test_calibration_multiplies_raw_values() -> None:
    assert make().calibrated(1.5).calibrate(10.0) == 15.0


def test_thresholds_must_be_ordered() -> None:
    with pytest.raises(InvalidValue, match="minimum threshold must be below"):
        make(alert_threshold_min=100.0, alert_threshold_max=10.0)


def test_unknown_enum_values_give_a_readable_error() -> None:
    with pytest.raises(InvalidValue, match="sensor type must be one of cold_water"):
        make(sensor_type="plutonium")


def test_check_alert_as_in_the_specification() -> None:
    """The seed's `check_alert` test: a sensor's own thresholds are the top layer of its alert rules."""
    sensor = make().with_thresholds(10.0, 100.0)
    assert sensor.alert_enabled
    threshold = effective_rules(sensor).threshold
    assert threshold.crossed(150.0) == 100.0
    assert threshold.crossed(5.0) == 10.0
    assert threshold.crossed(50.0) is None
    assert threshold.crossed(100.0) is None  # the threshold itself is allowed


def test_negative_values_only_for_temperatures() -> None:
    assert make().accepts(-1.0) is not None
    assert make(sensor_type=SensorType.TEMPERATURE, unit_of_measure="°C").accepts(-12.5) is None
    assert make().accepts(math.inf) is not None


@pytest.mark.parametrize(
    ("battery", "signal", "quality"),
    [
        (None, None, ReadingQuality.GOOD),
        (80.0, -70, ReadingQuality.GOOD),
        (15.0, -70, ReadingQuality.WARNING),
        (9.9, -70, ReadingQuality.POOR),
        (80.0, -85, ReadingQuality.WARNING),
        (80.0, -101, ReadingQuality.POOR),
        (15.0, -101, ReadingQuality.POOR),
        (20.0, -80, ReadingQuality.GOOD),  # the limits themselves are still good
    ],
)
def test_reading_quality_from_battery_and_signal(
    battery: float | None, signal: int | None, quality: ReadingQuality
) -> None:
    assert evaluate_quality(battery, signal) is quality


def test_measured_reading_applies_calibration_and_flags_anomalies() -> None:
    sensor = make(calibration_factor=2.0, alert_threshold_max=50.0, unit_of_measure="L/h")
    reading = IoTReading.measured(sensor, NOON, 30.0, battery_level=15.0, signal_strength=-70)
    assert reading.value == 60.0
    assert reading.is_anomaly and reading.anomaly_reason == "60 L/h above maximum 50 L/h"
    assert reading.quality is ReadingQuality.WARNING
    assert reading.sensor_id == sensor.id and reading.organization_id == ORG


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(InvalidValue, match="time zone"):
        IoTReading.measured(make(), datetime(2026, 1, 1), 1.0)
