"""Alert rules: what each detector looks for, with built-in defaults per sensor type.

An organization sets defaults per sensor type and may override them per sensor; both are stored as *partial*
documents (only the fields they change) and layered: built-in defaults < the type's defaults < the sensor's
override < the sensor's own `alert_threshold_min`/`alert_threshold_max` (the seed's fields, kept authoritative).

Per-reading rules (threshold without duration, battery, device flags) are decided in ingestion from the reading
and the sensor; window rules (threshold with duration, spike, leak, offline, stuck/backwards/jumps, statistical)
are evaluated periodically over stored readings by one process at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

import msgspec

from koprogo_iot.domain.errors import InvalidValue
from koprogo_iot.domain.sensors import IoTSensor, SensorType

log = logging.getLogger(__name__)

Partial = dict[str, Any]  # a rules document as people wrote it: only the fields it changes
_Hour = Annotated[int, msgspec.Meta(ge=0, le=23)]
_Positive = Annotated[float, msgspec.Meta(gt=0)]
_Fraction = Annotated[float, msgspec.Meta(ge=0, le=10)]


class _Rule(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    enabled: bool = True


class ThresholdRule(_Rule, frozen=True):
    """Min/max with hysteresis: an active alert clears only once the value is back past the clear level."""

    minimum: float | None = None
    maximum: float | None = None
    clear_minimum: float | None = None  # None: `minimum` itself (no hysteresis)
    clear_maximum: float | None = None  # None: `maximum` itself
    duration_s: Annotated[int, msgspec.Meta(ge=0, le=7 * 86_400)] = 0  # >0: the condition must hold this long
    critical_excess: _Fraction = 0.25  # this far past the threshold (fraction of it) is critical, not a warning

    @property
    def active(self) -> bool:
        return self.enabled and (self.minimum is not None or self.maximum is not None)

    @property
    def clear_low(self) -> float | None:
        return self.minimum if self.clear_minimum is None else self.clear_minimum

    @property
    def clear_high(self) -> float | None:
        return self.maximum if self.clear_maximum is None else self.clear_maximum

    def crossed(self, value: float) -> float | None:
        """The threshold `value` is beyond (minimum checked first, as the specification does), or None."""
        if not self.active:
            return None
        if self.minimum is not None and value < self.minimum:
            return self.minimum
        if self.maximum is not None and value > self.maximum:
            return self.maximum
        return None

    def clears(self, value: float) -> bool:
        """Whether `value` is back within the clear levels (past the hysteresis band)."""
        low, high = self.clear_low, self.clear_high
        return (low is None or value >= low) and (high is None or value <= high)


class SpikeRule(_Rule, frozen=True):
    """A gauge changing faster than `max_rate_per_hour` (sensor units per hour) between two readings."""

    enabled: bool = False
    max_rate_per_hour: _Positive | None = None


class LeakRule(_Rule, frozen=True):
    """Water that never stops: a counter rising at every step of the night window (local hours), or a flow gauge
    that never drops to `zero_flow` or below for `continuous_hours`."""

    night_start_hour: _Hour = 1
    night_end_hour: _Hour = 5
    zero_flow: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    continuous_hours: Annotated[float, msgspec.Meta(gt=0, le=168)] = 6.0
    # A counter standing still this long is a pause (no leak). Not any single flat step: a meter showing whole
    # litres, read every 5 minutes, shows a 3 L/h leak as flat steps between its litres.
    min_pause_minutes: Annotated[float, msgspec.Meta(ge=0, le=600)] = 30.0


class OfflineRule(_Rule, frozen=True):
    """No reading for `missed_intervals` times the sensor's sampling interval."""

    missed_intervals: Annotated[float, msgspec.Meta(ge=1.5, le=1000)] = 3.0


class BatteryRule(_Rule, frozen=True):
    """Battery at or under `low_percent`; clears at or above `clear_percent`."""

    low_percent: Annotated[float, msgspec.Meta(ge=0, le=100)] = 20.0
    clear_percent: Annotated[float, msgspec.Meta(ge=0, le=100)] = 25.0


class FaultyRule(_Rule, frozen=True):
    """A device that lies: stuck gauge, counter going backwards (beyond jitter, and not a reset to zero),
    implausible counter jumps, device status flags (any wM-Bus flag; `LEAK`/`BURST` are critical)."""

    stuck_readings: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 0  # 0: off; gauges only
    max_increase_per_hour: _Positive | None = None  # counters: a faster rise is an implausible jump
    detect_backwards: bool = True
    device_flags: bool = True


class StatisticalRule(_Rule, frozen=True):
    """An hour whose value (gauge mean, counter consumption) is a robust z-score outlier against the sensor's
    own hour-of-week baseline (median and MAD of the same hour in previous weeks)."""

    enabled: bool = False
    z_threshold: Annotated[float, msgspec.Meta(gt=0)] = 4.0
    baseline_weeks: Annotated[int, msgspec.Meta(ge=2, le=52)] = 4
    min_samples: Annotated[int, msgspec.Meta(ge=2)] = 3


