"""The ISTA file format: encodings, decimals, dates, header aliases, and bad rows reported by line."""

from datetime import date

import pytest

from koprogo_iot.domain.errors import InvalidValue
from koprogo_iot.domain.ista import MeterType, ReadingKind
from koprogo_iot.ista.csv_format import COLUMNS, parse

HEADER = ";".join(COLUMNS)


def lines(*rows: str, header: str = HEADER) -> str:
    return "\r\n".join([header, *rows]) + "\r\n"


def test_utf8_with_bom_iso_dates_and_point_decimals() -> None:
    data = "\ufeff" + lines("Résidence Étoile;App. 1;00123456;WATER_COLD;2025-01-01;123.456;m3;ACTUAL")
    parsed = parse(data.encode("utf-8"))
    assert parsed.errors == []
    [row] = parsed.rows
    assert (row.line, row.building, row.unit, row.meter_number) == (2, "Résidence Étoile", "App. 1", "00123456")
    assert row.meter_type is MeterType.WATER_COLD
    assert row.reading.reading_date == date(2025, 1, 1)
    assert row.reading.value == 123.456
    assert row.reading.unit_of_measure == "m³"  # canonical spelling
    assert row.reading.kind is ReadingKind.ACTUAL


def test_windows_1252_french_header_comma_decimals_and_european_dates() -> None:
    header = "Immeuble;Lot;Numéro compteur;Type compteur;Date relevé;Index;Unité;Type relevé"
    text = lines(
        "Résidence Été;Rez;42;heat;31/12/2025;1 234,5;kWh;actual",
        "Résidence Été;Rez;42;HEAT;1/7/2025;1000,25;MWh;ESTIMATED",
        header=header,
    )
    parsed = parse(text.encode("cp1252"))
    assert parsed.errors == []
    first, second = parsed.rows
    assert first.building == "Résidence Été"
    assert (first.reading.reading_date, first.reading.value) == (date(2025, 12, 31), 1234.5)
    assert (second.reading.reading_date, second.reading.value, second.reading.unit_of_measure) == (
        date(2025, 7, 1),
        1000.25,
        "MWh",
    )
    assert second.reading.kind is ReadingKind.ESTIMATED


def test_columns_in_any_order_quoted_cells_blank_lines_and_common_meters() -> None:
    header = "value;building;unit;meter_number;meter_type;reading_date;unit_of_measure;reading_kind"
    text = lines('"12,5";"Bloc A; entrée 2";;M1;WATER_HOT;2025-02-01;L;ACTUAL', "", ";;;;;;;", header=header)
    parsed = parse(text.encode())
    assert parsed.errors == []
    [row] = parsed.rows
    assert (row.building, row.unit, row.reading.value) == ("Bloc A; entrée 2", "", 12.5)


def test_bad_rows_are_reported_with_their_line_and_the_rest_is_kept() -> None:
    text = lines(
        "B;U;1;WATER_COLD;2025-01-01;10;m³;ACTUAL",  # line 2: good
        "B;U;1;WATER_COLD;2025-01-01;10;m³",  # 3: a column short
        "B;U;1;WATER_COLD;31/02/2025;10;m³;ACTUAL",  # 4: no such day
        "B;U;1;WATER_COLD;2025/01/01;10;m³;ACTUAL",  # 5: neither format
        "",  # 6: blank, skipped
        "B;U;1;WATER_COLD;2025-01-02;-3;m³;ACTUAL",  # 7: negative
        "B;U;1;WATER_COLD;2025-01-02;douze;m³;ACTUAL",  # 8: not a number
        "B;U;1;WATER_COLD;2025-01-02;1.234,5;m³;ACTUAL",  # 9: two separators
        "B;U;1;GAS;2025-01-02;10;m³;ACTUAL",  # 10: unknown meter type
        "B;U;1;WATER_COLD;2025-01-02;10;m³;GUESSED",  # 11: unknown kind
        "B;U;1;WATER_COLD;2025-01-02;10;kWh;ACTUAL",  # 12: water counted in energy
        ";U;;WATER_COLD;2025-01-02;10;m³;ACTUAL",  # 13: no building, no meter number
        "B;U;2;HCA;2025-01-02;310;;ACTUAL",  # 14: good: allocators have no physical unit
    )
    parsed = parse(text.encode())
    assert [row.line for row in parsed.rows] == [2, 14]
    errors = {error.line: error.message for error in parsed.errors}
    assert sorted(errors) == [3, 4, 5, 7, 8, 9, 10, 11, 12, 13]
    assert "expected 8 columns" in errors[3] and "found 7" in errors[3]
    assert "does not exist" in errors[4]
    assert "YYYY-MM-DD or DD/MM/YYYY" in errors[5]
    assert "negative" in errors[7]
    assert "not a number" in errors[8] and "not a number" in errors[9]
    assert "meter type 'GAS'" in errors[10] and "WATER_COLD" in errors[10]
    assert "reading kind 'GUESSED'" in errors[11]
    assert "unit 'kWh'" in errors[12]
    assert "building is empty" in errors[13] and "meter number is empty" in errors[13]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty"),
        (b"\n\n", "the file is empty"),
        (b"building,unit,meter_number\n", "unknown column"),  # comma-separated: one unknown column
        (lines(header=HEADER.replace(";reading_kind", "")).encode(), "lacks reading_kind"),
        (lines(header=HEADER + ";building").encode(), "appears twice"),
        (b"\x81\x8d\x8f", "neither UTF-8 nor Windows-1252"),
    ],
)
def test_a_file_without_a_usable_header_is_refused_whole(data: bytes, message: str) -> None:
    with pytest.raises(InvalidValue, match=message):
        parse(data)
