"""Consumption math pinned on small data computed by hand: counters, gauges, buckets, DST and period comparisons."""

import itertools
import math
import random
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from koprogo_iot.domain.consumption import (
    EPOCH,
    CounterStep,
    GaugeStats,
    Point,
    StepKind,
    bucket_floor,
    bucketed_consumption,
    bucketed_gauge_stats,
    calendar_buckets,
    consumption,
    consumption_by_bucket,
    counter_steps,
    fixed_buckets,
    gauge_stats,
    median,
    normalize,
    relative_change,
)
from koprogo_iot.domain.errors import InvalidValue

T0 = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
BRUSSELS = ZoneInfo("Europe/Brussels")


def h(hours: float) -> datetime:
    """T0 plus `hours`."""
    return T0 + timedelta(hours=hours)


def series(*pairs: tuple[float, float]) -> list[Point]:
    """(hours after T0, value) pairs as points."""
    return [(h(hours), value) for hours, value in pairs]


# --- counters: the simple cases ---------------------------------------------------------------------------------


def test_simple_counter_is_the_index_increase() -> None:
    # 100 -> 101.5 -> 103 over [0 h, 2 h): steps 1.5 + 1.5 = 3.0. The reading at 2 h is the period's end (excluded
    # from the period's readings) but still closes the step [1 h, 2 h].
    result = consumption(series((0, 100), (1, 101.5), (2, 103)), h(0), h(2))
    assert result.consumption == pytest.approx(3.0)
    assert result.first == (h(0), 100.0)
    assert result.last == (h(1), 101.5)
    assert result.readings == 2
    assert (result.resets, result.rollovers, result.gaps, result.estimated) == (0, 0, (), False)
    assert result.complete


def test_a_flat_counter_consumed_zero_not_none() -> None:
    result = consumption(series((0, 42), (1, 42), (2, 42)), h(0), h(2))
    assert result.consumption == 0.0
    assert result.complete


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        # 100 at 0 h, 110 at 1 h: 10 per hour, spread linearly.
        (0.25, 0.75, 5.0),  # half an hour inside the step: 10 * 0.5
        (0.0, 0.5, 5.0),  # first half
        (0.5, 1.0, 5.0),  # second half
        (0.9, 1.0, 1.0),  # the last six minutes: 10 * 0.1
    ],
)
def test_a_boundary_between_two_readings_is_interpolated(start: float, end: float, expected: float) -> None:
    result = consumption(series((0, 100), (1, 110)), h(start), h(end))
    assert result.consumption == pytest.approx(expected)


def test_boundaries_inside_steps_on_both_sides() -> None:
    # Readings 0 h: 0, 2 h: 4, 3 h: 10, 5 h: 12. Period [1 h, 4 h):
    # [1 h, 2 h) is half of step 0-2 h (4) = 2; [2 h, 3 h) is the whole step = 6; [3 h, 4 h) is half of 3-5 h (2) = 1.
    result = consumption(series((0, 0), (2, 4), (3, 10), (5, 12)), h(1), h(4))
    assert result.consumption == pytest.approx(2 + 6 + 1)
    assert result.readings == 2  # 2 h and 3 h
    assert result.first == (h(2), 4.0)
    assert result.last == (h(3), 10.0)


def test_a_bucket_with_no_reading_gets_its_share_of_the_step_spanning_it() -> None:
    # 0 at 0 h, 8 at 4 h: each hourly bucket gets 8 / 4 = 2, though only the first holds a reading.
    result = bucketed_consumption(series((0, 0), (4, 8)), h(0), h(4), HOUR)
    assert [start for start, _ in result] == [h(0), h(1), h(2), h(3)]
    assert [r.consumption for _, r in result] == pytest.approx([2.0, 2.0, 2.0, 2.0])
    assert [r.readings for _, r in result] == [1, 0, 0, 0]
    assert all(r.complete for _, r in result)


# --- counters: resets, rollovers, jitter --------------------------------------------------------------------------


def test_a_reset_counts_from_the_new_value() -> None:
    # 500 -> 510 (+10) -> 4 (reset: the counter restarted at 0, so +4) -> 10 (+6): 20, never 10 - 500.
    result = consumption(series((0, 500), (1, 510), (2, 4), (3, 10)), h(0), h(3))
    assert result.consumption == pytest.approx(20.0)
    assert result.resets == 1
    assert result.rollovers == 0


