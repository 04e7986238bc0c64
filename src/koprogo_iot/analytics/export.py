"""CSV export of analytics results: a header row, then one row per bucket and group.

Times are ISO 8601 in UTC (`2026-03-29T00:00:00Z`), numbers use `.` as decimal separator and no exponent, an
unknown figure is an empty cell, flags are `true`/`false`: what spreadsheets and pandas read without options.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from enum import Enum
from uuid import UUID

from koprogo_iot.analytics.aggregates import ComparisonReport, ConsumptionReport, MedianReport
from koprogo_iot.analytics.series import CounterPoint, GaugePoint, TimeSeries
from koprogo_iot.domain.sensors import MeasurementKind

AnalyticsResult = TimeSeries | ConsumptionReport | MedianReport | ComparisonReport
Cell = str | float | int | bool | datetime | UUID | None
DECIMALS = 9  # far below any meter's resolution, and it hides float noise such as 0.30000000000000004


def to_csv(result: AnalyticsResult) -> str:
    """The result as CSV text."""
    header, rows = _table(result)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180 line breaks
    writer.writerow(header)
    writer.writerows([_cell(value) for value in row] for row in rows)
    return out.getvalue()


def _table(result: AnalyticsResult) -> tuple[Sequence[str], Iterable[Sequence[Cell]]]:
    if isinstance(result, TimeSeries):
        return _series_table(result)
    if isinstance(result, ConsumptionReport):
        header = ["group", "label", "unit_of_measure", "start", "end", "consumption", "sensors", "complete"]
        return header, (
            (g.key, g.label, g.unit_of_measure, b.start, b.end, b.consumption, b.sensors, b.complete)
            for g in result.groups
            for b in g.buckets
        )
    if isinstance(result, MedianReport):
        header = ["unit_id", "unit_name", "unit_of_measure", "start", "end", "consumption", "median"]
        header += ["deviation_percent", "complete"]
        return header, (
            (u.unit_id, u.unit_name, u.unit_of_measure, result.start, result.end, u.consumption, u.median)
            + (u.deviation_percent, u.complete)
            for u in result.units
        )
    header = ["group", "label", "unit_of_measure", "previous_start", "previous_end", "previous", "start", "end"]
    header += ["current", "change_percent", "complete"]
    return header, (
        (g.key, g.label, g.unit_of_measure, result.previous_start, result.previous_end, g.previous)
        + (result.start, result.end, g.current, g.change_percent, g.complete)
        for g in result.groups
    )


def _series_table(series: TimeSeries) -> tuple[Sequence[str], Iterable[Sequence[Cell]]]:
    sensor = (series.sensor.id, series.sensor.unit_of_measure)
    points = series.points
    if series.sensor.measurement_kind is MeasurementKind.CUMULATIVE:
        header = ["sensor_id", "unit_of_measure", "start", "end", "consumption", "last_index", "readings", "resets"]
        header += ["complete", "estimated"]
        counters = [p for p in points if isinstance(p, CounterPoint)]
        return header, (
            sensor + (p.start, p.end, p.consumption, p.last_index, p.readings, p.resets, p.complete, p.estimated)
            for p in counters
        )
    header = ["sensor_id", "unit_of_measure", "start", "end", "avg", "min", "max", "last", "count"]
    gauges = [p for p in points if isinstance(p, GaugePoint)]
    return header, (sensor + (p.start, p.end, p.avg, p.min, p.max, p.last, p.count) for p in gauges)


def _cell(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, float):
        return _decimal(value)
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def _decimal(value: float) -> str:
    """Fixed-point text with up to DECIMALS decimals, trailing zeros dropped: 1e-07 becomes 0.0000001."""
    if not math.isfinite(value):
        return ""
    text = f"{value:.{DECIMALS}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
