"""The one place where the API bounds what a request may carry.

Every string, integer, float, date and time the API accepts (path, query or body) is one of these types;
`tests/api/test_inputs.py` walks every route and fails on a bare `str`, an unbounded `int`, a float that may be
infinite or a date without the window. They stop, with a 422 naming the field, what the databases or the
calendar arithmetic cannot take (issue 12's fuzz run found each as a 500):
- NUL characters (PostgreSQL text refuses them) and lone surrogates (not encodable as UTF-8: both drivers fail);
- integers beyond PostgreSQL's INTEGER (32 bits; SQLite's 64-bit limit raised OverflowError inside its thread);
- NaN and infinities (JSON parsers accept `NaN` and `Infinity`);
- dates and times outside 2000-2100, or without a zone: a period starting in year 1 overflowed `datetime`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, EmailStr, Field

from koprogo_iot.domain.sensors import MAX_ROLLOVER

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def check_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    return value


def _text_before(value: object) -> object:
    """`check_text` ahead of a validator that would fail on such text itself (email-validator)."""
    return check_text(value) if isinstance(value, str) else value


def check_instant(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("needs a time zone (RFC 3339, e.g. 2026-01-31T00:00:00Z)")
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"must be from {EARLIEST:%Y-%m-%d} to before {LATEST:%Y-%m-%d}")
    return value


def check_day(value: date) -> date:
    if not EARLIEST.date() <= value < LATEST.date():
        raise ValueError(f"must be from {EARLIEST:%Y-%m-%d} to before {LATEST:%Y-%m-%d}")
    return value


Text = Annotated[str, AfterValidator(check_text)]
Email = Annotated[EmailStr, BeforeValidator(_text_before)]
Int32 = Annotated[int, Field(ge=INT32_MIN, le=INT32_MAX)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
# A counter's register size (its rollover modulus): the domain's bounds, refused here with the field named.
Register = Annotated[float, Field(gt=0, le=MAX_ROLLOVER, allow_inf_nan=False)]
Instant = Annotated[datetime, AfterValidator(check_instant)]
Day = Annotated[date, AfterValidator(check_day)]
