"""Statistical outliers: an hour unlike the same hour of the sensor's previous weeks.

The baseline is the same local hour-of-week (Tuesday 03:00 in Brussels) in each of the previous `baseline_weeks`
weeks, so habits (showers at 07:00, heating off at night, the weekend) are part of "normal" and DST does not shift
them by an hour. Median and MAD (median absolute deviation) resist the odd past outlier that a mean and standard
deviation would absorb: z = 0.6745 (x - median) / MAD is about a standard z-score for normal data (Iglewicz and
Hoaglin's modified z-score).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, tzinfo

from koprogo_iot.domain.alerts import AlertDecision, AlertSeverity, AlertType
from koprogo_iot.domain.consumption import DEFAULT_ZONE, zone
from koprogo_iot.domain.detection.common import HOUR, amount, clear, label, muted, raise_alert
from koprogo_iot.domain.errors import InvalidValue
from koprogo_iot.domain.rules import AlertRules
from koprogo_iot.domain.sensors import IoTSensor

# A MAD of 0 (half the weeks or more had exactly the same value, e.g. no water at 03:00) would make any change an
# infinite z. Then, as IBM's modified z-score does, use the mean absolute deviation (scaled by 1.2533 = sqrt(pi/2)
# to estimate the same spread); if that is 0 too (every week identical) use MIN_SPREAD of the median, and when the
# median is 0 as well, any value other than 0 is beyond every threshold: it never happened at that hour before.
MEAN_AD_SCALE = 1.253314
MIN_SPREAD = 0.05


def baseline_hours(hour: datetime, weeks: int, tz: tzinfo | str = DEFAULT_ZONE) -> list[datetime]:
    """The UTC starts of the same local hour-of-week in each of the `weeks` previous weeks, newest first."""
    local = hour.astimezone(zone(tz))
    # Subtracting days from an aware local time keeps its wall-clock hour; converting back applies that week's offset.
    return [(local - timedelta(weeks=k)).astimezone(UTC) for k in range(1, weeks + 1)]


def robust_z(value: float, samples: list[float]) -> tuple[float, float, float]:
    """(z, median, spread) of `value` against `samples`, spread being MAD / 0.6745 or its fallback (see above)."""
    if not samples:
        raise InvalidValue("a robust z-score needs samples")
    middle = statistics.median(samples)
    deviations = [abs(sample - middle) for sample in samples]
    spread = statistics.median(deviations) / 0.6745
    if spread == 0:
        spread = MEAN_AD_SCALE * statistics.fmean(deviations) or MIN_SPREAD * abs(middle)
    if spread == 0:
        return (0.0 if value == middle else math.copysign(math.inf, value - middle)), middle, 0.0
    return (value - middle) / spread, middle, spread


def statistical_decision(
    sensor: IoTSensor,
    rules: AlertRules,
    hourly: Mapping[datetime, float],
    hour: datetime,
    now: datetime,
    tz: tzinfo | str = DEFAULT_ZONE,
) -> AlertDecision | None:
    """Judge `hour` (its UTC start; `hourly` maps hour starts to the hour's value: a gauge's mean, a counter's
    consumption). |z| above `z_threshold` → ANOMALY_DETECTED "statistical"; otherwise clear. Nothing when the hour
    has not ended by `now`, has no value, or fewer than `min_samples` previous weeks have one."""
    rule = rules.statistical
    if muted(sensor) or not rule.enabled:
        return None
    end = hour + HOUR
    value = hourly.get(hour)
    if end > now or value is None:
        return None
    samples = [hourly[week] for week in baseline_hours(hour, rule.baseline_weeks, tz) if week in hourly]
    if len(samples) < rule.min_samples:
        return None
    z, middle, _ = robust_z(value, samples)
    if abs(z) <= rule.z_threshold:
        return clear(sensor, AlertType.ANOMALY_DETECTED, "statistical", end)
    unit = sensor.unit_of_measure
    local = hour.astimezone(zone(tz))
    return raise_alert(
        sensor,
        AlertType.ANOMALY_DETECTED,
        "statistical",
        AlertSeverity.WARNING,
        f"{label(sensor)}: {amount(value, unit)} on {local:%a %H:00}, usually {amount(middle, unit)} "
        f"(median of {len(samples)} weeks), z = {z:.1f}, limit {rule.z_threshold:g}",
        hour,
        end,
        decided_at=now,
        reading_value=value,
        threshold_value=middle,
    )
