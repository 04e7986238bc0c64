"""Why a message was refused: a closed list of named reasons, counted and logged."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    PAYLOAD_TOO_LARGE = "payload_too_large"
    INVALID_TOPIC = "invalid_topic"
    INVALID_JSON = "invalid_json"
    SCHEMA_VIOLATION = "schema_violation"
    NESTED_TOO_DEEPLY = "nested_too_deeply"  # JSON deeper than any device sends, refused before decoding
    UNKNOWN_ORGANIZATION = "unknown_organization"
    UNKNOWN_SENSOR = "unknown_sensor"
    TENANT_MISMATCH = "tenant_mismatch"  # the topic's organization/building does not own the sensor
    SENSOR_INACTIVE = "sensor_inactive"
    VALUE_NOT_FINITE = "value_not_finite"
    VALUE_OUT_OF_RANGE = "value_out_of_range"
    TIMESTAMP_IN_FUTURE = "timestamp_in_future"
    TIMESTAMP_TOO_OLD = "timestamp_too_old"
    UNIT_MISMATCH = "unit_mismatch"  # the device's unit cannot be converted to the sensor's
    RATE_LIMITED = "rate_limited"  # the sensor sends faster than its allowance
    STORAGE_REFUSED = "storage_refused"  # the database refused its rows (e.g. its sensor was deleted meanwhile)
    INTERNAL_ERROR = "internal_error"  # a bug of ours: logged with the payload


class Rejected(Exception):
    """A message that will not be stored, with its reason and a human explanation."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
