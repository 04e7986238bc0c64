"""How long raw readings are kept: a number of whole months, and the instant before which they are gone.

Rollups are kept for good; only raw readings expire. The cutoff falls on a UTC month's first instant, so that on
PostgreSQL whole monthly partitions expire at once (`storage/sql/retention.py`) and SQLite deletes the same rows.
"""

from __future__ import annotations

from datetime import UTC, datetime

from koprogo_iot.domain.clock import require_aware
from koprogo_iot.domain.errors import InvalidValue

DEFAULT_RAW_RETENTION_MONTHS = 13  # a year and the month before it: last year's same month stays comparable
MAX_RAW_RETENTION_MONTHS = 1200  # a century: a typo's bound, not a policy


def check_retention_months(months: int) -> int:
    """`months` if it is a valid raw retention (1 to MAX_RAW_RETENTION_MONTHS whole months); InvalidValue else."""
    if isinstance(months, bool) or not isinstance(months, int):
        raise InvalidValue(f"raw retention must be a whole number of months, not {months!r}")
    if not 1 <= months <= MAX_RAW_RETENTION_MONTHS:
        raise InvalidValue(f"raw retention must be 1 to {MAX_RAW_RETENTION_MONTHS} months, not {months}")
    return months


def raw_cutoff(now: datetime, months: int) -> datetime:
    """The instant before which raw readings have expired: the start of the UTC month `months` months before the
    current one. The current month and the `months` whole months before it are kept."""
    now = require_aware(now, "now").astimezone(UTC)
    index = now.year * 12 + (now.month - 1) - check_retention_months(months)
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)