def test_a_reset_is_counted_in_every_period_its_step_overlaps() -> None:
    # The reset step [1 h, 2 h] increases by 4, spread over the hour: [1 h, 1.5 h) gets 2 and [1.5 h, 2 h) gets 2.
    points = series((0, 500), (1, 510), (2, 4), (3, 10))
    first, second = consumption(points, h(1), h(1.5)), consumption(points, h(1.5), h(2))
    assert (first.consumption, second.consumption) == pytest.approx((2.0, 2.0))
    assert (first.resets, second.resets) == (1, 1)
    assert consumption(points, h(2), h(3)).resets == 0


def test_a_negative_value_after_a_reset_adds_nothing() -> None:
    # 50 -> -1: a counter restarts at 0, a negative index adds 0; then -1 -> 2 adds 3.
    assert consumption(series((0, 50), (1, -1), (2, 2)), h(0), h(2)).consumption == pytest.approx(3.0)


def test_a_rollover_counts_the_way_up_to_the_maximum_and_from_zero() -> None:
    # A 5-digit register wrapping at 100000: 99990 -> 99998 (+8) -> 3 (wrap: 100000 - 99998 + 3 = +5) -> 10 (+7).
    points = series((0, 99_990), (1, 99_998), (2, 3), (3, 10))
    result = consumption(points, h(0), h(3), rollover=100_000)
    assert result.consumption == pytest.approx(8 + 5 + 7)
    assert (result.rollovers, result.resets) == (1, 0)


def test_without_rollover_a_wrap_looks_like_a_reset() -> None:
    # Same readings, no rollover given: the drop to 3 is a reset counting +3, so 8 + 3 + 7.
    result = consumption(series((0, 99_990), (1, 99_998), (2, 3), (3, 10)), h(0), h(3))
    assert result.consumption == pytest.approx(18.0)
    assert (result.rollovers, result.resets) == (0, 1)


def test_a_drop_from_mid_range_is_a_reset_even_with_a_rollover() -> None:
    # 50000 -> 10 with rollover 100000: wrapping would mean 50010 m³ between two readings (half the range, more
    # than the 10 % window): a meter replaced mid-life, so +10.
    result = consumption(series((0, 50_000), (1, 10)), h(0), h(1), rollover=100_000)
    assert result.consumption == pytest.approx(10.0)
    assert (result.rollovers, result.resets) == (0, 1)


@pytest.mark.parametrize(
    ("before", "after", "kind", "increase"),
    [
        (95_000, 4_000, StepKind.ROLLOVER, 9_000),  # 5000 + 4000 = 9000 <= 10000: a wrap
        (95_000, 5_000, StepKind.ROLLOVER, 10_000),  # exactly the 10 % window: still a wrap
        (95_000, 5_001, StepKind.RESET, 5_001),  # 10001 > 10000: a reset
        (89_000, 0, StepKind.RESET, 0),  # 11000 > 10000: a reset to zero
    ],
)
def test_the_rollover_window_is_ten_percent_of_the_range(
    before: float, after: float, kind: StepKind, increase: float
) -> None:
    [step] = counter_steps(series((0, before), (1, after)), rollover=100_000)
    assert step.kind is kind
    assert step.increase == pytest.approx(increase)


def test_small_backwards_jitter_is_noise_and_the_baseline_stays_high() -> None:
    # Tasmota Total: 1000 -> 1002 (+2) -> 1001.5 (0.5 back, 0.05 % < 1 %: jitter, 0) -> 1001.8 (still below the
    # baseline 1002: 0) -> 1003 (+1 over the baseline 1002, not +1.5 over 1001.5). Total 3 = 1003 - 1000.
    points = series((0, 1000), (1, 1002), (2, 1001.5), (3, 1001.8), (4, 1003))
    result = consumption(points, h(0), h(4))
    assert result.consumption == pytest.approx(3.0)
    assert result.resets == 0
    kinds = [step.kind for step in counter_steps(points)]
    assert kinds == [StepKind.NORMAL, StepKind.JITTER, StepKind.JITTER, StepKind.NORMAL]


