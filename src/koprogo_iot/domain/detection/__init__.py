"""Anomaly detection: pure functions that turn a sensor, its rules and its readings into alert decisions.

- Per reading (ingestion, stateless): `reading_decisions` — threshold without duration, low battery, device flags.
- Per window (the periodic evaluator, one process at a time): `threshold_window`, `spike_decisions`, `night_leak`,
  `continuous_flow_leak`, `offline_decision`, `faulty_window`, `statistical_decision`, `balance_decision` (a
  building's main meter against its unit meters); `lookback` says how much history the point-based ones need and
  `resolution` how finely they read it, `baseline_hours` which hourly values the statistical one needs;
  `retired_rule` clears an alert whose rule was switched off since.
Nothing here reads the clock or does I/O: `now` is a parameter, points are (time, calibrated value), sorted.
A raise's `last_triggered_at` is the time of its evidence, so judging the same evidence twice is not a repeat.
"""

from koprogo_iot.domain.detection.balance import balance_decision
from koprogo_iot.domain.detection.leaks import LEAK_CRITICAL_L_PER_H, continuous_flow_leak, night_leak, night_window
from koprogo_iot.domain.detection.outliers import baseline_hours, robust_z, statistical_decision
from koprogo_iot.domain.detection.per_reading import reading_decisions
from koprogo_iot.domain.detection.retired import retired_rule
from koprogo_iot.domain.detection.threshold import threshold_window
from koprogo_iot.domain.detection.windows import (
    FAULT_WINDOW,
    MAX_WINDOW_BUCKETS,
    NEAR_ZERO,
    SPIKE_HOLD,
    faulty_window,
    lookback,
    offline_decision,
    resolution,
    spike_decisions,
    spike_hold,
)

__all__ = [
    "FAULT_WINDOW",
    "LEAK_CRITICAL_L_PER_H",
    "MAX_WINDOW_BUCKETS",
    "NEAR_ZERO",
    "SPIKE_HOLD",
    "balance_decision",
    "baseline_hours",
    "continuous_flow_leak",
    "faulty_window",
    "lookback",
    "night_leak",
    "night_window",
    "offline_decision",
    "reading_decisions",
    "resolution",
    "retired_rule",
    "robust_z",
    "spike_decisions",
    "spike_hold",
    "statistical_decision",
    "threshold_window",
]
