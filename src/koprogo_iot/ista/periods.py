"""ISTA consumption between consecutive actual readings of a meter, across meter replacements.

A period runs from one ACTUAL reading to the next. ESTIMATED readings are left out. A replacement inside the
period gives two readings, REPLACED_OLD (the old meter's final index) then REPLACED_NEW (the new meter's initial
index), so the consumption is (old final - previous) + (next - new initial). On one date, readings are taken in
the order REPLACED_OLD, REPLACED_NEW, ACTUAL: an actual reading on the day of a replacement is the new meter's.
A reading dated D is the index at local midnight starting D (Europe/Brussels), so consecutive periods tile time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from koprogo_iot.domain.consumption import DEFAULT_ZONE
from koprogo_iot.domain.ista import IstaReading, ReadingKind

_ORDER_ON_A_DAY = {ReadingKind.REPLACED_OLD: 0, ReadingKind.REPLACED_NEW: 1, ReadingKind.ACTUAL: 2}
_ZONE = ZoneInfo(DEFAULT_ZONE)


@dataclass(frozen=True, slots=True)
class IstaPeriod:
    """ISTA's consumption from one actual reading to the next; None, with the problem, when the indexes disagree."""

    start: date
    end: date
    consumption: float | None
    replacements: int
    problem: str | None = None


def reading_instant(day: date) -> datetime:
    """The instant a reading dated `day` stands for: local midnight at the start of that day."""
    return datetime(day.year, day.month, day.day, tzinfo=_ZONE)


def ista_periods(readings: Iterable[IstaReading]) -> list[IstaPeriod]:
    """The periods between consecutive ACTUAL readings; values must already be in one unit."""
    ordered = sorted(
        (r for r in readings if r.kind in _ORDER_ON_A_DAY), key=lambda r: (r.reading_date, _ORDER_ON_A_DAY[r.kind])
    )
    periods: list[IstaPeriod] = []
    walk: _Walk | None = None
    for reading in ordered:
        if reading.kind is ReadingKind.ACTUAL:
            if walk is not None:
                periods.append(walk.close(reading))
            walk = _Walk(reading)
        elif walk is not None:  # a replacement before the first actual reading opens no period
            walk.replace(reading)
    return periods


class _Walk:
    """The running sum of one period: the index the current meter counts from, and what it counted so far."""

    def __init__(self, opening: IstaReading) -> None:
        self.opening = opening
        self.base = opening.value
        self.counted = 0.0
        self.replacements = 0
        self.awaiting_new = False
        self.problem: str | None = None

    def _segment(self, reading: IstaReading) -> None:
        if reading.value < self.base and self.problem is None:
            self.problem = (
                f"the index went down from {self.base:g} to {reading.value:g} on {reading.reading_date} "
                "without a replacement"
            )
        self.counted += reading.value - self.base

    def replace(self, reading: IstaReading) -> None:
        if reading.kind is ReadingKind.REPLACED_OLD:
            if self.awaiting_new:
                self._fail(f"two REPLACED_OLD readings without a REPLACED_NEW between them ({reading.reading_date})")
            self._segment(reading)
            self.awaiting_new = True
        else:
            if not self.awaiting_new:
                self._fail(f"a REPLACED_NEW reading without a REPLACED_OLD before it ({reading.reading_date})")
            self.base = reading.value
            self.awaiting_new = False
            self.replacements += 1

    def close(self, closing: IstaReading) -> IstaPeriod:
        if self.awaiting_new:
            self._fail("a REPLACED_OLD reading without the new meter's REPLACED_NEW reading")
        self._segment(closing)
        consumption = None if self.problem else self.counted
        return IstaPeriod(self.opening.reading_date, closing.reading_date, consumption, self.replacements, self.problem)

    def _fail(self, problem: str) -> None:
        self.problem = self.problem or problem
