"""The consumption forecast: exact on regular series, following weekly and yearly profiles, honest about what it
does not know; through the API with tenancy; and its back-tested error on the demo building's year."""

import math
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest

from koprogo_iot import demo
from koprogo_iot.analytics.aggregates import GroupBy, Period, SensorScope
from koprogo_iot.analytics.forecast import Daily, backtest, project
from koprogo_iot.domain.access import Principal
from koprogo_iot.domain.errors import NotFound
from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.services.analytics import Horizon
from koprogo_iot.storage.ports import Ingested, Storage
from tests.api.conftest import Api
from tests.conftest import analytics, make_tenant

TODAY = date(2026, 11, 18)  # a Wednesday


def series(days: int, value: Callable[[date], float]) -> Daily:
    return {TODAY - timedelta(days=i): value(TODAY - timedelta(days=i)) for i in range(1, days + 1)}


def test_a_steady_consumption_is_projected_exactly() -> None:
    daily = series(120, lambda d: 10.0)
    p = project(daily, TODAY, date(2026, 11, 1), date(2026, 12, 1))
    assert p.consumed == pytest.approx(170.0)  # 1 to 17 November
    assert p.projected == pytest.approx(300.0) and p.low == pytest.approx(300.0) and p.high == pytest.approx(300.0)
    assert p.backtest_mape_percent == pytest.approx(0.0)
    assert [d.forecast for d in p.days if d.day >= TODAY] == [pytest.approx(10.0)] * 13
    assert all(d.actual == 10.0 for d in p.days if d.day < TODAY)


def test_the_weekly_rhythm_is_followed() -> None:
    daily = series(120, lambda d: 15.0 if d.weekday() >= 5 else 10.0)
    p = project(daily, TODAY, date(2026, 11, 1), date(2026, 12, 1))
    by_day = {d.day: d.forecast for d in p.days if d.forecast is not None}
    assert by_day[date(2026, 11, 21)] == pytest.approx(15.0)  # a Saturday
    assert by_day[date(2026, 11, 23)] == pytest.approx(10.0)  # a Monday
    assert p.backtest_mape_percent == pytest.approx(0.0, abs=1e-9)


def test_last_years_season_shapes_the_year() -> None:
    def heating(d: date) -> float:  # gas: high in January, low in July
        return 10.0 + 8.0 * math.cos((d.timetuple().tm_yday - 15) / 365 * 2 * math.pi)

    daily = series(500, heating)
    p = project(daily, TODAY, date(2026, 1, 1), date(2027, 1, 1))
    december = [d.forecast for d in p.days if d.day >= date(2026, 12, 1) and d.forecast is not None]
    late_november = [heating(d) for d in (TODAY - timedelta(days=i) for i in range(1, 29))]
    assert sum(december) / len(december) > sum(late_november) / len(late_november)  # the season keeps rising
    truth = math.fsum(heating(date(2026, 1, 1) + timedelta(days=i)) for i in range(365))
    assert p.projected == pytest.approx(truth, rel=0.03)
    assert p.low is not None and p.high is not None and p.low <= p.projected <= p.high
    without_season = project(dict(list(daily.items())[:300]), TODAY, date(2026, 1, 1), date(2027, 1, 1))
    assert abs((without_season.projected or 0) - truth) > abs(p.projected - truth)


def test_too_little_history_gives_no_figure_and_gaps_are_not_zero() -> None:
    p = project(series(5, lambda d: 10.0), TODAY, date(2026, 11, 1), date(2026, 12, 1))
    assert (p.consumed, p.projected, p.low, p.high) == (50.0, None, None, None)
    gappy = {day: v for day, v in series(60, lambda d: 10.0).items() if day.day % 2}  # every other day missing
    q = project(gappy, TODAY, date(2026, 11, 1), date(2026, 12, 1))
    assert q.projected == pytest.approx(q.consumed + 13 * 10.0)  # the level of what is known, not halved
    assert backtest(gappy, TODAY) == []  # no complete 28-day horizon to check against


async def test_forecast_through_the_service_with_tenancy(storage: Storage) -> None:
    t = await make_tenant(storage)
    now = datetime(2026, 11, 18, 12, tzinfo=UTC)
    start = now - timedelta(days=90)
    await storage.readings.ingest(
        [
            Ingested(IoTReading.measured(t.unit_sensor, start + timedelta(hours=6 * i), 100 + 0.5 * i))
            for i in range(360)
        ]
    )  # 2 m³ a day
    report = await analytics(storage).forecast(
        Principal.of(t.syndic), SensorScope(), GroupBy.SENSOR, Horizon.MONTH, now
    )
    group = next(g for g in report.groups if g.key == str(t.unit_sensor.id))
    p = group.projection
    assert (report.today, p.period_start, p.period_end) == (date(2026, 11, 18), date(2026, 11, 1), date(2026, 12, 1))
    assert p.projected == pytest.approx(60.0, rel=0.02) and group.unit_of_measure == "m³"
    owner = Principal.of(t.owner, [t.building.id])
    mine = await analytics(storage).forecast(owner, SensorScope(), GroupBy.UNIT, Horizon.YEAR, now)
    assert [g.key for g in mine.groups] == [str(t.units[0].id)]  # their unit only (no common counter here)
    other = await make_tenant(storage, "Other")
    with pytest.raises(NotFound):
        await analytics(storage).forecast(owner, SensorScope(building_id=other.building.id), now=now)


async def test_forecast_api(api: Api) -> None:
    h = await api.token(api.a.syndic.email)
    response = await api.client.get("/api/v1/iot/forecast", params={"group_by": "unit", "horizon": "year"}, headers=h)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["horizon"] == "year" and body["timezone"] == "Europe/Brussels"
    assert all(g["projected"] is None for g in body["groups"])  # no history yet: no figure, no invention


async def test_backtested_error_on_the_demo_building(storage: Storage) -> None:
    """The demo's year of history (what `up --demo` writes): the building's forecast and its back-tested error,
    and its water balance."""
    now = datetime.now(UTC)
    provisioned = await demo.provision(storage)
    syndic = await storage.tenancy.find_user_by_email(demo.SYNDIC_EMAIL)
    assert syndic is not None
    report = await analytics(storage).forecast(
        Principal.of(syndic), SensorScope(building_id=provisioned.building.id), GroupBy.SENSOR, Horizon.MONTH, now
    )
    errors = {g.label: g.projection.backtest_mape_percent for g in report.groups}
    assert len(errors) == 11 and all(e is not None for e in errors.values())  # every counter of the demo
    worst = max(e for e in errors.values() if e is not None)
    print(f"demo building, 28-day totals back-tested from 8 weekly origins: MAPE per counter {errors}")
    assert worst < 10.0
    # Its main water meter counts the flats' cold water and 2 % more: what the balance shows, day after day.
    balance = await analytics(storage).building_balance(
        Principal.of(syndic), provisioned.building.id, None, Period.DAY, now - timedelta(days=30), now
    )
    [water] = balance.balances
    assert water.total is not None and water.total.share == pytest.approx(0.02 / 1.02, abs=0.002)
    assert all(abs((b.share or 0) - 0.0196) < 0.01 for b in water.buckets if b.complete)