class BalanceRule(_Rule, frozen=True):
    """A building's main meter counting more than the sum of its units' meters of the same medium: the unexplained
    share above `max_share_percent` on each of the last `days` whole local days. Judged on main meters only.

    3 %: a meter of the European Measuring Instruments Directive may err by 2 % at usual flows, so a sum of unit
    meters against a main meter can differ by that much with nothing wrong; beyond it, water or energy is lost or
    uncounted. 3 days: one day's difference can be a meter's reading delayed across midnight."""

    max_share_percent: Annotated[float, msgspec.Meta(gt=0, le=100)] = 3.0
    days: Annotated[int, msgspec.Meta(ge=1, le=31)] = 3


class AlertRules(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    threshold: ThresholdRule = ThresholdRule()
    spike: SpikeRule = SpikeRule()
    leak: LeakRule = LeakRule()
    offline: OfflineRule = OfflineRule()
    battery: BatteryRule = BatteryRule()
    faulty: FaultyRule = FaultyRule()
    statistical: StatisticalRule = StatisticalRule()
    balance: BalanceRule = BalanceRule()

    def __post_init__(self) -> None:
        t = self.threshold
        if t.minimum is not None and t.maximum is not None and t.minimum >= t.maximum:
            raise InvalidValue("threshold.minimum must be below threshold.maximum")
        if t.maximum is not None and t.clear_maximum is not None and t.clear_maximum > t.maximum:
            raise InvalidValue("threshold.clear_maximum cannot be above threshold.maximum")
        if t.minimum is not None and t.clear_minimum is not None and t.clear_minimum < t.minimum:
            raise InvalidValue("threshold.clear_minimum cannot be below threshold.minimum")
        if self.battery.clear_percent < self.battery.low_percent:
            raise InvalidValue("battery.clear_percent cannot be below battery.low_percent")
        if self.leak.night_start_hour == self.leak.night_end_hour:
            raise InvalidValue("leak.night_start_hour and leak.night_end_hour must differ")

    def as_dict(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)  # type: ignore[no-any-return]


_WATER = (SensorType.COLD_WATER, SensorType.HOT_WATER)


def builtin_defaults(sensor_type: SensorType) -> dict[str, Any]:
    """The platform's partial rules for a sensor type, before any organization's choices."""
    if sensor_type in _WATER:
        return {}
    return {"leak": {"enabled": False}}


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_partial(document: object) -> dict[str, Any]:
    """Validate a partial rules document (as the API receives it); raise `InvalidValue` with the faulty path."""
    if not isinstance(document, Mapping):
        raise InvalidValue("rules must be a JSON object")
    layer(document)  # validates by building rules over the built-in defaults
    return dict(document)


def layer(*partials: Mapping[str, Any] | None) -> AlertRules:
    """Rules from partial documents, later ones winning field by field."""
    merged: dict[str, Any] = {}
    for partial in partials:
        if partial:
            merged = _deep_merge(merged, partial)
    try:
        return msgspec.convert(merged, AlertRules)
    except msgspec.ValidationError as exc:
        raise InvalidValue(f"invalid alert rules: {exc}") from None


def effective_rules(
    sensor: IoTSensor,
    type_defaults: Mapping[str, Any] | None = None,
    override: Mapping[str, Any] | None = None,
) -> AlertRules:
    """The rules that apply to `sensor`: built-in < organization's type defaults < sensor override < its thresholds."""
    layers = (builtin_defaults(sensor.sensor_type), type_defaults, override)
    own: dict[str, Any] = {}
    if sensor.alert_threshold_min is not None or sensor.alert_threshold_max is not None:
        # A clear level chosen for other thresholds (a type default) that falls outside the sensor's own
        # thresholds is dropped: the threshold itself then clears.
        threshold = layer(*layers).threshold
        low, high = sensor.alert_threshold_min, sensor.alert_threshold_max
        if low is not None:
            own["minimum"] = low
            if threshold.clear_minimum is not None and threshold.clear_minimum < low:
                own["clear_minimum"] = None
        if high is not None:
            own["maximum"] = high
            if threshold.clear_maximum is not None and threshold.clear_maximum > high:
                own["clear_maximum"] = None
    return layer(*layers, {"threshold": own} if own else None)


def layered(
    sensor: IoTSensor, type_defaults: Mapping[str, Any] | None, override: Mapping[str, Any] | None
) -> AlertRules:
    """`effective_rules`, degraded rather than failing when stored layers contradict each other.

    Each layer is validated when it is written, but a later change of another layer (the type's defaults, the
    sensor's thresholds) can make the combination invalid (say a minimum above the maximum). Detection must go on:
    the sensor then gets its rules without its override, and if need be without its type's defaults too.
    """
    for defaults, own in ((type_defaults, override), (type_defaults, None)):
        try:
            return effective_rules(sensor, defaults, own)
        except InvalidValue as exc:
            log.warning(
                "alert rules of sensor %s do not combine (%s): leaving a layer out",
                sensor.id,
                exc,
                extra={"organization_id": str(sensor.organization_id), "sensor_id": sensor.sensor_id},
            )
    return effective_rules(sensor)  # the built-in defaults and the sensor's own thresholds (checked by IoTSensor)


@dataclass(frozen=True, slots=True)
class OrganizationRules:
    """An organization's stored rule layers, from which any of its sensors' effective rules are computed."""

    defaults: Mapping[SensorType, Partial]
    overrides: Mapping[UUID, Partial]

    def for_sensor(self, sensor: IoTSensor) -> AlertRules:
        return layered(sensor, self.defaults.get(sensor.sensor_type), self.overrides.get(sensor.id))
