"""The building balance's pure parts: the difference of figures, its flags, the alert decision and its notice."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from koprogo_iot.domain.alerts import AlertType, ClearAlert, RaiseAlert
from koprogo_iot.domain.balance import BalanceBucket, UnitMeter, balance_buckets, balance_total
from koprogo_iot.domain.consumption import CounterResult
from koprogo_iot.domain.detection import balance_decision
from koprogo_iot.domain.notices import compose
from koprogo_iot.domain.rules import layer
from koprogo_iot.domain.sensors import IoTSensor, SensorStatus, SensorType
from koprogo_iot.domain.tenancy import Building

DAY = datetime(2026, 1, 5, 23, tzinfo=UTC)
GRID = [(DAY + timedelta(days=i), DAY + timedelta(days=i + 1)) for i in range(3)]


def figure(value: float | None, *, gap: bool = False) -> CounterResult:
    gaps = ((DAY, DAY + timedelta(hours=6)),) if gap else ()
    return CounterResult(value, None, None, 0, 0, 0, gaps, complete=value is not None)


def main_meter(**changes: object) -> IoTSensor:
    sensor = IoTSensor(
        organization_id=uuid.uuid4(),
        building_id=uuid.uuid4(),
        sensor_id="MAIN",
        sensor_type=SensorType.COLD_WATER,
        manufacturer="Kamstrup",
        model="M",
        location="Basement",
        unit_of_measure="m³",
        main_meter=True,
    )
    return sensor.changed(**changes) if changes else sensor


def days(*shares: float | None) -> list[BalanceBucket]:
    """Days whose main meter counted 10 m³ and whose units left `share` of it unexplained (None: unknown)."""
    mains = [figure(None if s is None else 10.0) for s in shares]
    units = [UnitMeter([figure(None if s is None else 10.0 * (1 - s)) for s in shares], 1.0)]
    grid = [(DAY + timedelta(days=i), DAY + timedelta(days=i + 1)) for i in range(len(shares))]
    return balance_buckets(grid, mains, units)


def test_the_share_is_the_unexplained_part_of_the_main_meters_figure() -> None:
    units = [UnitMeter([figure(6.0)] * 3, 1.0), UnitMeter([figure(3600.0)] * 3, 0.001)]  # m³, and L to m³
    [bucket, *_] = balance_buckets(GRID, [figure(10.0)] * 3, units)
    assert (bucket.main, bucket.units, bucket.unexplained) == (10.0, pytest.approx(9.6), pytest.approx(0.4))
    assert bucket.share == pytest.approx(0.04, abs=1e-12) and not bucket.estimated and bucket.complete


def test_a_gap_a_silent_meter_or_an_unconvertible_unit_make_the_figure_estimated() -> None:
    gap = balance_buckets(GRID[:1], [figure(10.0)], [UnitMeter([figure(9.6, gap=True)], 1.0)])[0]
    assert gap.estimated and gap.share == pytest.approx(0.04)
    silent = balance_buckets(GRID[:1], [figure(10.0)], [UnitMeter([figure(9.6)], 1.0), UnitMeter([figure(None)], 1.0)])
    assert silent[0].estimated and (silent[0].units_measured, silent[0].units_total) == (1, 2)
    foreign = balance_buckets(GRID[:1], [figure(10.0)], [UnitMeter([figure(9.6)], None)])[0]
    assert foreign.estimated and foreign.units is None and foreign.share is None
    idle = balance_buckets(GRID[:1], [figure(0.0)], [UnitMeter([figure(0.0)], 1.0)])[0]
    assert idle.unexplained == 0.0 and idle.share is None  # nothing counted: no share of nothing


def test_the_total_adds_the_days() -> None:
    total = balance_total(days(0.04, 0.02, None))
    assert total is not None and total.main == 20.0 and total.share == pytest.approx(0.03)
    assert balance_total([]) is None


def test_the_alert_needs_every_judged_day_above_the_threshold_and_clears_below_it() -> None:
    rules, now = layer(), DAY + timedelta(days=5)
    raised = balance_decision(main_meter(), rules, days(0.04, 0.05, 0.04), now)
    assert isinstance(raised, RaiseAlert) and raised.alert.alert_type is AlertType.BUILDING_BALANCE
    assert raised.alert.reading_value == 4.0 and raised.alert.threshold_value == 3.0
    assert raised.alert.last_triggered_at == DAY + timedelta(days=3)  # the evidence: the last day judged
    assert balance_decision(main_meter(), rules, days(0.02, 0.05, 0.04), now) is None  # not every day
    assert balance_decision(main_meter(), rules, days(0.04, None, 0.04), now) is None  # a day unknown
    assert balance_decision(main_meter(), rules, days(0.04, 0.04, None), now) is None  # nothing to say
    assert isinstance(balance_decision(main_meter(), rules, days(0.04, 0.04, 0.01), now), ClearAlert)
    assert balance_decision(main_meter(main_meter=False), rules, days(0.04, 0.04, 0.04), now) is None
    assert balance_decision(main_meter(status=SensorStatus.MAINTENANCE), rules, days(0.1, 0.1, 0.1), now) is None
    off = layer({"balance": {"enabled": False}})
    assert balance_decision(main_meter(), off, days(0.1, 0.1, 0.1), now) is None
    one_day = layer({"balance": {"days": 1, "max_share_percent": 5}})
    assert isinstance(balance_decision(main_meter(), one_day, days(0.01, 0.01, 0.06), now), RaiseAlert)


def test_the_notice_gives_the_share_in_percent() -> None:
    sensor = main_meter()
    raised = balance_decision(sensor, layer(), days(0.04, 0.04, 0.04), DAY + timedelta(days=5))
    assert isinstance(raised, RaiseAlert)
    building = Building(sensor.organization_id, "Résidence", id=sensor.building_id)
    notice = compose(raised.alert, sensor, building, None, "https://koprogo.example")
    assert "Value: 4 %" in notice.body and "Threshold: 3 %" in notice.body and "building balance" in notice.subject
