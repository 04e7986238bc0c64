"""ISTA import and cross-check on real storage (SQLite and PostgreSQL): the issue's acceptance, and its edges."""

from __future__ import annotations

import argparse
from datetime import date, timedelta
from pathlib import Path

import pytest

from koprogo_iot.cli import ista as ista_cli
from koprogo_iot.config import Settings
from koprogo_iot.domain.access import Principal
from koprogo_iot.domain.errors import Forbidden, InvalidValue, NotFound
from koprogo_iot.domain.ista import IstaReading, ReadingKind
from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.domain.sensors import IoTSensor
from koprogo_iot.domain.tenancy import User
from koprogo_iot.ista.csv_format import COLUMNS
from koprogo_iot.ista.periods import IstaPeriod, ista_periods, reading_instant
from koprogo_iot.ista.report import IstaReport, MeterReport, PeriodStatus
from koprogo_iot.services.ista import IstaService
from koprogo_iot.storage.ports import Ingested, Storage
from koprogo_iot.storage.sql.database import Database
from tests.conftest import make_tenant

JAN, JUL = date(2025, 1, 1), date(2025, 7, 1)


def ista_file(*rows: str) -> bytes:
    return ("\n".join([";".join(COLUMNS), *rows]) + "\n").encode()


def principal(user: User) -> Principal:
    return Principal.of(user)


async def record(storage: Storage, sensor: IoTSensor, *points: tuple[date, float], hours: float = 0) -> None:
    """IoT index readings at local midnight of each date, shifted by `hours`."""
    await storage.readings.ingest(
        [Ingested(IoTReading.measured(sensor, reading_instant(d) + timedelta(hours=hours), v)) for d, v in points]
    )


def meter_report(report: IstaReport, number: str) -> MeterReport:
    return next(m for m in report.meters if m.meter.meter_number == number)


def service(storage: Storage) -> IstaService:
    return IstaService(storage.ista, storage.tenancy, storage.sensors, storage.source)


async def test_a_7_percent_deviation_is_flagged_3_percent_is_not_and_a_bad_row_is_reported(storage: Storage) -> None:
    t = await make_tenant(storage)
    one, two = t.unit_sensor.sensor_id, t.other_unit_sensor.sensor_id  # meter numbers = device ids: linked
    b = t.building.name
    data = ista_file(
        f"{b};App. 1;{one};WATER_COLD;2025-01-01;100;m³;ACTUAL",
        f"{b};App. 1;{one};WATER_COLD;01/07/2025;200;m³;ACTUAL",
        f"{b};App. 2;{two};WATER_COLD;2025-01-01;100000;L;ACTUAL",  # litres: converted to the sensor's m³
        f"{b};App. 2;{two};WATER_COLD;not a date;150000;L;ACTUAL",  # line 5: malformed
        f"{b};App. 2;{two};WATER_COLD;2025-07-01;200000;L;ACTUAL",
    )
    result = await service(storage).import_csv(principal(t.syndic), data)
    assert (result.imported, result.skipped_duplicates) == (4, 0)
    assert [(e.line, "reading date 'not a date'" in e.message) for e in result.errors] == [(5, True)]

    # Sensor 1 counts 107 m³ over the period, read exactly on its edges; the readings outside must not count.
    await record(storage, t.unit_sensor, (date(2024, 12, 1), 990), (JAN, 1000), (date(2025, 4, 1), 1050), (JUL, 1107))
    await record(storage, t.unit_sensor, (date(2025, 8, 1), 1150))
    # Sensor 2 is read 12 h off the edges: each edge step is interpolated (half of it falls inside the period).
    await record(storage, t.other_unit_sensor, (date(2024, 12, 31), 0), (date(2025, 6, 30), 102), hours=12)
    await record(storage, t.other_unit_sensor, (JUL, 104), hours=12)

    report = await service(storage).report(principal(t.syndic))
    first, second = meter_report(report, one), meter_report(report, two)
    assert first.meter.sensor_id == t.unit_sensor.id and second.meter.sensor_id == t.other_unit_sensor.id
    [p1], [p2] = first.periods, second.periods
    assert (p1.start, p1.end, p1.unit_of_measure) == (JAN, JUL, "m³")
    assert (p1.ista_consumption, p1.iot_consumption) == (100, 107)
    assert p1.deviation_percent == pytest.approx(7.0)
    assert p1.flagged and p1.status is PeriodStatus.DEVIATION
    # 0 -> 102 over 181 days less the hour of the spring DST change, 12 h of which fall before JAN;
    # 102 -> 104 over one day, half of it after JUL.
    span = 181 * 24 - 1
    iot_two = 102 * (span - 12) / span + 1
    assert p2.ista_consumption == pytest.approx(100) and p2.iot_consumption == pytest.approx(iot_two)
    assert p2.deviation_percent == pytest.approx(iot_two - 100)
    assert 2.5 < p2.deviation_percent < 3.5 and not p2.flagged and p2.status is PeriodStatus.OK
    assert report.flagged == 1

    stricter = await service(storage).report(principal(t.syndic), threshold_percent=2)
    assert stricter.flagged == 2
    lenient = await service(storage).report(principal(t.syndic), threshold_percent=10)
    assert lenient.flagged == 0


