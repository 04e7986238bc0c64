"""Shared by the decoders: JSON into typed shapes (bad input becomes a `DecodeError`) and which timestamp to trust."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, TypeGuard, TypeVar

import msgspec

from koprogo_iot.devices.base import DecodeError, TimeSource

T = TypeVar("T")

# Same bounds as the ingest pipeline's IngestLimits: unsynchronized clocks report 1970, and a clock running more than
# five minutes ahead of the broker is wrong.
OLDEST = datetime(2020, 1, 1, tzinfo=UTC)
MAX_CLOCK_SKEW = timedelta(minutes=5)

# Bounds checked before any JSON decoder runs: msgspec and the json module recurse once per nesting level, so a
# payload of 15,000 `[` raised RecursionError (a traceback and an internal_error); device messages nest 6 deep at most.
MAX_DEPTH = 32
MAX_JSON_BYTES = 512 * 1024  # the broker refuses larger messages (message_size_limit) and the pipeline smaller ones
# Brackets, and whole strings so that brackets inside them are skipped (an unterminated string leaves its quote
# unmatched: its brackets are counted, which can only refuse a payload the decoder would refuse anyway).
_STRUCTURE = re.compile(rb'[\[\]{}]|"(?:[^"\\]|\\.)*"', re.DOTALL)

# RFC 3339 / ISO 8601 with any number of fractional digits: ChirpStack and The Things Stack send nanoseconds.
_TIMESTAMP = re.compile(r"(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:?\d{2})?")


def check_bounds(payload: bytes) -> None:
    """Refuse a payload larger than MAX_JSON_BYTES ("payload_too_large") or nested deeper than MAX_DEPTH
    ("nested_too_deeply"), before a decoder recurses into it."""
    if len(payload) > MAX_JSON_BYTES:
        raise DecodeError("payload_too_large", f"{len(payload)} bytes > {MAX_JSON_BYTES} allowed")
    if payload.count(b"[") + payload.count(b"{") <= MAX_DEPTH:
        return  # cannot nest deeper than it has openings: the usual message costs two C-speed counts, no scan
    depth = 0
    for match in _STRUCTURE.finditer(payload):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > MAX_DEPTH:
                raise DecodeError("nested_too_deeply", f"JSON nested more than {MAX_DEPTH} levels deep")
        elif token in (b"]", b"}"):
            depth -= 1


def parse_json(payload: bytes, shape: type[T]) -> T:
    """Decode `payload` into `shape`, telling malformed JSON ("invalid_json") apart from a wrong shape."""
    check_bounds(payload)
    try:
        return msgspec.json.decode(payload, type=shape)
    except msgspec.ValidationError as exc:  # a subclass of msgspec.DecodeError: the JSON parsed, the shape is wrong
        raise DecodeError("schema_violation", str(exc)) from None
    except msgspec.DecodeError as exc:
        raise DecodeError("invalid_json", str(exc)) from None


def parse_timestamp(text: object) -> datetime | None:
    """An ISO 8601 time, fractional digits truncated (not rounded) to microseconds; naive if it has no offset."""
    if not isinstance(text, str) or not (match := _TIMESTAMP.fullmatch(text.strip())):
        return None
    base, fraction, offset = match.groups()
    iso = base + (f".{fraction[:6]:0<6}" if fraction else "") + ("+00:00" if offset in ("Z", "z") else offset or "")
    try:
        return datetime.fromisoformat(iso)
    except ValueError:  # matches the pattern but is no date, e.g. month 13
        return None


def from_epoch(seconds: object) -> datetime | None:
    """A Unix time in seconds as an aware UTC datetime; None if it is not a number in datetime's range."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return None
    if not 0 <= seconds < 253_402_300_800:  # year 10000: fromtimestamp would raise OverflowError or OSError
        return None
    return datetime.fromtimestamp(seconds, UTC)


def message_time(claimed: datetime | None, source: TimeSource, received_at: datetime) -> tuple[datetime, TimeSource]:
    """The claimed time if aware and plausible (not before 2020, not ahead of the broker), else the receive time."""
    if claimed is not None and claimed.tzinfo is not None and OLDEST <= claimed <= received_at + MAX_CLOCK_SKEW:
        return claimed.astimezone(UTC), source
    return received_at.astimezone(UTC), TimeSource.RECEIVER


def is_number(value: object) -> TypeGuard[int | float]:
    """Whether a decoded JSON value is a number (JSON booleans decode to bool, a subclass of int)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def as_dict(value: object, what: str) -> dict[str, Any]:
    """`value` if it is a JSON object, else a schema violation naming `what`."""
    if not isinstance(value, dict):
        raise DecodeError("schema_violation", f"{what} must be a JSON object")
    return value
