"""The native KoproGo payload: `{"timestamp", "value", "battery_level", "signal_strength"}`."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Annotated

import msgspec

from koprogo_iot.devices.parsing import check_bounds


class NativePayload(msgspec.Struct, frozen=True):
    timestamp: datetime  # RFC 3339; a zone is required (checked by the pipeline, msgspec accepts naive times)
    value: float
    battery_level: Annotated[float, msgspec.Meta(ge=0, le=100)] | None = None
    signal_strength: Annotated[int, msgspec.Meta(ge=-200, le=50)] | None = None  # dBm


_decoder = msgspec.json.Decoder(NativePayload)


class InvalidJson(ValueError):
    """The payload is not JSON at all."""


class SchemaViolation(ValueError):
    """The payload is JSON but not a native reading."""


class NonFiniteValue(ValueError):
    """The value is NaN or infinite (`NaN`, `Infinity` or `1e999`, which many JSON encoders emit)."""


def _has_non_finite_value(payload: bytes) -> bool:
    """Whether a payload msgspec refused carries a NaN or infinite value: only checked on the error path."""
    try:
        value = json.loads(payload).get("value")
    except (ValueError, AttributeError):
        return False
    return isinstance(value, float) and not math.isfinite(value)


def decode(payload: bytes) -> NativePayload:
    """Decode a native payload, telling malformed JSON apart from a wrong shape; a payload too large or too deeply
    nested to decode safely is a `DecodeError` naming why."""
    check_bounds(payload)
    try:
        decoded = _decoder.decode(payload)
    except msgspec.DecodeError as exc:  # ValidationError is a subclass: the JSON parsed, the shape is wrong
        if _has_non_finite_value(payload):
            raise NonFiniteValue("value is not a finite number") from exc
        if isinstance(exc, msgspec.ValidationError):
            raise SchemaViolation(str(exc)) from exc
        raise InvalidJson(str(exc)) from exc
    if decoded.timestamp.tzinfo is None:
        raise SchemaViolation("timestamp must carry a time zone (RFC 3339), e.g. 2026-01-31T12:00:00Z")
    return decoded
