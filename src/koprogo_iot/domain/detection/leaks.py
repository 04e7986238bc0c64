"""Leaks: water that never stops.

- `night_leak`, on water counters: over the last night window (local hours, by default 01:00-05:00 when nobody
  draws water) the index rose at every step. One step without increase means the water stopped: no leak.
- `continuous_flow_leak`, on flow gauges: the flow never fell to `zero_flow` over the last `continuous_hours`.
Both judge only windows the readings cover: a night the meter was silent proves nothing either way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo

from koprogo_iot.domain.alerts import AlertDecision, AlertSeverity, AlertType
from koprogo_iot.domain.consumption import DEFAULT_ZONE, Point, StepKind, counter_steps, zone
from koprogo_iot.domain.detection.common import (
    HOUR,
    MAX_GAP_INTERVALS,
    WATER,
    amount,
    between,
    clear,
    covers,
    duration_text,
    interval,
    is_gauge,
    label,
    muted,
    raise_alert,
    up_to,
)
from koprogo_iot.domain.rules import AlertRules
from koprogo_iot.domain.sensors import IoTSensor
from koprogo_iot.domain.units import conversion_factor

# 10 L/h is 88 m³ a year, more than a two-person household uses (Belgians use about 100 L per person per day): the
# same level as the insights' critical night flow. Applies when the sensor's unit converts to litres.
LEAK_CRITICAL_L_PER_H = 10.0


def night_window(
    now: datetime, start_hour: int, end_hour: int, tz: tzinfo | str = DEFAULT_ZONE
) -> tuple[datetime, datetime]:
    """The most recent night [start, end) of local hours in `tz` that has ended at `now`, in UTC. It wraps midnight
    when start_hour > end_hour (23 -> 5) and lasts 3 or 5 hours instead of 4 on the DST nights."""
    local = zone(tz)
    day = now.astimezone(local).date()
    end = _local_hour(day, end_hour, local)
    if end > now:
        day -= timedelta(days=1)
        end = _local_hour(day, end_hour, local)
    start_day = day if start_hour < end_hour else day - timedelta(days=1)
    return _local_hour(start_day, start_hour, local), end


def _local_hour(day: date, hour: int, local: tzinfo) -> datetime:
    # fold=0: a skipped hour (02:00 on the spring DST day) maps to the instant after the gap, an ambiguous one to
    # its first occurrence.
    return datetime(day.year, day.month, day.day, hour, tzinfo=local).astimezone(UTC)


def night_leak(
    sensor: IoTSensor,
    rules: AlertRules,
    points: Sequence[Point],
    now: datetime,
    tz: tzinfo | str = DEFAULT_ZONE,
) -> list[AlertDecision]:
    """Judge the last night on a water counter: every step rose → leak (raised for the night: triggered at its
    start, last triggered at its end, so re-judging the same night during the day is not a repeat); a pause →
    clear; not covered by readings, or a step back (jitter, reset) → nothing.

    A run of steps without increase counts as a pause only once it lasts `min_pause_minutes` (see `LeakRule`).
    """
    rule = rules.leak
    min_pause = timedelta(minutes=rule.min_pause_minutes)
    if muted(sensor) or not rule.enabled or sensor.sensor_type not in WATER or is_gauge(sensor):
        return []
    start, end = night_window(now, rule.night_start_hour, rule.night_end_hour, tz)
    step = interval(sensor)
    night = between(up_to(points, now), start, end)
    if not covers(night, start, end, step, tail=step):
        return []
    steps = counter_steps(night, rollover=sensor.rollover)
    still = timedelta(0)
    for counter_step in steps:
        if counter_step.kind is StepKind.NORMAL and counter_step.increase == 0:
            still += counter_step.duration
            if still >= min_pause:
                return [clear(sensor, AlertType.LEAK_DETECTED, "night_flow", counter_step.end)]
        else:
            still = timedelta(0)
    if any(s.kind in (StepKind.JITTER, StepKind.RESET) for s in steps):
        return []  # the index stepped back: it cannot vouch for a flow
    used = math.fsum(s.increase for s in steps)
    if used <= 0:
        return []
    hours = (night[-1][0] - night[0][0]) / HOUR
    unit = sensor.unit_of_measure
    litres = conversion_factor(unit, "L")
    if litres is None:  # a unit we cannot turn into litres: report in the sensor's own unit, never critical
        figures, critical = f"{amount(used, unit)}, {amount(used / hours, unit + '/h')} on average", False
    else:
        flow = used * litres / hours
        figures, critical = f"{used * litres:g} L, {flow:.3g} L/h on average", flow >= LEAK_CRITICAL_L_PER_H
    span = f"{rule.night_start_hour:02d}:00-{rule.night_end_hour:02d}:00"
    return [
        raise_alert(
            sensor,
            AlertType.LEAK_DETECTED,
            "night_flow",
            AlertSeverity.CRITICAL if critical else AlertSeverity.WARNING,
            f"{label(sensor)}: water ran all night ({span}): {figures}",
            start,
            end,
            decided_at=now,
            reading_value=used,
        )
    ]


def continuous_flow_leak(
    sensor: IoTSensor, rules: AlertRules, points: Sequence[Point], now: datetime
) -> list[AlertDecision]:
    """On a water flow gauge: every reading of the last `continuous_hours` above `zero_flow`, the span covered up to
    now (the silence since the last reading is one more gap) → leak; a reading at or under it → clear."""
    rule = rules.leak
    if muted(sensor) or not rule.enabled or sensor.sensor_type not in WATER or not is_gauge(sensor):
        return []
    span = timedelta(hours=rule.continuous_hours)
    recent = between(points, now - span, now)
    stopped = [timestamp for timestamp, value in recent if value <= rule.zero_flow]
    if stopped:
        return [clear(sensor, AlertType.LEAK_DETECTED, "continuous_flow", stopped[0])]
    step = interval(sensor)
    if not covers(recent, now - span, now, step, tail=MAX_GAP_INTERVALS * step):
        return []
    unit = sensor.unit_of_measure
    lowest = min(value for _, value in recent)
    factor = conversion_factor(unit, "L/h")
    critical = factor is not None and lowest * factor >= LEAK_CRITICAL_L_PER_H
    latest, value = recent[-1]
    return [
        raise_alert(
            sensor,
            AlertType.LEAK_DETECTED,
            "continuous_flow",
            AlertSeverity.CRITICAL if critical else AlertSeverity.WARNING,
            f"{label(sensor)}: flow above {amount(rule.zero_flow, unit)} for {duration_text(span)} without a break, "
            f"lowest {amount(lowest, unit)}, now {amount(value, unit)}",
            recent[0][0],
            latest,
            decided_at=now,
            reading_value=value,
            threshold_value=rule.zero_flow,
        )
    ]
