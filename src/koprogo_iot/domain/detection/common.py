"""What every detector shares: which sensors are muted, how an alert names its sensor, coverage of a window, and
the builders of decisions (so every rule fills an alert the same way)."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from datetime import datetime, timedelta

from koprogo_iot.domain.alerts import AlertSeverity, AlertType, ClearAlert, IoTAlert, RaiseAlert
from koprogo_iot.domain.consumption import Point
from koprogo_iot.domain.sensors import IoTSensor, MeasurementKind, SensorStatus, SensorType

WATER = frozenset({SensorType.COLD_WATER, SensorType.HOT_WATER})
HOUR = timedelta(hours=1)
# Readings may be lost or late: a window counts as covered while no two consecutive readings are more than this many
# sampling intervals apart. Offline uses its own (configurable) count; 3 is its default too.
MAX_GAP_INTERVALS = 3


def muted(sensor: IoTSensor) -> bool:
    """A sensor in maintenance keeps its readings but raises nothing; an inactive one sends nothing we accept."""
    return sensor.status in (SensorStatus.MAINTENANCE, SensorStatus.INACTIVE)


def is_gauge(sensor: IoTSensor) -> bool:
    return sensor.measurement_kind is MeasurementKind.INSTANTANEOUS


def interval(sensor: IoTSensor) -> timedelta:
    return timedelta(seconds=sensor.sampling_interval)


def label(sensor: IoTSensor) -> str:
    """How messages name the sensor: "Sensor KAM-123 (Basement)"."""
    return f"Sensor {sensor.sensor_id} ({sensor.location or sensor.sensor_id})"


def amount(value: float, unit: str) -> str:
    return f"{value:g} {unit}"


def duration_text(span: timedelta) -> str:
    """ "45 s", "15 min", "2 h", "1 h 30 min": readable in a message."""
    seconds = round(span.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{rest} min"
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def between(points: Sequence[Point], start: datetime, end: datetime) -> Sequence[Point]:
    """The points with start <= timestamp <= end (points sorted by time)."""
    low = bisect.bisect_left(points, start, key=lambda point: point[0])
    high = bisect.bisect_right(points, end, key=lambda point: point[0])
    return points[low:high]


def up_to(points: Sequence[Point], now: datetime) -> Sequence[Point]:
    """The points at or before `now`: a reading stamped in the future (device clock ahead) is not evidence yet."""
    return points[: bisect.bisect_right(points, now, key=lambda point: point[0])]


def steps_after(points: Sequence[Point], since: datetime, now: datetime) -> Sequence[Point]:
    """The points up to `now` whose steps end after `since`: those after it and the one reading before them."""
    points = up_to(points, now)
    low = bisect.bisect_right(points, since, key=lambda point: point[0])
    return points[max(low - 1, 0) :]


def covers(points: Sequence[Point], start: datetime, end: datetime, step: timedelta, tail: timedelta) -> bool:
    """Readings span [start, end]: the first within one interval of `start`, the last within `tail` of `end`, and
    no gap longer than MAX_GAP_INTERVALS intervals, so "every step did X" speaks for the whole window."""
    if len(points) < 2 or points[0][0] > start + step or points[-1][0] < end - tail:
        return False
    limit = MAX_GAP_INTERVALS * step
    return all(later[0] - earlier[0] <= limit for earlier, later in itertools.pairwise(points))


def raise_alert(
    sensor: IoTSensor,
    alert_type: AlertType,
    rule: str,
    severity: AlertSeverity,
    message: str,
    triggered_at: datetime,
    last_triggered_at: datetime,
    *,
    decided_at: datetime,
    reading_value: float | None = None,
    threshold_value: float | None = None,
) -> RaiseAlert:
    """`last_triggered_at` is the time of the evidence: re-judging the same evidence is not a repeat.
    `decided_at` becomes `created_at`, given rather than read from the clock so that detectors stay pure."""
    return RaiseAlert(
        IoTAlert(
            organization_id=sensor.organization_id,
            sensor_id=sensor.id,
            building_id=sensor.building_id,
            unit_id=sensor.unit_id,
            alert_type=alert_type,
            severity=severity,
            message=message,
            triggered_at=triggered_at,
            last_triggered_at=last_triggered_at,
            reading_value=reading_value,
            threshold_value=threshold_value,
            rule=rule,
            created_at=decided_at,
        )
    )


def clear(sensor: IoTSensor, alert_type: AlertType, rule: str, at: datetime) -> ClearAlert:
    """Clears only an alert this rule raised: a night with a pause does not end a continuous-flow leak."""
    return ClearAlert(sensor.id, alert_type, at, rule)
