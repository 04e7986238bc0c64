"""The ISTA import file: `;`-separated rows, one reading each, parsed into rows and per-line errors.

The layout is documented in docs/ista-import.md. Line numbers are the file's physical lines, header = line 1.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import TypeVar

from koprogo_iot.domain.errors import InvalidValue
from koprogo_iot.domain.ista import IstaReading, MeterType, ReadingKind
from koprogo_iot.domain.units import canonical, conversion_factor

COLUMNS = ("building", "unit", "meter_number", "meter_type", "reading_date", "value", "unit_of_measure", "reading_kind")
# French headers as a syndic's spreadsheet would have them, compared without accents, case or punctuation.
ALIASES = {
    "immeuble": "building",
    "batiment": "building",
    "residence": "building",
    "lot": "unit",
    "appartement": "unit",
    "compteur": "meter_number",
    "numero_compteur": "meter_number",
    "numero_de_compteur": "meter_number",
    "serial_number": "meter_number",
    "numero_de_serie": "meter_number",
    "type_compteur": "meter_type",
    "type_de_compteur": "meter_type",
    "date": "reading_date",
    "date_releve": "reading_date",
    "date_de_releve": "reading_date",
    "index": "value",
    "valeur": "value",
    "unite": "unit_of_measure",
    "unit_of_measurement": "unit_of_measure",
    "type_releve": "reading_kind",
    "type_de_releve": "reading_kind",
    "kind": "reading_kind",
}
MAX_TEXT = 200  # names and meter numbers longer than this are typing accidents
_NUMBER = re.compile(r"\d+(?:[.,]\d*)?|[.,]\d+")
_SPACES = re.compile(r"[ \u00a0\u202f]")  # thousands separators of French spreadsheets: 1 234,5
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EU_DATE = re.compile(r"\d{1,2}/\d{1,2}/\d{4}")
_E = TypeVar("_E", bound=StrEnum)


@dataclass(frozen=True, slots=True)
class IstaRow:
    """One valid reading row; `unit` is "" for a common meter of the building."""

    line: int
    building: str
    unit: str
    meter_number: str
    meter_type: MeterType
    reading: IstaReading


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    message: str


@dataclass(slots=True)
class ParsedFile:
    rows: list[IstaRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def decode(data: bytes) -> str:
    """UTF-8 (with or without a BOM), else Windows-1252, the encoding Excel saves CSV in on Belgian Windows."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        raise InvalidValue("the file is neither UTF-8 nor Windows-1252 text") from None


def parse(data: bytes) -> ParsedFile:
    """Every row of the file, valid or not; raise InvalidValue when the file has no usable header."""
    reader = csv.reader(io.StringIO(decode(data), newline=""), delimiter=";")
    positions: dict[str, int] | None = None
    width = 0
    parsed = ParsedFile()
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue  # blank lines, often at the end of an export
        if positions is None:
            positions, width = _header(cells), len(cells)
            continue
        if len(cells) != width:
            parsed.errors.append(
                RowError(reader.line_num, f"expected {width} columns separated by ';', found {len(cells)}")
            )
            continue
        row = _row(reader.line_num, {name: cells[index].strip() for name, index in positions.items()})
        if isinstance(row, IstaRow):
            parsed.rows.append(row)
        else:
            parsed.errors.append(row)
    if positions is None:
        raise InvalidValue(f"the file is empty: expected a header row {';'.join(COLUMNS)}")
    return parsed


def _normalized(name: str) -> str:
    without_accents = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]+", "_", without_accents.casefold()).strip("_")


def _header(cells: list[str]) -> dict[str, int]:
    positions: dict[str, int] = {}
    for index, cell in enumerate(cells):
        key = _normalized(cell)
        name = key if key in COLUMNS else ALIASES.get(key)
        if name is None:
            raise InvalidValue(f"unknown column {cell.strip()!r} in the header: expected {';'.join(COLUMNS)}")
        if name in positions:
            raise InvalidValue(f"column {name} appears twice in the header")
        positions[name] = index
    missing = [name for name in COLUMNS if name not in positions]
    if missing:
        raise InvalidValue(f"the header lacks {', '.join(missing)}: expected {';'.join(COLUMNS)}")
    return positions


def _row(line: int, cells: dict[str, str]) -> IstaRow | RowError:
    problems: list[str] = []

    def take(name: str, parse: Callable[[str], object]) -> object:
        try:
            return parse(cells[name])
        except InvalidValue as exc:
            problems.append(str(exc))
            return None

    building = take("building", lambda text: _text(text, "building", required=True))
    unit = take("unit", lambda text: _text(text, "unit", required=False))
    meter_number = take("meter_number", lambda text: _text(text, "meter number", required=True))
    meter_type = take("meter_type", lambda text: _member(MeterType, text, "meter type"))
    reading_date = take("reading_date", _date)
    value = take("value", _value)
    kind = take("reading_kind", lambda text: _member(ReadingKind, text, "reading kind"))
    unit_of_measure = canonical(cells["unit_of_measure"])
    if isinstance(meter_type, MeterType):
        take("unit_of_measure", lambda _: _check_unit(unit_of_measure, meter_type))
    if problems:
        return RowError(line, "; ".join(problems))
    # Without problems every field parsed: these only tell the type checker so.
    assert isinstance(building, str) and isinstance(unit, str) and isinstance(meter_number, str)
    assert isinstance(meter_type, MeterType) and isinstance(kind, ReadingKind)
    assert isinstance(reading_date, date) and isinstance(value, float)
    reading = IstaReading(reading_date, kind, value, unit_of_measure)
    return IstaRow(line, building, unit, meter_number, meter_type, reading)


def _text(text: str, name: str, *, required: bool) -> str:
    if required and not text:
        raise InvalidValue(f"{name} is empty")
    if len(text) > MAX_TEXT:
        raise InvalidValue(f"{name} is longer than {MAX_TEXT} characters")
    return text


def _member(enum: type[_E], text: str, name: str) -> _E:
    try:
        return enum(text.upper())
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise InvalidValue(f"unknown {name} {text!r}: expected one of {allowed}") from None


def _date(text: str) -> date:
    try:
        if _ISO_DATE.fullmatch(text):
            return date.fromisoformat(text)
        if _EU_DATE.fullmatch(text):
            return datetime.strptime(text, "%d/%m/%Y").date()
    except ValueError:
        raise InvalidValue(f"reading date {text!r} does not exist") from None
    raise InvalidValue(f"reading date {text!r} is not YYYY-MM-DD or DD/MM/YYYY")


def _value(text: str) -> float:
    compact = _SPACES.sub("", text)
    negative = compact.startswith("-")
    if not _NUMBER.fullmatch(compact.removeprefix("-")):
        raise InvalidValue(f"value {text!r} is not a number (one decimal separator, '.' or ',')")
    if negative:
        raise InvalidValue(f"value {text!r} is negative: a meter index cannot be")
    return float(compact.replace(",", "."))


def _check_unit(unit: str, meter_type: MeterType) -> None:
    if not meter_type.measures_physical_quantity:
        return  # allocators count in ISTA's own units, whatever the file calls them
    reference = meter_type.reference_unit
    if not unit or conversion_factor(unit, reference) is None:
        raise InvalidValue(f"unit {unit!r} is not one a {meter_type.value} meter counts in (e.g. {reference})")