@pytest.mark.parametrize(
    ("after", "kind", "expected"),
    [
        (990.5, StepKind.JITTER, 0.0),  # 9.5 back from 1000 is 0.95 % < 1 %: noise
        (989.0, StepKind.RESET, 989.0),  # 11 back is 1.1 %: a reset, counting the new value
    ],
)
def test_the_jitter_tolerance_is_one_percent_of_the_index(after: float, kind: StepKind, expected: float) -> None:
    [step] = counter_steps(series((0, 1000), (1, after)))
    assert step.kind is kind
    assert step.increase == pytest.approx(expected)


def test_the_jitter_tolerance_is_configurable() -> None:
    # With reset_threshold=0 every drop is a reset: 1000 -> 1002 (+2) -> 1001.5 (reset, +1001.5) -> 1003 (+1.5).
    points = series((0, 1000), (1, 1002), (2, 1001.5), (3, 1003))
    result = consumption(points, h(0), h(3), reset_threshold=0)
    assert result.consumption == pytest.approx(2 + 1001.5 + 1.5)
    assert result.resets == 1
    # And a 5 % tolerance swallows a 4 % drop: 100 -> 96 (jitter) -> 101 (+1 over 100).
    assert consumption(series((0, 100), (1, 96), (2, 101)), h(0), h(2), reset_threshold=0.05).consumption == 1.0


def test_a_rollover_after_jitter_wraps_from_the_baseline() -> None:
    # 99999 -> 99998.5 (jitter, baseline stays 99999) -> 0.5 (wrap: 100000 - 99999 + 0.5 = 1.5).
    result = consumption(series((0, 99_999), (1, 99_998.5), (2, 0.5)), h(0), h(2), rollover=100_000)
    assert result.consumption == pytest.approx(1.5)
    assert result.rollovers == 1


# --- counters: gaps ---------------------------------------------------------------------------------------------


def test_a_gap_is_counted_spread_linearly_and_reported() -> None:
    # 0 h: 0, 1 h: 1, then silence until 5 h: 9, 6 h: 10. With max_gap 1 h the step [1 h, 5 h] (+8) is a gap.
    points = series((0, 0), (1, 1), (5, 9), (6, 10))
    whole = consumption(points, h(0), h(6), max_gap=HOUR)
    assert whole.consumption == pytest.approx(10.0)  # the meter measured the 8 during the silence: nothing lost
    assert whole.gaps == ((h(1), h(5)),)
    assert whole.estimated
    hourly = bucketed_consumption(points, h(0), h(6), HOUR, max_gap=HOUR)
    # [0,1): 1; [1,2) ... [4,5): 8 / 4 = 2 each, estimated; [5,6): 1.
    assert [r.consumption for _, r in hourly] == pytest.approx([1, 2, 2, 2, 2, 1])
    assert [r.estimated for _, r in hourly] == [False, True, True, True, True, False]


def test_a_step_exactly_max_gap_long_is_not_a_gap() -> None:
    result = consumption(series((0, 0), (1, 1)), h(0), h(1), max_gap=HOUR)
    assert (result.gaps, result.estimated) == ((), False)


def test_without_max_gap_nothing_is_flagged() -> None:
    assert not consumption(series((0, 0), (100, 1)), h(0), h(100)).estimated


# --- counters: input order, duplicates, sparse data ------------------------------------------------------------


def test_out_of_order_and_duplicate_readings_are_sorted_and_kept_once() -> None:
    # Arrival order 2 h, 0 h, 1 h, then 1 h again (a QoS 1 redelivery with another value) and 0 h again:
    # the first value given for a timestamp wins, as storage keeps the first delivery. 0 -> 5 -> 7: 7.
    points = [(h(2), 7.0), (h(0), 0.0), (h(1), 5.0), (h(1), 6.0), (h(0), 0.0)]
    assert normalize(points) == [(h(0), 0.0), (h(1), 5.0), (h(2), 7.0)]
    result = consumption(points, h(0), h(2))
    assert result.consumption == pytest.approx(7.0)
    assert result.readings == 2
    assert [step.increase for step in counter_steps(points)] == pytest.approx([5.0, 2.0])


def test_the_same_instant_in_another_zone_is_a_duplicate() -> None:
    # 01:00 at UTC+1 is 00:00 UTC: the same reading, kept once, reported in UTC.
    plus_one = timezone(timedelta(hours=1))
    points = [(h(0), 1.0), (datetime(2026, 1, 5, 1, 0, tzinfo=plus_one), 2.0), (h(1), 3.0)]
    assert normalize(points) == [(h(0), 1.0), (h(1), 3.0)]