async def test_reimporting_is_idempotent_and_a_contradicting_value_is_refused(storage: Storage) -> None:
    t = await make_tenant(storage)
    b = t.building.name
    rows = [f"{b};App. 1;M-1;WATER_COLD;2025-01-01;10;m³;ACTUAL", f"{b};App. 1;M-1;WATER_COLD;2025-07-01;20;m³;ACTUAL"]
    ista = service(storage)
    first = await ista.import_csv(principal(t.syndic), ista_file(*rows, rows[0]))  # the same row twice in a file
    assert (first.imported, first.skipped_duplicates, first.errors) == (2, 1, [])
    again = await ista.import_csv(principal(t.syndic), ista_file(*rows))
    assert (again.imported, again.skipped_duplicates, again.errors) == (0, 2, [])
    changed = await ista.import_csv(principal(t.syndic), ista_file(rows[0].replace(";10;", ";11;")))
    assert (changed.imported, changed.skipped_duplicates) == (0, 0)
    [error] = changed.errors
    assert (
        error.line == 2
        and "ACTUAL reading of meter M-1 on 2025-01-01 is already stored as 10 m³, not 11 m³" in error.message
    )
    stored = await storage.ista.readings(t.organization.id)
    assert sum(len(readings) for readings in stored.values()) == 2


async def test_rows_naming_unknown_places_or_moving_a_meter_are_refused(storage: Storage) -> None:
    t = await make_tenant(storage)
    other = await make_tenant(storage, "Other")
    b = t.building.name
    result = await service(storage).import_csv(
        principal(t.syndic),
        ista_file(
            f"{b};App. 1;M-1;WATER_COLD;2025-01-01;10;m³;ACTUAL",
            f"  {b.upper()} ;app.  1;M-2;WATER_HOT;2025-01-01;10;m³;ACTUAL",  # names match loosely
            f"{b};;M-3;HEAT;2025-01-01;10;MWh;ACTUAL",  # no unit: a common meter
            "Nowhere;App. 1;M-4;WATER_COLD;2025-01-01;10;m³;ACTUAL",  # line 5
            f"{b};App. 9;M-5;WATER_COLD;2025-01-01;10;m³;ACTUAL",  # line 6
            f"{other.building.name};App. 1;M-6;WATER_COLD;2025-01-01;10;m³;ACTUAL",  # 7: another organization's
            f"{b};App. 2;M-1;WATER_COLD;2025-07-01;20;m³;ACTUAL",  # 8: M-1 is App. 1's
            f"{b};App. 1;M-1;WATER_HOT;2025-07-01;20;m³;ACTUAL",  # 9: and a cold water meter
        ),
    )
    assert result.imported == 3
    errors = {e.line: e.message for e in result.errors}
    assert sorted(errors) == [5, 6, 7, 8, 9]
    assert "no building named 'Nowhere'" in errors[5]
    assert f"no unit named 'App. 9' in building '{b}'" in errors[6]
    assert "no building named" in errors[7]
    assert errors[8] == f"meter M-1 is a WATER_COLD meter of {b} / App. 1" == errors[9]
    meters = {m.meter_number: m for m in await service(storage).meters(principal(t.syndic))}
    assert sorted(meters) == ["M-1", "M-2", "M-3"]
    assert meters["M-2"].unit_id == t.units[0].id and meters["M-3"].unit_id is None


