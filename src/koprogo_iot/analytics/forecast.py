"""Projected consumption to the end of the month or of the year, with an interval, from a group's own history.

Model, per group of counters (a sensor, a unit, a building), on its daily consumption in Brussels days:
- level: the mean of the last `LEVEL_DAYS` complete days;
- weekly profile: each weekday's mean over the last `PROFILE_DAYS` days against their overall mean;
- yearly profile, when a year of history covers it: the same week of last year against last year's level at the
  same distance before it (a heating season, a summer holiday), clipped to [0.2, 5]; levels are taken with the
  weekly rhythm removed, so that missing days do not bias them;
- a day's forecast is level x weekday factor x yearly factor; the projection is what was consumed in the period
  before today plus the forecast of every day from today to the period's end.
The interval comes from back-testing the same model on the group's own past: from each of the last `ORIGINS`
weekly origins, the next `BACKTEST_DAYS` days were forecast with only what came before; the relative errors of
those totals give a 90 % band (+/- 1.645 times their root mean square), applied to the forecast part. Their mean
absolute value is the back-tested error reported with the forecast. A library (statsmodels' Holt-Winters, Prophet)
would need years of clean daily data that buildings rarely have and would not beat this on a few months; this
stays explainable to a syndic in one sentence.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

LEVEL_DAYS = 28
PROFILE_DAYS = 56
MIN_DAYS = 14  # fewer known days than this: no forecast
BACKTEST_DAYS = 28
ORIGINS = 8
YEAR = 364  # days: 52 weeks, so that last year's day is the same weekday
Z90 = 1.645
UNTESTED_SPREAD = 0.25  # the relative error assumed while the group has too little history to back-test

Daily = dict[date, float]  # consumption per local day; a day missing is unknown (not zero)


@dataclass(frozen=True, slots=True)
class DayForecast:
    day: date
    actual: float | None
    forecast: float | None


@dataclass(frozen=True, slots=True)
class Projection:
    """A group's consumption over [period_start, period_end): consumed before today, projected in total."""

    period_start: date
    period_end: date  # excluded
    consumed: float
    projected: float | None  # None: too little history
    low: float | None
    high: float | None
    backtest_mape_percent: float | None
    days: list[DayForecast]


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


class Model:
    """The model fitted on `daily` as known before `origin`."""

    def __init__(self, daily: Daily, origin: date) -> None:
        self.daily, self.origin = daily, origin
        # Weekday factors against the mean of the weekday means: unbiased when some days are missing.
        window = [d for d in _days(origin - timedelta(days=PROFILE_DAYS), origin) if d in daily]
        means = [_mean([daily[d] for d in window if d.weekday() == weekday]) for weekday in range(7)]
        known = [m for m in means if m is not None]
        center = _mean(known) if len(known) == 7 else None
        self.weekday = [m / center if center and m is not None else 1.0 for m in means]
        self.level = self._level(origin)
        self.last_level = self._level(origin - timedelta(days=YEAR))

    def _level(self, before: date) -> float | None:
        """The mean daily consumption of the `LEVEL_DAYS` before `before`, the weekly rhythm taken out."""
        days = [d for d in _days(before - timedelta(days=LEVEL_DAYS), before) if d in self.daily]
        if len(days) < MIN_DAYS // 2:
            return None
        return _mean([self.daily[d] / self.weekday[d.weekday()] if self.weekday[d.weekday()] else 0.0 for d in days])

    @property
    def ready(self) -> bool:
        return self.level is not None

    def __call__(self, day: date) -> float:
        assert self.level is not None
        return self.level * self.weekday[day.weekday()] * self._yearly(day)

    def _yearly(self, day: date) -> float:
        if not self.last_level:
            return 1.0
        same_week = _days(day - timedelta(days=YEAR + 3), day - timedelta(days=YEAR - 4))
        week = [self.daily[d] for d in same_week if d in self.daily]
        around = _mean(week) if len(week) >= 4 else None
        return 1.0 if around is None else min(5.0, max(0.2, around / self.last_level))


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days)]


def backtest(daily: Daily, today: date) -> list[float]:
    """Relative errors (actual - forecast) / forecast of `BACKTEST_DAYS`-day totals from past weekly origins."""
    errors = []
    for week in range(1, ORIGINS + 1):
        origin = today - timedelta(days=BACKTEST_DAYS + 7 * (week - 1))
        model = Model(daily, origin)
        horizon = _days(origin, origin + timedelta(days=BACKTEST_DAYS))
        if not model.ready or any(d not in daily for d in horizon):
            continue
        forecast = math.fsum(model(d) for d in horizon)
        if forecast > 0:
            errors.append((math.fsum(daily[d] for d in horizon) - forecast) / forecast)
    return errors


def project(daily: Daily, today: date, period_start: date, period_end: date) -> Projection:
    """The period's consumption: known days before `today`, the model's forecast from `today` on."""
    known = [d for d in _days(period_start, min(today, period_end)) if d in daily]
    consumed = math.fsum(daily[d] for d in known)
    model = Model(daily, today)
    errors = backtest(daily, today)
    future = _days(max(today, period_start), period_end)
    days = [DayForecast(d, daily.get(d), None) for d in _days(period_start, min(today, period_end))]
    if not model.ready:
        return Projection(period_start, period_end, consumed, None, None, None, None, days)
    forecasts = [DayForecast(d, None, model(d)) for d in future]
    rest = math.fsum(f.forecast or 0.0 for f in forecasts)
    # The root mean square of the relative errors: their spread and their bias, around the forecast.
    spread = math.sqrt(statistics.fmean(e * e for e in errors)) if len(errors) >= 2 else UNTESTED_SPREAD
    low, high = max(0.0, rest * (1 - Z90 * spread)), rest * (1 + Z90 * spread)
    mape = None if not errors else 100 * statistics.fmean(abs(e) for e in errors)
    return Projection(
        period_start, period_end, consumed, consumed + rest, consumed + low, consumed + high, mape, days + forecasts
    )