def test_shuffling_distinct_readings_changes_nothing() -> None:
    rng = random.Random(7)
    points = series(*((i, v) for i, v in enumerate([0, 3, 4, 1, 2, 2.01, 9, 8.95, 15])))
    expected = consumption(points, h(0.5), h(7.5), rollover=20)
    for _ in range(20):
        rng.shuffle(points)
        assert consumption(points, h(0.5), h(7.5), rollover=20) == expected


def test_no_data_is_unknown_not_zero() -> None:
    result = consumption([], h(0), h(1))
    assert result.consumption is None
    assert (result.first, result.last, result.readings, result.complete) == (None, None, 0, False)


def test_one_reading_is_unknown() -> None:
    # A single index says nothing about an increase.
    result = consumption(series((0.5, 100)), h(0), h(1))
    assert result.consumption is None
    assert result.first == result.last == (h(0.5), 100.0)
    assert result.readings == 1


def test_readings_only_on_one_side_of_the_period_are_unknown() -> None:
    points = series((0, 1), (1, 2))
    assert consumption(points, h(2), h(3)).consumption is None  # all before
    assert consumption(points, h(-3), h(-1)).consumption is None  # all after
    # A reading exactly at the period's end closes no step inside it: [-1 h, 0 h) is still unknown.
    assert consumption(points, h(-1), h(0)).consumption is None


def test_a_partly_covered_period_counts_the_covered_part_and_says_so() -> None:
    # Readings from 1 h (10) to 2 h (16): nothing is extrapolated over [0 h, 1 h) or [2 h, 3 h).
    result = consumption(series((1, 10), (2, 16)), h(0), h(3))
    assert result.consumption == pytest.approx(6.0)
    assert not result.complete
    assert consumption(series((0, 10), (3, 16)), h(0), h(3)).complete  # readings on both bounds: complete


# --- counters: additivity ----------------------------------------------------------------------------------------


