"""The building balance: a building's main meter against the sum of its units' meters of the same medium.

Per bucket, `main - units` is what the main meter counted that no unit's meter did: common pipes leaking, a unit
meter missing, stopped or bypassed, or the meters' own tolerance. Its `share` of the main meter's figure is what a
syndic watches.

Every figure is a `CounterResult` of `domain.consumption` (or of the rollups, which equal it), so the balance is the
difference of the figures every other report gives. A figure resting on a gap (`estimated`), or a unit meter without
any figure in a bucket where the main meter has one, makes the bucket `estimated`: the share is then a best estimate,
never presented as measured. A unit meter measuring in a unit that cannot be converted to the main meter's
(`factor` None) has no figure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from koprogo_iot.domain.consumption import Bucket, CounterResult


@dataclass(frozen=True, slots=True)
class UnitMeter:
    """A unit meter's figures per bucket, and the factor converting them to the main meter's unit of measure."""

    results: Sequence[CounterResult]
    factor: float | None  # None: a unit that does not convert (it then has no figure)


@dataclass(frozen=True, slots=True)
class BalanceBucket:
    """The main meter against the sum of the unit meters over one bucket, in the main meter's unit of measure."""

    start: datetime
    end: datetime
    main: float | None  # the main meter's consumption; None: unknown
    units: float | None  # the sum of the unit meters with a figure; None: none has one
    unexplained: float | None  # main - units; None unless both are known
    share: float | None  # unexplained / main (0.04 is 4 %); None unless both are known and main is not 0
    units_measured: int  # unit meters with a figure
    units_total: int
    estimated: bool  # a figure spreads a gap, or a unit meter has no figure while the main meter has one
    complete: bool  # every meter has readings on or before the start and on or after the end


def balance_buckets(
    grid: Sequence[Bucket], main: Sequence[CounterResult], units: Sequence[UnitMeter]
) -> list[BalanceBucket]:
    """The balance per bucket of `grid`, from each meter's figures for the same buckets."""
    buckets = []
    for index, (start, end) in enumerate(grid):
        head = main[index]
        figures = [(meter.results[index], meter.factor) for meter in units]
        known = [r.consumption * f for r, f in figures if r.consumption is not None and f is not None]
        missing = len(figures) - len(known)
        buckets.append(
            _bucket(
                start,
                end,
                head.consumption,
                math.fsum(known) if known else None,
                len(known),
                len(figures),
                estimated=head.estimated or any(r.estimated for r, _ in figures) or bool(missing and head.consumption),
                complete=head.complete and all(r.complete for r, _ in figures),
            )
        )
    return buckets


def balance_total(buckets: Sequence[BalanceBucket]) -> BalanceBucket | None:
    """The balance over all `buckets` together (consumption of adjacent buckets adds up); None without buckets."""
    if not buckets:
        return None
    mains = [b.main for b in buckets if b.main is not None]
    units = [b.units for b in buckets if b.units is not None]
    return _bucket(
        buckets[0].start,
        buckets[-1].end,
        math.fsum(mains) if mains else None,
        math.fsum(units) if units else None,
        min(b.units_measured for b in buckets),
        buckets[0].units_total,
        estimated=any(b.estimated for b in buckets),
        complete=all(b.complete for b in buckets),
    )


def _bucket(
    start: datetime,
    end: datetime,
    main: float | None,
    units: float | None,
    measured: int,
    total: int,
    *,
    estimated: bool,
    complete: bool,
) -> BalanceBucket:
    unexplained = None if main is None or units is None else main - units
    share = None if unexplained is None or not main else unexplained / main
    return BalanceBucket(start, end, main, units, unexplained, share, measured, total, estimated, complete)
