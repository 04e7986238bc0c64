"""How long raw readings are kept: whole UTC months, checked."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from koprogo_iot.config import Settings
from koprogo_iot.domain.errors import InvalidValue
from koprogo_iot.domain.retention import check_retention_months, raw_cutoff


def test_the_cutoff_is_the_start_of_a_utc_month_whatever_the_day_and_zone() -> None:
    assert raw_cutoff(datetime(2026, 5, 15, 12, tzinfo=UTC), 2) == datetime(2026, 3, 1, tzinfo=UTC)
    assert raw_cutoff(datetime(2026, 1, 20, tzinfo=UTC), 13) == datetime(2024, 12, 1, tzinfo=UTC)  # across years
    assert raw_cutoff(datetime(2026, 12, 31, 23, 59, tzinfo=UTC), 12) == datetime(2025, 12, 1, tzinfo=UTC)
    # 1 May 00:30 in Brussels is still April in UTC: the month is UTC's, as the partitions' are.
    brussels = timezone(timedelta(hours=2))
    assert raw_cutoff(datetime(2026, 5, 1, 0, 30, tzinfo=brussels), 1) == datetime(2026, 3, 1, tzinfo=UTC)
    with pytest.raises(InvalidValue, match="time zone"):
        raw_cutoff(datetime(2026, 5, 1), 1)  # noqa: DTZ001 - naive on purpose


@pytest.mark.parametrize("wrong", [0, -1, 1201, True, 1.5, "12"])
def test_a_retention_outside_1_to_1200_whole_months_is_refused_by_name(wrong: object) -> None:
    with pytest.raises(InvalidValue, match="raw retention"):
        check_retention_months(wrong)  # type: ignore[arg-type]


def test_the_platform_setting_is_checked_too() -> None:
    assert Settings().raw_retention_months == 13
    with pytest.raises(ValidationError, match="raw_retention_months"):
        Settings(raw_retention_months=0)