def random_counter(rng: random.Random, count: int) -> list[Point]:
    """A counter with random spacing, rises, jitter, resets and wraps at 1000, unsorted with duplicates."""
    points: list[Point] = []
    when, value = T0, rng.uniform(0, 1000)
    for _ in range(count):
        when += timedelta(seconds=rng.randint(1, 7200))
        roll = rng.random()
        if roll < 0.05:
            value = rng.uniform(0, 50)  # reset
        elif roll < 0.10:
            value = value * rng.uniform(0.991, 1.0)  # jitter
        else:
            value = (value + rng.uniform(0, 30)) % 1000  # a rise, wrapping at 1000
        points.append((when, round(value, 3)))
    points += rng.sample(points, k=count // 10)  # redeliveries
    rng.shuffle(points)
    return points


def test_consecutive_periods_add_up_to_their_union() -> None:
    rng = random.Random(20260105)
    for _ in range(200):
        points = random_counter(rng, rng.randint(0, 40))
        # Periods mostly over the readings (about 1 h apart on average), sometimes overhanging them.
        span = timedelta(seconds=rng.randint(60, 30 * 3600))
        start = T0 + timedelta(seconds=rng.randint(-7200, 10 * 3600))
        cuts = sorted({timedelta(seconds=rng.randint(1, int(span.total_seconds()) - 1)) for _ in range(5)})
        bounds = [start] + [start + cut for cut in cuts] + [start + span]
        gap = timedelta(minutes=100)
        whole = consumption(points, bounds[0], bounds[-1], rollover=1000, max_gap=gap)
        parts = consumption_by_bucket(points, list(itertools.pairwise(bounds)), rollover=1000, max_gap=gap)
        known = [r.consumption for _, r in parts if r.consumption is not None]
        if whole.consumption is None:
            assert not known
            continue
        assert math.fsum(known) == pytest.approx(whole.consumption, rel=1e-9, abs=1e-9)
        assert sum(r.readings for _, r in parts) == whole.readings
        assert {gap for _, r in parts for gap in r.gaps} == set(whole.gaps)


def test_hourly_buckets_add_up_to_the_day() -> None:
    rng = random.Random(3)
    points = random_counter(rng, 60)
    day = bucketed_consumption(points, h(0), h(48), timedelta(days=1), rollover=1000)
    hours = bucketed_consumption(points, h(0), h(48), HOUR, rollover=1000)
    for index, (day_start, result) in enumerate(day):
        assert day_start == h(24 * index)
        part = [r.consumption or 0.0 for _, r in hours[24 * index : 24 * (index + 1)]]
        assert math.fsum(part) == pytest.approx(result.consumption or 0.0, rel=1e-9)


# --- buckets ----------------------------------------------------------------------------------------------------


def test_fixed_buckets_are_aligned_to_start_and_cut_at_end() -> None:
    assert fixed_buckets(h(0), h(2.5), HOUR) == [(h(0), h(1)), (h(1), h(2)), (h(2), h(2.5))]
    assert fixed_buckets(h(0), h(2), HOUR) == [(h(0), h(1)), (h(1), h(2))]


def test_bucket_floor_is_date_bin_from_the_epoch() -> None:
    assert bucket_floor(datetime(2026, 1, 5, 13, 47, 12, tzinfo=UTC), timedelta(minutes=15)) == datetime(
        2026, 1, 5, 13, 45, tzinfo=UTC
    )
    assert bucket_floor(h(5), timedelta(days=1)) == h(0)  # a UTC day
    assert bucket_floor(EPOCH - timedelta(seconds=1), HOUR) == EPOCH - HOUR  # floor, not truncation, before 1970
    # A custom origin: 15-minute grid offset by 5 minutes.
    assert bucket_floor(h(0.2), timedelta(minutes=15), origin=h(0) + timedelta(minutes=5)) == h(0) + timedelta(
        minutes=5
    )


def test_a_spring_forward_day_lasts_23_hours_in_brussels() -> None:
    # Sunday 29 March 2026: clocks jump from 02:00 to 03:00. The local day runs from 28 March 23:00 UTC (midnight
    # at UTC+1) to 29 March 22:00 UTC (midnight at UTC+2): 23 hours. A counter rising 1 per hour uses 23 that day.
    start = datetime(2026, 3, 28, tzinfo=BRUSSELS)
    end = datetime(2026, 3, 31, tzinfo=BRUSSELS)
    points = [(datetime(2026, 3, 27, 23, tzinfo=UTC) + i * HOUR, float(i)) for i in range(80)]  # one per real hour
    days = bucketed_consumption(points, start, end, "day")
    assert [day for day, _ in days] == [
        datetime(2026, 3, 27, 23, tzinfo=UTC),
        datetime(2026, 3, 28, 23, tzinfo=UTC),
        datetime(2026, 3, 29, 22, tzinfo=UTC),
    ]
    assert [r.consumption for _, r in days] == pytest.approx([24.0, 23.0, 24.0])
    assert [r.readings for _, r in days] == [24, 23, 24]


def test_a_fall_back_day_lasts_25_hours_in_brussels() -> None:
    # Sunday 25 October 2026: clocks go back from 03:00 to 02:00. The day runs from 24 October 22:00 UTC to
    # 25 October 23:00 UTC: 25 hours, so 25 at 1 per hour.
    start, end = datetime(2026, 10, 25, tzinfo=BRUSSELS), datetime(2026, 10, 26, tzinfo=BRUSSELS)
    points = [(datetime(2026, 10, 24, 22, tzinfo=UTC) + i * HOUR, 2.0 * i) for i in range(30)]
    [(day, result)] = bucketed_consumption(points, start, end, "day", tz="Europe/Brussels")
    assert day == datetime(2026, 10, 24, 22, tzinfo=UTC)
    assert result.consumption == pytest.approx(50.0)  # 25 h at 2 per hour
    assert result.readings == 25


def test_month_buckets_start_at_local_midnight() -> None:
    # Q1 2026 in Brussels: months start at 23:00 UTC the day before (UTC+1) until DST, then at 22:00 UTC (UTC+2).
    start, end = datetime(2026, 1, 1, tzinfo=BRUSSELS), datetime(2026, 5, 1, tzinfo=BRUSSELS)
    assert calendar_buckets(start, end, "month") == [
        (datetime(2025, 12, 31, 23, tzinfo=UTC), datetime(2026, 1, 31, 23, tzinfo=UTC)),
        (datetime(2026, 1, 31, 23, tzinfo=UTC), datetime(2026, 2, 28, 23, tzinfo=UTC)),
        (datetime(2026, 2, 28, 23, tzinfo=UTC), datetime(2026, 3, 31, 22, tzinfo=UTC)),
        (datetime(2026, 3, 31, 22, tzinfo=UTC), datetime(2026, 4, 30, 22, tzinfo=UTC)),
    ]


def test_monthly_consumption_from_daily_readings() -> None:
    # A reading at each local midnight, rising by 1 a day: January 31, February 28, March 31.
    first = datetime(2026, 1, 1)
    points = [((first + timedelta(days=i)).replace(tzinfo=BRUSSELS), float(i)) for i in range(91)]
    months = bucketed_consumption(points, points[0][0], points[-1][0], "month")
    assert [r.consumption for _, r in months] == pytest.approx([31.0, 28.0, 31.0])
    assert [r.readings for _, r in months] == [31, 28, 31]


def test_month_buckets_of_a_period_not_aligned_are_cut() -> None:
    # 15 January to 10 March, in UTC for round numbers: [15 Jan, 1 Feb), [1 Feb, 1 Mar), [1 Mar, 10 Mar).
    start, end = datetime(2026, 1, 15, tzinfo=UTC), datetime(2026, 3, 10, tzinfo=UTC)
    assert calendar_buckets(start, end, "month", tz=UTC) == [
        (start, datetime(2026, 2, 1, tzinfo=UTC)),
        (datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)),
        (datetime(2026, 3, 1, tzinfo=UTC), end),
    ]


