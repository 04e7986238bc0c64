"""Alerts whose rule no longer applies: switched off, or its threshold removed, since the alert was raised.

Nothing would ever judge such an alert again, so it would stay active for good; the window evaluator clears it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from koprogo_iot.domain.alerts import ClearAlert, IoTAlert
from koprogo_iot.domain.rules import AlertRules

# Whether each rule, by the name alerts carry in `rule`, is still on in a sensor's effective rules.
_STILL_ON: dict[str, Callable[[AlertRules], bool]] = {
    "threshold": lambda r: r.threshold.active,
    "battery": lambda r: r.battery.enabled,
    "device_flag": lambda r: r.faulty.enabled and r.faulty.device_flags,
    "offline": lambda r: r.offline.enabled,
    "night_flow": lambda r: r.leak.enabled,
    "continuous_flow": lambda r: r.leak.enabled,
    "spike": lambda r: r.spike.enabled and r.spike.max_rate_per_hour is not None,
    "stuck": lambda r: r.faulty.enabled and r.faulty.stuck_readings > 0,
    "backwards": lambda r: r.faulty.enabled and r.faulty.detect_backwards,
    "jump": lambda r: r.faulty.enabled and r.faulty.max_increase_per_hour is not None,
    "statistical": lambda r: r.statistical.enabled,
    "balance": lambda r: r.balance.enabled,
}


def retired_rule(alert: IoTAlert, rules: AlertRules, now: datetime) -> ClearAlert | None:
    """A clear for an active alert whose rule is now off for its sensor; None otherwise (or for unknown rules)."""
    still_on = _STILL_ON.get(alert.rule or "")
    if alert.cleared_at is not None or still_on is None or still_on(rules):
        return None
    return ClearAlert(alert.sensor_id, alert.alert_type, now, alert.rule)
