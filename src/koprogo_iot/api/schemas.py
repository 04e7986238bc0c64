"""Request and response bodies. Types only: the domain objects enforce the business rules."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from koprogo_iot.api.inputs import Email, Finite, Instant, Int32, Register, Text
from koprogo_iot.domain.alerts import AlertSeverity, AlertStatus, AlertType, IoTAlert
from koprogo_iot.domain.readings import ReadingQuality
from koprogo_iot.domain.retention import MAX_RAW_RETENTION_MONTHS
from koprogo_iot.domain.sensors import DeviceFormat, IoTSensor, MeasurementKind, SensorStatus, SensorType
from koprogo_iot.domain.tenancy import Channel, Role, User


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not silently ignored


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class LoginIn(_In):
    email: Text
    password: Text


class PasswordIn(_In):
    current_password: Text
    new_password: Text = Field(description="at least 8 characters")


class UnitsIn(_In):
    unit_ids: list[UUID] = Field(description="the owner's units, replacing those they had (at least one)")


class ActiveIn(_In):
    active: bool = Field(description="false: the user can no longer log in, and is told of no alert")


class PasswordResetIn(_In):
    new_password: Text = Field(description="at least 8 characters; tell the user, who can change it in their account")


class UserOut(_Out):
    id: UUID
    organization_id: UUID
    email: str
    full_name: str
    role: Role
    unit_ids: list[UUID]
    phone: str | None = None
    push_topic: str | None = None
    muted_channels: list[Channel] = Field(
        default_factory=list, description="channels on which the routes naming the user's role do not reach them"
    )
    deactivated_at: datetime | None = Field(None, description="set: removed by a manager, cannot log in")

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            organization_id=user.organization_id,
            email=user.email,
            full_name=user.full_name,
            role=user.role,
            unit_ids=sorted(user.unit_ids, key=str),
            phone=user.phone,
            push_topic=user.push_topic,
            muted_channels=sorted(user.muted_channels),
            deactivated_at=user.deactivated_at,
        )


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    user: UserOut


class OrganizationIn(_In):
    name: Text


class OrganizationOut(_Out):
    id: UUID
    name: str
    created_at: datetime
    raw_retention_months: int | None = Field(
        description="months of raw readings kept besides the current one; null: the platform's "
        "KOPROGO_RAW_RETENTION_MONTHS"
    )


class RetentionIn(_In):
    raw_retention_months: int | None = Field(
        ge=1,
        le=MAX_RAW_RETENTION_MONTHS,
        description="months of raw readings kept besides the current one (rollups are kept for good); null: the "
        "platform's setting",
    )


class BuildingIn(_In):
    name: Text
    address: Text = ""


class BuildingOut(_Out):
    id: UUID
    organization_id: UUID
    name: str
    address: str
    created_at: datetime


class UnitIn(_In):
    building_id: UUID
    name: Text
    floor: Int32 | None = None


class UnitUpdate(_In):
    name: Text
    floor: Int32 | None = None


class UnitOut(_Out):
    id: UUID
    organization_id: UUID
    building_id: UUID
    name: str
    floor: int | None
    created_at: datetime


class UserIn(_In):
    email: Email
    password: Text
    full_name: Text
    role: Role
    unit_ids: list[UUID] = []
    organization_id: UUID | None = Field(None, description="superadmin only: create the user in this organization")
    phone: Text | None = Field(None, description="for SMS alerts, e.g. +32 470 12 34 56")
    push_topic: Text | None = Field(None, description="for push alerts: the user's topic on the push server (ntfy)")


class ContactsIn(_In):
    """A user's SMS and push contacts (email is the login); null or empty removes one. And the channels on which
    the user wants no alert (their opt-out)."""

    phone: Text | None = Field(None, description="for SMS alerts, e.g. +32 470 12 34 56")
    push_topic: Text | None = Field(None, description="for push alerts: the user's topic on the push server (ntfy)")
    muted_channels: list[Channel] | None = Field(
        None,
        description='channels on which the routes naming the user\'s role do not reach them, e.g. ["sms"] '
        "(a route naming a contact still does); null: unchanged",
    )


class SensorUpdate(_In):
    """Every field optional: only those sent change."""

    building_id: UUID | None = None
    unit_id: UUID | None = None
    sensor_id: Text | None = Field(None, description="manufacturer id: serial number, MAC address, DevEUI")
    device_format: DeviceFormat | None = Field(
        None, description="how the device talks: native payloads, or a device family (GET /iot/devices/formats)"
    )
    device_field: Text | None = Field(
        None,
        description="which value of a multi-value device this sensor reads, e.g. emdata:0.total_act; "
        "empty for native sensors",
    )
    sensor_type: SensorType | None = None
    kind: MeasurementKind | None = None
    manufacturer: Text | None = None
    model: Text | None = None
    firmware_version: Text | None = None
    location: Text | None = None
    floor: Int32 | None = None
    unit_of_measure: Text | None = None
    sampling_interval: Int32 | None = Field(None, description="seconds, 10 to 86400")
    calibration_factor: Finite | None = None
    alert_threshold_min: Finite | None = None
    alert_threshold_max: Finite | None = None
    rollover: Register | None = Field(
        None,
        description="a counter's register size: the index at which it returns to 0, e.g. 100000 for a 99999.999 m³ "
        "register; null: unknown (a wrap then counts as a reset)",
    )
    main_meter: bool = Field(
        False,
        description="the building's main meter of its sensor type: a common counter, which the building balance "
        "compares with the sum of its units' counters of that type; one per building and type",
    )
    status: SensorStatus | None = None
    installed_at: Instant | None = None


class SensorIn(SensorUpdate):
    building_id: UUID
    sensor_id: Text = Field(description="manufacturer id: serial number, MAC address, DevEUI")
    device_format: DeviceFormat = DeviceFormat.NATIVE
    device_field: Text = ""
    sensor_type: SensorType
    manufacturer: Text
    model: Text
    location: Text
    unit_of_measure: Text
    sampling_interval: Int32 = Field(300, description="seconds, 10 to 86400")

    def fields(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True) | {"sampling_interval": self.sampling_interval}


class CalibrateIn(_In):
    calibration_factor: Finite = Field(description="multiplies every raw value the device sends")


class SensorOut(_Out):
    id: UUID
    organization_id: UUID
    building_id: UUID
    unit_id: UUID | None
    sensor_id: str
    device_format: DeviceFormat
    device_field: str
    sensor_type: SensorType
    kind: MeasurementKind
    manufacturer: str
    model: str
    firmware_version: str | None
    location: str
    floor: int | None
    unit_of_measure: str
    sampling_interval: int
    calibration_factor: float
    mqtt_topic: str = Field(
        description="where the device publishes: the topic (native, LoRaWAN bridges, wmbusmeters, Tasmota) or the "
        "MQTT prefix (Shelly) to configure"
    )
    alert_threshold_min: float | None
    alert_threshold_max: float | None
    alert_enabled: bool
    rollover: float | None
    main_meter: bool
    status: SensorStatus
    last_reading_at: datetime | None
    last_value: float | None
    last_battery_level: float | None
    installed_at: datetime
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, sensor: IoTSensor) -> SensorOut:
        return cls.model_validate(sensor)


class ReadingOut(_Out):
    sensor_id: UUID
    timestamp: datetime
    value: float
    unit_of_measure: str
    battery_level: float | None
    signal_strength: int | None
    quality: ReadingQuality
    is_anomaly: bool
    anomaly_reason: str | None
    received_at: datetime


class AlertOut(_Out):
    id: UUID
    organization_id: UUID
    sensor_id: UUID
    building_id: UUID
    unit_id: UUID | None
    alert_type: AlertType
    severity: AlertSeverity
    status: AlertStatus
    message: str
    triggered_at: datetime
    last_triggered_at: datetime | None
    occurrences: int
    reading_value: float | None
    threshold_value: float | None
    cleared_at: datetime | None
    email_sent: bool
    sms_sent: bool
    push_sent: bool
    acknowledged: bool
    acknowledged_by: UUID | None
    acknowledged_at: datetime | None
    resolution_note: str | None
    rule: str | None = Field(description="the rule that raised it: threshold, night_flow, stuck, offline...")
    created_at: datetime

    @classmethod
    def of(cls, alert: IoTAlert) -> AlertOut:
        return cls.model_validate(alert)


class AlertStatisticsOut(_Out):
    total: int
    by_type: dict[AlertType, int]
    by_severity: dict[AlertSeverity, int]
    by_building: dict[UUID, int]
    active: int
    active_unacknowledged: int
    acknowledged: int
    mean_time_to_acknowledge_s: float | None = Field(
        description="mean of acknowledged_at - triggered_at over the acknowledged alerts, in seconds"
    )


class AcknowledgeIn(_In):
    note: Text | None = Field(None, max_length=2000)


class DeadLetterOut(_Out):
    id: int | None
    organization_id: UUID | None
    topic: str
    payload_excerpt: str
    payload_size: int
    reason: str
    detail: str
    received_at: datetime