def test_week_and_year_buckets() -> None:
    # 5 January 2026 is a Monday. Weeks from Wednesday 31 Dec 2025 to Wednesday 14 Jan 2026, in UTC.
    start, end = datetime(2025, 12, 31, tzinfo=UTC), datetime(2026, 1, 14, tzinfo=UTC)
    assert [b for b, _ in calendar_buckets(start, end, "week", tz=UTC)] == [start, h(0), h(7 * 24)]
    assert calendar_buckets(start, end, "year", tz=UTC) == [
        (start, datetime(2026, 1, 1, tzinfo=UTC)),
        (datetime(2026, 1, 1, tzinfo=UTC), end),
    ]


def test_december_rolls_into_next_year() -> None:
    start, end = datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
    assert [b for b, _ in calendar_buckets(start, end, "month", tz=UTC)] == [start, datetime(2026, 1, 1, tzinfo=UTC)]


# --- gauges -----------------------------------------------------------------------------------------------------


def test_gauge_stats_are_the_plain_statistics_of_the_readings() -> None:
    # Readings 20, 22, 18.5, 21 in [0 h, 1 h); the reading at 1 h belongs to the next bucket.
    # avg (20 + 22 + 18.5 + 21) / 4 = 81.5 / 4 = 20.375; min 18.5; max 22; last 21 (at 0.75 h).
    points = series((0.75, 21), (0, 20), (0.25, 22), (0.5, 18.5), (1, 99))
    assert gauge_stats(points, h(0), h(1)) == GaugeStats(avg=20.375, min=18.5, max=22.0, last=21.0, count=4)


def test_gauge_avg_is_not_time_weighted() -> None:
    # 0 for 50 minutes then 100 for 10 minutes: the plain mean of two readings is 50, whatever their spacing.
    stats = gauge_stats(series((0, 0), (50 / 60, 100)), h(0), h(1))
    assert stats is not None
    assert stats.avg == 50.0


def test_a_gauge_without_readings_has_no_stats() -> None:
    assert gauge_stats([], h(0), h(1)) is None
    assert gauge_stats(series((2, 1)), h(0), h(1)) is None


def test_bucketed_gauge_stats_leave_out_empty_buckets() -> None:
    # Readings at 0 h (1, then a duplicate 5 ignored), 0.5 h (3) and 2.5 h (7): buckets [0,1) and [2,3), none at 1 h.
    points = series((0, 1), (0.5, 3), (2.5, 7), (0, 5))
    assert bucketed_gauge_stats(points, h(0), h(3), HOUR) == [
        (h(0), GaugeStats(avg=2.0, min=1.0, max=3.0, last=3.0, count=2)),
        (h(2), GaugeStats(avg=7.0, min=7.0, max=7.0, last=7.0, count=1)),
    ]


