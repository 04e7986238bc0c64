"""The failure throttle behind login's 429: a sliding window per key."""

from datetime import UTC, datetime, timedelta

from koprogo_iot.domain.throttle import FailureThrottle

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_limit_th_failure_closes_the_key_until_the_oldest_leaves_the_window() -> None:
    throttle = FailureThrottle(3, timedelta(minutes=15))
    for minute in range(3):
        assert throttle.retry_after("a", T0 + timedelta(minutes=minute)) == 0
        throttle.failed("a", T0 + timedelta(minutes=minute))
    assert throttle.retry_after("a", T0 + timedelta(minutes=5)) == 600  # the first failure leaves at 15 min
    assert throttle.retry_after("b", T0 + timedelta(minutes=5)) == 0  # keys are apart
    assert throttle.retry_after("a", T0 + timedelta(minutes=15)) == 0


def test_a_success_forgets_the_failures() -> None:
    throttle = FailureThrottle(2, timedelta(minutes=15))
    throttle.failed("a", T0)
    throttle.succeeded("a")
    throttle.failed("a", T0)
    assert throttle.retry_after("a", T0) == 0


def test_memory_is_bounded_by_dropping_the_oldest_keys() -> None:
    throttle = FailureThrottle(1, timedelta(minutes=15), max_keys=100)
    for n in range(1000):
        throttle.failed(f"made-up-{n}", T0)
    assert throttle.retry_after("made-up-999", T0) > 0
    assert throttle.retry_after("made-up-0", T0) == 0  # forgotten
    assert len(throttle._failures) == 100