async def test_meter_replacement_counts_both_meters(storage: Storage) -> None:
    t = await make_tenant(storage)
    number, b = t.unit_sensor.sensor_id, t.building.name
    replaced = date(2025, 3, 15)
    await service(storage).import_csv(
        principal(t.syndic),
        ista_file(
            f"{b};App. 1;{number};WATER_COLD;2025-07-01;70,5;m³;ACTUAL",  # any order in the file
            f"{b};App. 1;{number};WATER_COLD;2025-01-01;500;m³;ACTUAL",
            f"{b};App. 1;{number};WATER_COLD;15/03/2025;0,5;m³;REPLACED_NEW",
            f"{b};App. 1;{number};WATER_COLD;15/03/2025;530;m³;REPLACED_OLD",
        ),
    )
    # The IoT meter was not replaced: it counted 100 m³ straight.
    await record(storage, t.unit_sensor, (JAN, 5000), (replaced, 5030), (JUL, 5100))
    [period] = meter_report(await service(storage).report(principal(t.syndic)), number).periods
    assert period.ista_consumption == pytest.approx((530 - 500) + (70.5 - 0.5))
    assert period.iot_consumption == 100 and period.replacements == 1 and period.status is PeriodStatus.OK


async def test_estimated_readings_are_left_out_and_listed_apart(storage: Storage) -> None:
    t = await make_tenant(storage)
    number, b = t.unit_sensor.sensor_id, t.building.name
    await service(storage).import_csv(
        principal(t.syndic),
        ista_file(
            f"{b};App. 1;{number};WATER_COLD;2025-01-01;100;m³;ACTUAL",
            f"{b};App. 1;{number};WATER_COLD;2025-04-01;9999;m³;ESTIMATED",  # would make a deviation huge
            f"{b};App. 1;{number};WATER_COLD;2025-07-01;200;m³;ACTUAL",
            f"{b};App. 1;{number};WATER_COLD;2026-01-01;260;m³;ESTIMATED",  # closes no period
        ),
    )
    await record(storage, t.unit_sensor, (JAN, 0), (JUL, 101))
    ista = service(storage)
    meter = meter_report(await ista.report(principal(t.syndic)), number)
    [period] = meter.periods
    assert (period.start, period.end, period.ista_consumption, period.status) == (JAN, JUL, 100, PeriodStatus.OK)
    assert [(r.reading_date, r.value) for r in meter.estimated] == [(date(2025, 4, 1), 9999), (date(2026, 1, 1), 260)]
    later = meter_report(await ista.report(principal(t.syndic), start=JUL), number)
    assert later.periods == () and [r.value for r in later.estimated] == [260]


async def test_allocators_are_not_comparable_and_unlinked_meters_have_no_sensor(storage: Storage) -> None:
    t = await make_tenant(storage)
    b = t.building.name
    await service(storage).import_csv(
        principal(t.syndic),
        ista_file(
            f"{b};App. 1;{t.unit_sensor.sensor_id};HCA;2025-01-01;0;;ACTUAL",  # even linked to a sensor
            f"{b};App. 1;{t.unit_sensor.sensor_id};HCA;2025-07-01;312;;ACTUAL",
            f"{b};App. 2;HCA-9;HCA;2025-01-01;0;units;ACTUAL",
            f"{b};App. 2;HCA-9;HCA;2025-07-01;250;units;ACTUAL",
            f"{b};App. 2;W-9;WATER_HOT;2025-01-01;1;m³;ACTUAL",
            f"{b};App. 2;W-9;WATER_HOT;2025-07-01;3;m³;ACTUAL",
        ),
    )
    report = await service(storage).report(principal(t.syndic))
    for number, ista in ((t.unit_sensor.sensor_id, 312), ("HCA-9", 250)):
        [period] = meter_report(report, number).periods
        assert (period.ista_consumption, period.iot_consumption, period.unit_of_measure) == (ista, None, "units")
        assert period.status is PeriodStatus.NOT_COMPARABLE and not period.flagged
    [period] = meter_report(report, "W-9").periods
    assert (period.ista_consumption, period.status, period.flagged) == (2, PeriodStatus.NO_IOT_SENSOR, False)
    assert report.flagged == 0


