"""The cross-check report: ISTA's consumption of each meter and period against the linked IoT sensor's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from koprogo_iot.domain.consumption import CounterResult, relative_change
from koprogo_iot.domain.ista import IstaMeter, IstaReading
from koprogo_iot.ista.periods import IstaPeriod

DEFAULT_THRESHOLD_PERCENT = 5.0


class PeriodStatus(StrEnum):
    OK = "ok"  # within the threshold
    DEVIATION = "deviation"  # beyond the threshold: flagged
    NO_IOT_SENSOR = "no_iot_sensor"  # the meter is linked to no IoT sensor
    NOT_COMPARABLE = "not_comparable"  # allocator units, a gauge, or units of different quantities
    NO_IOT_DATA = "no_iot_data"  # the sensor has no pair of readings around any part of the period
    IOT_INCOMPLETE = "iot_incomplete"  # the sensor's readings cover only part of the period: not flagged
    ISTA_INCONSISTENT = "ista_inconsistent"  # ISTA's indexes give no consumption (see the note)


@dataclass(frozen=True, slots=True)
class PeriodComparison:
    """One period of one meter; both figures are in `unit_of_measure`, deviation = (IoT - ISTA) / ISTA."""

    start: date
    end: date
    ista_consumption: float | None
    iot_consumption: float | None
    unit_of_measure: str
    deviation_percent: float | None
    flagged: bool
    status: PeriodStatus
    replacements: int
    note: str | None = None


@dataclass(frozen=True, slots=True)
class MeterReport:
    meter: IstaMeter
    building_name: str
    unit_name: str | None
    periods: tuple[PeriodComparison, ...]
    estimated: tuple[IstaReading, ...]  # left out of the check, listed for the syndic to see


@dataclass(frozen=True, slots=True)
class IstaReport:
    start: date | None
    end: date | None
    threshold_percent: float
    meters: tuple[MeterReport, ...]

    @property
    def flagged(self) -> int:
        """How many periods deviate beyond the threshold."""
        return sum(period.flagged for meter in self.meters for period in meter.periods)


def uncompared(period: IstaPeriod, ista_unit: str, status: PeriodStatus, note: str | None) -> PeriodComparison:
    """A period with ISTA's figure only (no sensor, or nothing comparable)."""
    if period.problem is not None:
        status, note = PeriodStatus.ISTA_INCONSISTENT, period.problem
    return PeriodComparison(
        period.start, period.end, period.consumption, None, ista_unit, None, False, status, period.replacements, note
    )


def compare(
    period: IstaPeriod, factor: float, iot: CounterResult, sensor_unit: str, threshold_percent: float
) -> PeriodComparison:
    """ISTA's figure (times `factor`, into the sensor's unit) against the sensor's over the same period."""
    if period.consumption is None:
        return uncompared(period, sensor_unit, PeriodStatus.ISTA_INCONSISTENT, period.problem)
    ista = period.consumption * factor
    if iot.consumption is None:
        return PeriodComparison(
            period.start,
            period.end,
            ista,
            None,
            sensor_unit,
            None,
            False,
            PeriodStatus.NO_IOT_DATA,
            period.replacements,
            "the sensor has no readings around this period",
        )
    deviation = _deviation_percent(iot.consumption, ista)
    note: str | None
    if not iot.complete:
        status, flagged = PeriodStatus.IOT_INCOMPLETE, False
        note = "the sensor's readings cover only part of the period"
    else:
        flagged = deviation is None or abs(deviation) > threshold_percent
        status = PeriodStatus.DEVIATION if flagged else PeriodStatus.OK
        note = "ISTA counted nothing but the sensor did" if deviation is None else None
    return PeriodComparison(
        period.start,
        period.end,
        ista,
        iot.consumption,
        sensor_unit,
        deviation,
        flagged,
        status,
        period.replacements,
        note,
    )


def _deviation_percent(iot: float, ista: float) -> float | None:
    change = relative_change(iot, ista)
    if change is not None:
        return change * 100
    return 0.0 if iot == 0 else None  # ISTA counted nothing: any IoT consumption is flagged
