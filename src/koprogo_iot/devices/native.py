"""The native KoproGo payload: `{"timestamp", "value", "battery_level", "signal_strength"}`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec


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


def decode(payload: bytes) -> NativePayload:
    """Decode a native payload, telling malformed JSON apart from a wrong shape."""
    try:
        decoded = _decoder.decode(payload)
    except msgspec.ValidationError as exc:
        raise SchemaViolation(str(exc)) from exc
    except msgspec.DecodeError as exc:
        raise InvalidJson(str(exc)) from exc
    if decoded.timestamp.tzinfo is None:
        raise SchemaViolation("timestamp must carry a time zone (RFC 3339), e.g. 2026-01-31T12:00:00Z")
    return decoded