async def test_explicit_link_with_tenancy_and_incomplete_iot_data(storage: Storage) -> None:
    t, other = await make_tenant(storage), await make_tenant(storage, "Other")
    b = t.building.name
    ista = service(storage)
    await ista.import_csv(
        principal(t.syndic),
        ista_file(
            f"{b};App. 2;ISTA-77;WATER_COLD;2025-01-01;0;m³;ACTUAL",
            f"{b};App. 2;ISTA-77;WATER_COLD;2025-07-01;100;m³;ACTUAL",
        ),
    )
    with pytest.raises(NotFound):
        await ista.link_sensor(principal(t.syndic), "ISTA-77", other.other_unit_sensor.id)  # another organization's
    with pytest.raises(NotFound):
        await ista.link_sensor(principal(other.syndic), "ISTA-77", other.other_unit_sensor.id)  # not their meter
    with pytest.raises(Forbidden):
        await ista.link_sensor(principal(t.owner), "ISTA-77", t.other_unit_sensor.id)
    with pytest.raises(Forbidden):
        await ista.report(principal(t.owner))
    with pytest.raises(Forbidden):
        await ista.import_csv(principal(t.owner), ista_file())
    linked = await ista.link_sensor(principal(t.syndic), "ISTA-77", t.other_unit_sensor.id)
    assert linked.sensor_id == t.other_unit_sensor.id

    await record(storage, t.other_unit_sensor, (date(2025, 4, 1), 0), (JUL, 60))  # from April only
    [period] = meter_report(await ista.report(principal(t.syndic)), "ISTA-77").periods
    assert (period.iot_consumption, period.status, period.flagged) == (60, PeriodStatus.IOT_INCOMPLETE, False)

    await ista.link_sensor(principal(t.syndic), "ISTA-77", t.common_sensor.id)  # a flow gauge in L/h
    [period] = meter_report(await ista.report(principal(t.syndic)), "ISTA-77").periods
    assert period.status is PeriodStatus.NOT_COMPARABLE and "gauge" in (period.note or "")

    await storage.sensors.delete(t.organization.id, t.common_sensor.id)  # the link goes with the sensor
    assert (await ista.meters(principal(t.syndic)))[0].sensor_id is None
    with pytest.raises(InvalidValue):
        await ista.report(principal(t.syndic), start=JUL, end=JAN)
    with pytest.raises(NotFound):
        await ista.report(principal(t.syndic), building_id=other.building.id)
    assert (await ista.report(principal(other.syndic))).meters == ()


def reading(day: date, kind: ReadingKind, value: float) -> IstaReading:
    return IstaReading(day, kind, value, "m³")


def test_periods_run_between_actual_readings_and_say_why_they_have_no_figure() -> None:
    a, o, n = ReadingKind.ACTUAL, ReadingKind.REPLACED_OLD, ReadingKind.REPLACED_NEW
    d = [date(2025, month, 1) for month in range(1, 7)]
    assert ista_periods([reading(d[2], a, 30), reading(d[0], a, 10), reading(d[1], a, 25)]) == [
        IstaPeriod(d[0], d[1], 15, 0),
        IstaPeriod(d[1], d[2], 5, 0),
    ]
    # Two replacements in one period; an actual reading on the day of a replacement is the new meter's.
    chain = [reading(d[0], a, 10), reading(d[1], o, 12), reading(d[1], n, 1), reading(d[2], o, 4), reading(d[2], n, 0)]
    assert ista_periods([*chain, reading(d[2], a, 0), reading(d[3], a, 2)]) == [
        IstaPeriod(d[0], d[2], 2 + 3, 2),
        IstaPeriod(d[2], d[3], 2, 0),
    ]
    [down] = ista_periods([reading(d[0], a, 10), reading(d[1], a, 9)])
    assert down.consumption is None and "went down from 10 to 9" in (down.problem or "")
    [orphan] = ista_periods([reading(d[0], a, 10), reading(d[1], o, 12), reading(d[2], a, 3)])
    assert orphan.consumption is None and "without the new meter's REPLACED_NEW" in (orphan.problem or "")
    assert ista_periods([reading(d[0], n, 0), reading(d[1], a, 5)]) == []  # nothing before the first actual


