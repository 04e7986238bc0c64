"""IoT sensors: what they measure, how they are configured, and when a value calls for an alert."""

from __future__ import annotations

import dataclasses
import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TypeVar
from uuid import UUID

from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.errors import InvalidValue

MIN_SAMPLING_INTERVAL = 10  # seconds, from the specification
MAX_SAMPLING_INTERVAL = 86_400  # 24 h
MAX_ROLLOVER = 1e12  # larger than any meter register (12 digits), small enough to keep a float's precision
# Characters that would break the MQTT topic `koprogo/{org}/{building}/{sensor_id}/readings`.
_TOPIC_UNSAFE = frozenset("/+#\x00")
_E = TypeVar("_E", bound=StrEnum)


class SensorType(StrEnum):
    COLD_WATER = "cold_water"
    HOT_WATER = "hot_water"
    GAS = "gas"
    ELECTRICITY = "electricity"
    COGENERATION = "cogeneration"
    HEATING = "heating"
    TEMPERATURE = "temperature"
    HUMIDITY = "humidity"

    @property
    def may_be_negative(self) -> bool:
        """Only temperatures go below zero; a negative water or energy value is a device fault."""
        return self in (SensorType.TEMPERATURE, SensorType.HEATING)

    @property
    def default_kind(self) -> MeasurementKind:
        if self in (SensorType.TEMPERATURE, SensorType.HUMIDITY, SensorType.HEATING):
            return MeasurementKind.INSTANTANEOUS
        return MeasurementKind.CUMULATIVE


class MeasurementKind(StrEnum):
    CUMULATIVE = "cumulative"  # a meter index (m³, kWh): consumption is its increase
    INSTANTANEOUS = "instantaneous"  # a gauge (W, °C, %, L/h)


class DeviceFormat(StrEnum):
    """How the device talks: the native payload, or a field format used in the field."""

    NATIVE = "native"  # koprogo/{org}/{building}/{sensor_id}/readings, one value per message
    SHELLY = "shelly"  # Gen2+ RPC notifications
    CHIRPSTACK = "chirpstack"  # ChirpStack v4 uplink events (LoRaWAN)
    TTN = "ttn"  # The Things Stack v3 uplinks (LoRaWAN)
    WMBUS = "wmbus"  # wmbusmeters JSON (Kamstrup and other wireless M-Bus meters)
    TASMOTA = "tasmota"  # Tasmota SENSOR telemetry

    def device_key(self, device_id: str) -> str:
        """A device id as this family compares it. Hexadecimal ids (DevEUI, MAC-based Shelly ids, wM-Bus meter
        ids) are case-insensitive: TTS writes DevEUIs in upper case, ChirpStack in lower case, installers either
        way; they are kept in lower case. Native serial numbers and Tasmota topics are case-sensitive names."""
        return device_id.lower() if self in _CASE_INSENSITIVE else device_id

    def topic(self, organization_id: UUID | str, building_id: UUID | str, device_id: str) -> str:
        """The MQTT topic (or, for Shelly and Tasmota, the prefix) to configure on the device or its bridge."""
        base = f"koprogo/{organization_id}/{building_id}"
        return {
            DeviceFormat.NATIVE: f"{base}/{device_id}/readings",
            # Shelly: its "MQTT prefix" setting; the device publishes <prefix>/events/rpc and <prefix>/status/...
            DeviceFormat.SHELLY: f"{base}/shelly/{device_id}",
            # LoRaWAN network servers publish under their own topic, which a bridge (or an integration) forwards
            # under this prefix; `+` is the application (and, for TTS, its device id, not the DevEUI).
            DeviceFormat.CHIRPSTACK: f"{base}/chirpstack/application/+/device/{device_id}/event/up",
            DeviceFormat.TTN: f"{base}/ttn/v3/+/devices/+/up",
            DeviceFormat.WMBUS: f"{base}/wmbus/{device_id}",
            # Tasmota: FullTopic koprogo/<org>/<building>/tasmota/%prefix%/%topic%/ with Topic = the device id.
            DeviceFormat.TASMOTA: f"{base}/tasmota/tele/{device_id}/SENSOR",
        }[self]


_CASE_INSENSITIVE = frozenset({DeviceFormat.SHELLY, DeviceFormat.CHIRPSTACK, DeviceFormat.TTN, DeviceFormat.WMBUS})


