"""The building balance alert: a main meter counting more than its building's unit meters, day after day.

Judged by the periodic evaluator once an hour over the last `BalanceRule.days` whole local days (their balance from
`domain.balance`, computed by the caller from stored readings). Raised when the unexplained share is above the
rule's threshold on every one of those days; cleared when the latest day is back at or below it. A day without a
share (a meter without readings) decides nothing. An estimated day still counts: a unit meter that stopped is one
of the causes the balance is there to reveal, and the message says the figures are estimated.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from koprogo_iot.domain.alerts import AlertDecision, AlertSeverity, AlertType
from koprogo_iot.domain.balance import BalanceBucket
from koprogo_iot.domain.consumption import DEFAULT_ZONE
from koprogo_iot.domain.detection.common import clear, label, muted, raise_alert
from koprogo_iot.domain.rules import AlertRules
from koprogo_iot.domain.sensors import IoTSensor

RULE = "balance"


def balance_decision(
    sensor: IoTSensor, rules: AlertRules, days: Sequence[BalanceBucket], now: datetime, zone: str = DEFAULT_ZONE
) -> AlertDecision | None:
    """`days`: the main meter's balance over its last whole local days, oldest first."""
    rule = rules.balance
    if muted(sensor) or not rule.enabled or not sensor.main_meter or not days:
        return None
    limit = rule.max_share_percent / 100
    judged = days[-rule.days :]
    shares = [d.share for d in judged]
    latest = shares[-1]
    if len(judged) == rule.days and all(s is not None and s > limit for s in shares):
        lowest = min(s for s in shares if s is not None)
        unexplained = sum(d.unexplained or 0.0 for d in judged)
        main = sum(d.main or 0.0 for d in judged)
        tz = ZoneInfo(zone)
        first, last = judged[0].start.astimezone(tz).date(), judged[-1].start.astimezone(tz).date()
        caveat = " Figures are estimated: a meter has a gap or no readings." if any(d.estimated for d in judged) else ""
        uom = sensor.unit_of_measure
        return raise_alert(
            sensor,
            AlertType.BUILDING_BALANCE,
            RULE,
            AlertSeverity.WARNING,
            f"{label(sensor)}: {lowest:.1%} or more of what the main meter counted went through no unit's meter "
            f"on each day from {first} to {last} ({unexplained:.3g} {uom} of {main:.3g} {uom}; threshold "
            f"{rule.max_share_percent:g} %). Look for a leak on the common pipes, a unit meter missing or stopped, "
            f"or a bypass.{caveat}",
            judged[0].start,
            judged[-1].end,
            decided_at=now,
            reading_value=round((latest or 0.0) * 100, 3),
            threshold_value=rule.max_share_percent,
        )
    if latest is not None and latest <= limit:
        return clear(sensor, AlertType.BUILDING_BALANCE, RULE, now)
    return None