async def test_an_inconsistent_ista_period_is_reported_not_compared(storage: Storage) -> None:
    t = await make_tenant(storage)
    number, b = t.unit_sensor.sensor_id, t.building.name
    await service(storage).import_csv(
        principal(t.syndic),
        ista_file(
            f"{b};App. 1;{number};WATER_COLD;2025-01-01;50;m³;ACTUAL",
            f"{b};App. 1;{number};WATER_COLD;2025-07-01;40;m³;ACTUAL",
        ),
    )
    [period] = meter_report(await service(storage).report(principal(t.syndic)), number).periods
    assert (period.ista_consumption, period.status, period.flagged) == (None, PeriodStatus.ISTA_INCONSISTENT, False)


async def test_command_line_import_and_report(
    storage: Storage, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t = await make_tenant(storage)
    number, b = t.unit_sensor.sensor_id, t.building.name
    path = tmp_path / "ista.csv"
    path.write_bytes(
        ista_file(
            f"{b};App. 1;{number};WATER_COLD;2025-01-01;100;m³;ACTUAL",
            f"{b};App. 1;{number};WATER_COLD;2025-07-01;200;m³;ACTUAL",
            f"{b};App. 1;{number};WATER_COLD;2025-07-01;oops;m³;ESTIMATED",
        )
    )
    await record(storage, t.unit_sensor, (JAN, 0), (JUL, 107))
    parser = argparse.ArgumentParser()
    ista_cli.register(parser.add_subparsers(dest="command"))
    settings = Settings(database_url=database_url)
    org = str(t.organization.id)

    imported = parser.parse_args(["ista", "import", str(path), "--organization", org, "--database-url", database_url])
    assert await ista_cli.execute(settings, imported) == 1  # a row was refused
    out = capsys.readouterr().out
    assert "imported 2, skipped 0 already stored" in out and "line 4: value 'oops' is not a number" in out

    report = parser.parse_args(["ista", "report", "--organization", org, "--start", "2025-01-01", "--threshold", "5"])
    assert await ista_cli.execute(settings, report) == 0
    out = capsys.readouterr().out
    assert "threshold 5 %: 1 period(s) flagged" in out
    assert "2025-01-01 .. 2025-07-01" in out and "+7.0 %" in out and "deviation  <-- FLAGGED" in out


async def test_the_report_comes_from_the_daily_rollups_and_outlives_the_raw_readings(
    storage: Storage, db: Database
) -> None:
    """ISTA compares whole years: with raw readings kept 13 months (retention), the report of the year before would
    find nothing. It reads the daily rollups, which are kept for good: the same figures once the raw rows are gone."""
    t = await make_tenant(storage)
    one = t.unit_sensor.sensor_id
    b = t.building.name
    data = ista_file(
        f"{b};App. 1;{one};WATER_COLD;2025-01-01;100;m³;ACTUAL", f"{b};App. 1;{one};WATER_COLD;2025-07-01;200;m³;ACTUAL"
    )
    await service(storage).import_csv(principal(t.syndic), data)
    await record(storage, t.unit_sensor, (date(2024, 12, 1), 990), (JAN, 1000), (date(2025, 4, 1), 1050))
    await record(storage, t.unit_sensor, (JUL, 1104), (date(2025, 8, 1), 1150), hours=12)
    before = meter_report(await service(storage).report(principal(t.syndic)), one).periods
    await db.execute("DELETE FROM iot_readings WHERE sensor_id = $1", t.unit_sensor.id)
    after = meter_report(await service(storage).report(principal(t.syndic)), one).periods
    assert after == before
    # 1050 on 1 April at midnight -> 1104 on 1 July at noon: all but 12 h of the 91.5 days fall inside.
    assert before[0].iot_consumption == pytest.approx(50 + 54 * (91 * 24) / (91 * 24 + 12))
