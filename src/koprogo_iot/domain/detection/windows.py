"""Window rules judged by the periodic evaluator over a sensor's recent readings: spikes, offline, faults; and
`lookback`, how much history they need.

A rule that looks for *events* (a spike, a step back, a jump) keeps its alert raised while an event lies in its
recent window and clears once the window holds none: so an evaluator running less often than the sensor reports
still sees every event, and re-judging the same window gives the same answer (no flapping, no repeat counted,
since `last_triggered_at` is the latest event's time).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime, timedelta

from koprogo_iot.domain.alerts import AlertDecision, AlertSeverity, AlertType
from koprogo_iot.domain.consumption import Point, StepKind, step_increase
from koprogo_iot.domain.detection.common import (
    HOUR,
    MAX_GAP_INTERVALS,
    WATER,
    amount,
    between,
    clear,
    duration_text,
    interval,
    is_gauge,
    label,
    muted,
    raise_alert,
    steps_after,
    up_to,
)
from koprogo_iot.domain.rules import AlertRules
from koprogo_iot.domain.sensors import IoTSensor

# A spike stays raised this long at least (or two sampling intervals if longer), so a periodic evaluator sees it.
SPIKE_HOLD = timedelta(minutes=15)
# A counter's step back or jump stays raised for a day: long enough for the syndic to see it in the day's alerts,
# short enough that a one-off glitch clears itself.
FAULT_WINDOW = timedelta(hours=24)
# A counter restarting (reboot, new meter) lands near zero: under 10 % of the index it had, as `consumption`'s
# ROLLOVER_WINDOW bounds a wrap. A drop that lands higher is the counter going backwards, a fault.
NEAR_ZERO = 0.10
# The window rules read a sensor's look-back in at most this many buckets of four readings each (see `resolution`):
# 6 hours at one bucket a 15 s, a day at one a minute.
MAX_WINDOW_BUCKETS = 1440
# A night window's end is at most a day back, plus the night itself, plus an hour for a DST night.
_DAY_AND_DST = timedelta(hours=25)


def spike_hold(sensor: IoTSensor) -> timedelta:
    return max(SPIKE_HOLD, 2 * interval(sensor))


def spike_decisions(
    sensor: IoTSensor, rules: AlertRules, points: Sequence[Point], now: datetime
) -> list[AlertDecision]:
    """On a gauge: a step between consecutive readings changing faster than `max_rate_per_hour` (in either
    direction) within `spike_hold` before now → ANOMALY_DETECTED "spike"; none → clear."""
    rule = rules.spike
    limit = rule.max_rate_per_hour
    if muted(sensor) or not rule.enabled or limit is None or not is_gauge(sensor):
        return []
    since = now - spike_hold(sensor)
    recent = steps_after(points, since, now)
    spikes = [
        (start, before, end, after)
        for (start, before), (end, after) in itertools.pairwise(recent)
        if end > since and end > start and abs(after - before) / ((end - start) / HOUR) > limit
    ]
    if not spikes:
        return [clear(sensor, AlertType.ANOMALY_DETECTED, "spike", now)]
    start, before, end, after = spikes[-1]
    unit = sensor.unit_of_measure
    rate = abs(after - before) / ((end - start) / HOUR)
    return [
        raise_alert(
            sensor,
            AlertType.ANOMALY_DETECTED,
            "spike",
            AlertSeverity.WARNING,
            f"{label(sensor)}: {amount(before, unit)} to {amount(after, unit)} in {duration_text(end - start)} "
            f"({rate:.4g} {unit}/h), maximum {amount(limit, unit + '/h')}",
            spikes[0][2],
            end,
            decided_at=now,
            reading_value=after,
            threshold_value=limit,
        )
    ]


def offline_decision(sensor: IoTSensor, rules: AlertRules, now: datetime) -> AlertDecision | None:
    """Silent for more than `missed_intervals` sampling intervals → SENSOR_OFFLINE "offline", dated the moment it
    became overdue (so re-checking a still silent sensor is no repeat); reporting in time → clear, dated its last
    reading. A sensor that never reported is not offline: it was never installed."""
    rule = rules.offline
    last = sensor.last_reading_at
    if muted(sensor) or not rule.enabled or last is None:
        return None
    overdue_at = last + rule.missed_intervals * interval(sensor)
    if now <= overdue_at:
        return clear(sensor, AlertType.SENSOR_OFFLINE, "offline", last)
    return raise_alert(
        sensor,
        AlertType.SENSOR_OFFLINE,
        "offline",
        AlertSeverity.WARNING,
        f"{label(sensor)}: no reading for {duration_text(now - last)} (last at {last:%Y-%m-%d %H:%M} UTC, "
        f"expected every {duration_text(interval(sensor))})",
        overdue_at,
        overdue_at,
        decided_at=now,
        reading_value=sensor.last_value,
    )


def faulty_window(sensor: IoTSensor, rules: AlertRules, points: Sequence[Point], now: datetime) -> list[AlertDecision]:
    """A device that lies. Gauges: stuck (the last `stuck_readings` readings all equal). Counters, over the last
    FAULT_WINDOW: backwards (a drop beyond jitter that is not a restart near zero) and jumps (a rise faster than
    `max_increase_per_hour`). Each raises SENSOR_FAULTY under its own rule and clears under it when absent."""
    rule = rules.faulty
    if muted(sensor) or not rule.enabled:
        return []
    points = up_to(points, now)
    if is_gauge(sensor):
        return _stuck(sensor, rule.stuck_readings, points, now) if rule.stuck_readings else []
    recent = between(points, now - FAULT_WINDOW, now)
    backwards: list[tuple[datetime, float, float]] = []  # (time, index before, index after)
    jumps: list[tuple[datetime, timedelta, float]] = []  # (time, step duration, increase)
    if recent:
        baseline = recent[0][1]  # the highest index since the last restart, as `counter_steps` keeps it
        for (start, _), (end, value) in itertools.pairwise(recent):
            increase, kind, new_baseline = step_increase(baseline, value, sensor.rollover)
            if kind is StepKind.RESET and value >= NEAR_ZERO * baseline:
                backwards.append((end, baseline, value))
            elif kind is StepKind.NORMAL and end > start:
                jumps.append((end, end - start, increase))
            baseline = new_baseline
    decisions: list[AlertDecision] = []
    unit = sensor.unit_of_measure
    if rule.detect_backwards:
        if backwards:
            at, before, after = backwards[-1]
            message = f"{label(sensor)}: index went back from {amount(before, unit)} to {amount(after, unit)}"
            decisions.append(_fault(sensor, "backwards", message, backwards[0][0], at, now, after, before))
        else:
            decisions.append(clear(sensor, AlertType.SENSOR_FAULTY, "backwards", now))
    if (limit := rule.max_increase_per_hour) is not None:
        fast = [(at, span, rise) for at, span, rise in jumps if rise / (span / HOUR) > limit]
        if fast:
            at, span, rise = fast[-1]
            message = (
                f"{label(sensor)}: index rose {amount(rise, unit)} in {duration_text(span)} "
                f"({rise / (span / HOUR):.4g} {unit}/h), maximum {amount(limit, unit + '/h')}"
            )
            decisions.append(_fault(sensor, "jump", message, fast[0][0], at, now, rise, limit))
        else:
            decisions.append(clear(sensor, AlertType.SENSOR_FAULTY, "jump", now))
    return decisions


def _stuck(sensor: IoTSensor, count: int, points: Sequence[Point], now: datetime) -> list[AlertDecision]:
    count = max(count, 2)  # one reading always equals itself
    if len(points) < count:
        return []  # too few readings to tell
    value = points[-1][1]
    if any(other != value for _, other in points[-count:]):
        return [clear(sensor, AlertType.SENSOR_FAULTY, "stuck", now)]
    first = len(points) - count
    while first > 0 and points[first - 1][1] == value:
        first -= 1
    since, latest = points[first][0], points[-1][0]
    message = (
        f"{label(sensor)}: stuck at {amount(value, sensor.unit_of_measure)} "
        f"for {len(points) - first} readings ({duration_text(latest - since)})"
    )
    return [_fault(sensor, "stuck", message, since, latest, now, value, None)]


def _fault(
    sensor: IoTSensor,
    rule: str,
    message: str,
    triggered_at: datetime,
    last_triggered_at: datetime,
    now: datetime,
    value: float,
    threshold: float | None,
) -> AlertDecision:
    return raise_alert(
        sensor,
        AlertType.SENSOR_FAULTY,
        rule,
        AlertSeverity.WARNING,
        message,
        triggered_at,
        last_triggered_at,
        decided_at=now,
        reading_value=value,
        threshold_value=threshold,
    )


def lookback(sensor: IoTSensor, rules: AlertRules) -> timedelta:
    """How far before `now` the window rules of this sensor read (the points to fetch); zero when none applies.
    The statistical rule is not included: it reads hourly values (`baseline_hours`), not readings."""
    step = interval(sensor)
    needs = [timedelta(0)]
    if muted(sensor):
        return timedelta(0)
    if rules.threshold.active and rules.threshold.duration_s:
        needs.append(timedelta(seconds=rules.threshold.duration_s) + MAX_GAP_INTERVALS * step)
    gauge = is_gauge(sensor)
    if gauge and rules.spike.enabled and rules.spike.max_rate_per_hour is not None:
        needs.append(spike_hold(sensor) + MAX_GAP_INTERVALS * step)
    if rules.leak.enabled and sensor.sensor_type in WATER:
        if gauge:
            needs.append(timedelta(hours=rules.leak.continuous_hours))
        else:
            night_hours = (rules.leak.night_end_hour - rules.leak.night_start_hour) % 24
            needs.append(_DAY_AND_DST + timedelta(hours=night_hours) + step)
    if rules.faulty.enabled:
        if gauge and rules.faulty.stuck_readings:
            # the run of equal readings is dated from its first one: read a little before the last N
            needs.append((rules.faulty.stuck_readings + MAX_GAP_INTERVALS) * step)
        elif not gauge and (rules.faulty.detect_backwards or rules.faulty.max_increase_per_hour is not None):
            needs.append(FAULT_WINDOW)
    return max(needs)


def resolution(sensor: IoTSensor, span: timedelta) -> timedelta:
    """The width of the buckets a look-back of `span` is read in, keeping four readings of each (first, last, lowest,
    highest): the sensor's sampling interval, or span / MAX_WINDOW_BUCKETS when that is coarser. A sensor reporting
    at its configured rate (or up to four times faster) keeps every reading, so its rules decide as on the raw
    series; a faster one is judged at that resolution, which bounds the points per sensor at any reading rate."""
    return max(interval(sensor), span / MAX_WINDOW_BUCKETS)