def test_bucketed_gauge_stats_by_local_day() -> None:
    # 23:30 UTC on 4 January is 00:30 on 5 January in Brussels: it belongs to the 5th.
    points = [(datetime(2026, 1, 4, 22, 30, tzinfo=UTC), 1.0), (datetime(2026, 1, 4, 23, 30, tzinfo=UTC), 2.0)]
    start, end = datetime(2026, 1, 4, tzinfo=BRUSSELS), datetime(2026, 1, 6, tzinfo=BRUSSELS)
    days = bucketed_gauge_stats(points, start, end, "day")
    assert [(day, stats.count) for day, stats in days] == [
        (datetime(2026, 1, 3, 23, tzinfo=UTC), 1),
        (datetime(2026, 1, 4, 23, tzinfo=UTC), 1),
    ]


# --- period comparison ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "previous", "expected"),
    [
        (107.0, 100.0, 0.07),  # +7 %
        (97.0, 100.0, -0.03),  # -3 %
        (0.0, 50.0, -1.0),  # stopped completely
        (5.0, 0.0, None),  # no base to compare with
        (None, 10.0, None),
        (10.0, None, None),
        (-1.0, -2.0, 0.5),  # a temperature rising from -2 to -1 is +50 %, not -50 %
    ],
)
def test_relative_change(current: float | None, previous: float | None, expected: float | None) -> None:
    assert relative_change(current, previous) == pytest.approx(expected)


def test_median() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5  # the mean of the two middle values, as percentile_cont(0.5)
    assert median([None, 5.0, None]) == 5.0  # a unit without data is left out, not taken as 0
    assert median([]) is None
    assert median([None]) is None
    with pytest.raises(InvalidValue):
        median([1.0, math.nan])


# --- validation -------------------------------------------------------------------------------------------------


def test_naive_timestamps_are_refused() -> None:
    naive = datetime(2026, 1, 5)
    with pytest.raises(InvalidValue, match="time zone"):
        consumption([(naive, 1.0)], h(0), h(1))
    with pytest.raises(InvalidValue, match="time zone"):
        consumption([], naive, h(1))


def test_non_finite_values_are_refused() -> None:
    with pytest.raises(InvalidValue, match="finite"):
        consumption(series((0, 1), (1, math.inf)), h(0), h(1))
    with pytest.raises(InvalidValue, match="finite"):
        gauge_stats(series((0, math.nan)), h(0), h(1))


@pytest.mark.parametrize(("start", "end"), [(1, 1), (2, 1)])
def test_an_empty_or_reversed_period_is_refused(start: float, end: float) -> None:
    with pytest.raises(InvalidValue, match="after its start"):
        consumption([], h(start), h(end))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rollover": 0.0}, "rollover"),
        ({"rollover": math.inf}, "rollover"),
        ({"reset_threshold": -0.1}, "reset threshold"),
        ({"reset_threshold": 1.0}, "reset threshold"),
        ({"max_gap": timedelta(0)}, "maximum gap"),
    ],
)
def test_bad_counter_options_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidValue, match=message):
        consumption([], h(0), h(1), **options)  # type: ignore[arg-type]


def test_bad_buckets_are_refused() -> None:
    with pytest.raises(InvalidValue, match="positive"):
        fixed_buckets(h(0), h(1), timedelta(0))
    with pytest.raises(InvalidValue, match="positive"):
        bucket_floor(h(0), -HOUR)
    with pytest.raises(InvalidValue, match="more than"):
        fixed_buckets(h(0), h(24 * 365), timedelta(seconds=1))
    with pytest.raises(InvalidValue, match="calendar unit"):
        calendar_buckets(h(0), h(1), "fortnight")
    with pytest.raises(InvalidValue, match="time zone"):
        calendar_buckets(h(0), h(1), "day", tz="Europe/Atlantis")


def test_counter_steps_expose_each_pair() -> None:
    assert counter_steps(series((1, 5), (0, 2), (3, 1))) == [
        CounterStep(h(0), h(1), 3.0, StepKind.NORMAL),
        CounterStep(h(1), h(3), 1.0, StepKind.RESET),  # 5 -> 1 is 80 % back: a reset counting +1
    ]
    assert counter_steps([]) == []
    assert counter_steps(series((0, 1))) == []