class SensorStatus(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"  # switched off on purpose: its messages are refused
    MAINTENANCE = "maintenance"  # readings are kept but raise no alert
    FAULTY = "faulty"


def _member(enum: type[_E], value: object, name: str) -> _E:
    try:
        return enum(str(value))
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        raise InvalidValue(f"{name} must be one of {allowed}, not {value!r}") from None


def _finite_or_none(value: float | None, name: str) -> float | None:
    if value is not None and not math.isfinite(value):
        raise InvalidValue(f"{name} must be a finite number")
    return value


@dataclass(frozen=True, slots=True)
class IoTSensor:
    """A sensor installed in a building; `sensor_id` is the manufacturer's id (serial number, MAC, DevEUI)."""

    organization_id: UUID
    building_id: UUID
    sensor_id: str
    sensor_type: SensorType
    manufacturer: str
    model: str
    location: str
    unit_of_measure: str
    sampling_interval: int = 300
    kind: MeasurementKind | None = None  # None: the sensor type's usual kind
    device_format: DeviceFormat = DeviceFormat.NATIVE
    device_field: str = ""  # which value of a multi-value device, e.g. "emdata:0.total_act"; "" for native
    unit_id: UUID | None = None  # None: a common meter of the building
    firmware_version: str | None = None
    floor: int | None = None
    calibration_factor: float = 1.0
    alert_threshold_min: float | None = None
    alert_threshold_max: float | None = None
    # A counter's register size: the index at which it returns to 0 (100000 for a 99999.999 m³ register). Known,
    # a wrap counts what the meter measured; unknown (None), it counts as a reset (domain.consumption).
    rollover: float | None = None
    # The building's main meter for its sensor type (its medium): the counter the units' counters of that type are
    # balanced against (domain.balance). One per building and type; a common counter, never a unit's.
    main_meter: bool = False
    status: SensorStatus = SensorStatus.ACTIVE
    last_reading_at: datetime | None = None
    last_value: float | None = None
    last_battery_level: float | None = None
    id: UUID = field(default_factory=uuid.uuid4)
    installed_at: datetime = field(default_factory=utcnow)
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)

    def __post_init__(self) -> None:
        sensor_id = self.sensor_id.strip()
        if not sensor_id:
            raise InvalidValue("sensor id cannot be empty")
        if len(sensor_id) > 255 or any(c in _TOPIC_UNSAFE or c.isspace() for c in sensor_id):
            raise InvalidValue("sensor id must be at most 255 characters without spaces, '/', '+' or '#'")
        object.__setattr__(self, "sensor_id", sensor_id)
        sensor_type = _member(SensorType, self.sensor_type, "sensor type")
        object.__setattr__(self, "sensor_type", sensor_type)
        object.__setattr__(self, "status", _member(SensorStatus, self.status, "status"))
        object.__setattr__(self, "kind", _member(MeasurementKind, self.kind or sensor_type.default_kind, "kind"))
        device_format = _member(DeviceFormat, self.device_format, "device format")
        object.__setattr__(self, "device_format", device_format)
        object.__setattr__(self, "sensor_id", device_format.device_key(sensor_id))
        object.__setattr__(self, "device_field", self.device_field.strip())
        if device_format is DeviceFormat.NATIVE and self.device_field:
            raise InvalidValue("a native sensor sends one value: it has no device field")
        if device_format is not DeviceFormat.NATIVE and not self.device_field:
            raise InvalidValue(f"a {device_format.value} sensor needs the device field it reads, e.g. a total")
        if not MIN_SAMPLING_INTERVAL <= self.sampling_interval <= MAX_SAMPLING_INTERVAL:
            raise InvalidValue(
                f"sampling interval must be between {MIN_SAMPLING_INTERVAL} s and {MAX_SAMPLING_INTERVAL} s (24 h)"
            )
        if not self.unit_of_measure.strip():
            raise InvalidValue("unit of measure cannot be empty")
        calibration = _finite_or_none(self.calibration_factor, "calibration factor")
        if calibration is None or calibration <= 0:
            raise InvalidValue("calibration factor must be a positive number")
        low = _finite_or_none(self.alert_threshold_min, "minimum threshold")
        high = _finite_or_none(self.alert_threshold_max, "maximum threshold")
        if low is not None and high is not None and low >= high:
            raise InvalidValue("minimum threshold must be below maximum threshold")
        rollover = _finite_or_none(self.rollover, "rollover")
        if rollover is not None and not 0 < rollover <= MAX_ROLLOVER:
            raise InvalidValue(f"rollover must be a register size above 0 and at most {MAX_ROLLOVER:g}")
        if rollover is not None and self.measurement_kind is not MeasurementKind.CUMULATIVE:
            raise InvalidValue("only a counter (cumulative sensor) has a rollover")
        if self.main_meter and (self.measurement_kind is not MeasurementKind.CUMULATIVE or self.unit_id is not None):
            raise InvalidValue("a main meter is a common counter (cumulative, without a unit)")
        if self.last_battery_level is not None and not 0 <= self.last_battery_level <= 100:
            raise InvalidValue("battery level must be between 0 and 100")

    @property
    def measurement_kind(self) -> MeasurementKind:
        """The resolved kind (never None after construction)."""
        return MeasurementKind(self.kind or self.sensor_type.default_kind)

    @property
    def mqtt_topic(self) -> str:
        """Where the device publishes (a prefix for Shelly devices): see `DeviceFormat.topic`."""
        return DeviceFormat(self.device_format).topic(self.organization_id, self.building_id, self.sensor_id)

    @property
    def alert_enabled(self) -> bool:
        return self.alert_threshold_min is not None or self.alert_threshold_max is not None

    def changed(self, **changes: object) -> IoTSensor:
        """A copy with `changes` applied, validated again, and `updated_at` set to now."""
        return dataclasses.replace(self, **changes, updated_at=utcnow())  # type: ignore[arg-type]

    def calibrated(self, factor: float) -> IoTSensor:
        return self.changed(calibration_factor=factor)

    def with_thresholds(self, minimum: float | None, maximum: float | None) -> IoTSensor:
        return self.changed(alert_threshold_min=minimum, alert_threshold_max=maximum)

    def calibrate(self, raw_value: float) -> float:
        """The physical value for a raw device value."""
        return raw_value * self.calibration_factor

    def accepts(self, value: float) -> str | None:
        """Why `value` cannot be a reading of this sensor, or None when it can."""
        if not math.isfinite(value):
            return "value is not a finite number"
        if value < 0 and not self.sensor_type.may_be_negative:
            return f"a {self.sensor_type.value} reading cannot be negative"
        return None
