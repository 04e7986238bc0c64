"""Threshold with hysteresis: raise past the minimum or maximum, clear only once back within the clear levels.

Without a duration a single reading decides (`reading_decisions`); with one the condition must hold that long,
which needs the readings before it (`threshold_window`). Between a threshold and its clear level nothing is
decided, so a value hovering around the threshold neither floods nor flaps.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from koprogo_iot.domain.alerts import AlertDecision, AlertSeverity, AlertType, RaiseAlert
from koprogo_iot.domain.consumption import Point
from koprogo_iot.domain.detection.common import amount, clear, duration_text, label, muted, raise_alert, up_to
from koprogo_iot.domain.rules import AlertRules, ThresholdRule
from koprogo_iot.domain.sensors import IoTSensor

RULE = "threshold"


def threshold_raise(
    sensor: IoTSensor,
    rule: ThresholdRule,
    value: float,
    threshold: float,
    triggered_at: datetime,
    last_triggered_at: datetime,
    decided_at: datetime,
) -> RaiseAlert:
    """Critical when `critical_excess` (a fraction of the threshold) past it: 75 L/h against 50 L/h is critical."""
    excess = abs(value - threshold) / max(abs(threshold), 1e-9)
    severity = AlertSeverity.CRITICAL if excess >= rule.critical_excess else AlertSeverity.WARNING
    word = "maximum" if value > threshold else "minimum"
    held = f" for {duration_text(timedelta(seconds=rule.duration_s))}" if rule.duration_s else ""
    unit = sensor.unit_of_measure
    return raise_alert(
        sensor,
        AlertType.THRESHOLD_EXCEEDED,
        RULE,
        severity,
        f"{label(sensor)}: {amount(value, unit)}{held}, {word} {amount(threshold, unit)}",
        triggered_at,
        last_triggered_at,
        decided_at=decided_at,
        reading_value=value,
        threshold_value=threshold,
    )


def threshold_window(
    sensor: IoTSensor, rules: AlertRules, points: Sequence[Point], now: datetime
) -> list[AlertDecision]:
    """With a duration: raise once the readings have been beyond the threshold for `duration_s` (one beyond it at or
    before now - duration and every one since beyond it too); clear when the latest is within the clear levels.

    The alert spans the run: triggered at its first reading, last triggered at its latest (the evidence), so the
    evaluator re-judging the same readings does not count a repeat.
    """
    rule = rules.threshold
    if muted(sensor) or not rule.active or not rule.duration_s:
        return []
    points = up_to(points, now)
    if not points:
        return []
    latest, value = points[-1]
    threshold = rule.crossed(value)
    if threshold is None:
        return [clear(sensor, AlertType.THRESHOLD_EXCEEDED, RULE, latest)] if rule.clears(value) else []
    above = value > threshold
    first = len(points) - 1
    while first > 0 and (points[first - 1][1] > threshold if above else points[first - 1][1] < threshold):
        first -= 1
    run_start = points[first][0]
    if run_start > now - timedelta(seconds=rule.duration_s):
        return []  # not long enough yet
    return [threshold_raise(sensor, rule, value, threshold, run_start, latest, now)]
