"""Time helpers: every timestamp in KoproGo is an aware UTC datetime."""

from datetime import UTC, datetime

from koprogo_iot.domain.errors import InvalidValue


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def require_aware(value: datetime, name: str) -> datetime:
    """Return `value` converted to UTC; naive datetimes are refused because their zone is a guess."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidValue(f"{name} must carry a time zone")
    return value.astimezone(UTC)
