"""Retention of raw readings (`DatabaseMaintenance.apply_retention`), on SQLite and PostgreSQL: expired months
dropped whole (PostgreSQL) or deleted in batches, rollups kept for good, and answers over the expired period
unchanged: consumption from the rollups, time series from the hourly rollups and saying so."""

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from koprogo_iot.analytics.aggregates import ConsumptionReport, GroupBy, Period, SensorScope
from koprogo_iot.analytics.series import CounterPoint, GaugePoint
from koprogo_iot.domain.access import Principal
from koprogo_iot.domain.errors import InvalidValue, NotFound
from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.domain.retention import raw_cutoff
from koprogo_iot.domain.sensors import IoTSensor
from koprogo_iot.domain.tenancy import Organization
from koprogo_iot.storage.ports import Ingested, Storage
from koprogo_iot.storage.sql.database import Database
from koprogo_iot.storage.sql.partitions import ensure_partitions, partition_names
from koprogo_iot.storage.sql.retention import apply_retention
from tests.conftest import Tenant, analytics, make_tenant

FIRST = datetime(2026, 1, 1, tzinfo=UTC)
MARCH, APRIL, MAY = (datetime(2026, month, 1, tzinfo=UTC) for month in (3, 4, 5))
NOW = datetime(2026, 5, 15, 12, tzinfo=UTC)  # with 2 months kept: January and February expire
STEP = timedelta(hours=6)
# Local (Europe/Brussels) days and months from January 1st to April 1st.
LOCAL_START, LOCAL_END = datetime(2025, 12, 31, 23, tzinfo=UTC), datetime(2026, 3, 31, 22, tzinfo=UTC)


def counter_value(i: int) -> float:
    """An index rising 2 a day, with a jitter down at the edge of March (the counter rules' baseline crosses the
    horizon) and a meter exchange (reset to 0) on February 10th."""
    at, exchange = FIRST + i * STEP, datetime(2026, 2, 10, tzinfo=UTC)
    if at == MARCH:
        return counter_value(i - 1) - 0.05  # lower than the reading before: a jitter, no consumption
    if at >= exchange:
        return 2 * (at - exchange) / timedelta(days=1)
    return 100 + 2 * (at - FIRST) / timedelta(days=1)


async def populate(storage: Storage, t: Tenant) -> None:
    count = (MAY - FIRST) // STEP
    readings = [IoTReading.measured(t.unit_sensor, FIRST + i * STEP, counter_value(i)) for i in range(count)]
    readings += [IoTReading.measured(t.common_sensor, FIRST + i * STEP, float(i % 7)) for i in range(count)]
    await storage.readings.ingest([Ingested(r) for r in readings])


async def raw_count(db: Database, organization_id: UUID, start: datetime, end: datetime) -> int:
    row = await db.fetchrow(
        "SELECT count(*) AS n FROM iot_readings WHERE organization_id = $1 AND ts >= $2 AND ts < $3",
        organization_id,
        start,
        end,
    )
    assert row is not None
    return int(row["n"])


async def hourly_rows_before(db: Database, sensor: IoTSensor, end: datetime) -> int:
    row = await db.fetchrow(
        "SELECT count(*) AS n FROM iot_rollups_hourly WHERE sensor_id = $1 AND bucket < $2", sensor.id, end
    )
    assert row is not None
    return int(row["n"])


async def consumption(storage: Storage, t: Tenant) -> list[tuple[str, str, datetime, float | None, bool]]:
    """Every bucket of the counters' consumption by hour (January), day and month (January to March)."""
    service, syndic = analytics(storage), Principal.of(t.syndic)
    reports: list[ConsumptionReport] = [
        await service.consumption(
            syndic, SensorScope(), GroupBy.SENSOR, Period.HOUR, FIRST, FIRST + timedelta(days=31)
        ),
        await service.consumption(syndic, SensorScope(), GroupBy.SENSOR, Period.DAY, LOCAL_START, LOCAL_END),
        await service.consumption(syndic, SensorScope(), GroupBy.UNIT, Period.MONTH, LOCAL_START, LOCAL_END),
    ]
    return [
        (r.period.value, g.key, b.start, b.consumption, b.complete)
        for r in reports
        for g in r.groups
        for b in g.buckets
    ]


def assert_same(after: list[tuple[str, str, datetime, float | None, bool]], before: list[object]) -> None:
    assert len(after) == len(before)
    for now, then in zip(after, before, strict=True):
        assert isinstance(then, tuple)
        assert now[:3] == then[:3] and now[4] == then[4]
        assert (now[3] is None) == (then[3] is None)
        if now[3] is not None:
            assert now[3] == pytest.approx(then[3], abs=1e-9)


async def test_retention_drops_exactly_the_expired_months_and_answers_over_them_are_unchanged(
    storage: Storage, db: Database
) -> None:
    a, b = await make_tenant(storage, "A"), await make_tenant(storage, "B")
    await ensure_partitions(db, FIRST, MAY)  # no-op on SQLite
    for t in (a, b):
        await populate(storage, t)
    partitions = await partition_names(db)
    before = await consumption(storage, a)
    assert any(c for *_, c, _ in before)  # figures, not empty buckets
    service = analytics(storage)
    syndic, jan10 = Principal.of(a.syndic), datetime(2026, 1, 10, tzinfo=UTC)
    raw = await service.time_series(syndic, a.unit_sensor.id, jan10, jan10 + timedelta(days=2), 300)
    assert (raw.source, raw.raw_available, raw.raw_kept_from) == ("raw", True, None)
    hourly = {
        sensor.id: await service.time_series(syndic, sensor.id, jan10, jan10 + timedelta(days=2), 3600)
        for sensor in (a.unit_sensor, a.common_sensor)
    }
    rollup_rows = await hourly_rows_before(db, a.unit_sensor, MARCH)
    kept = {t.organization.id: await raw_count(db, t.organization.id, MARCH, MAY) for t in (a, b)}

    run = await storage.maintenance.apply_retention(NOW, 2)

    assert run.kept_from == {a.organization.id: MARCH, b.organization.id: MARCH}
    if db.dialect == "postgres":
        assert run.dropped_partitions == ["iot_readings_p202601", "iot_readings_p202602"]
        assert await partition_names(db) == [p for p in partitions if p not in run.dropped_partitions]
        assert run.deleted == {a.organization.id: 0, b.organization.id: 0}  # nothing left to delete row by row
    else:
        assert run.dropped_partitions == []
        assert run.deleted == {t.organization.id: 2 * (MARCH - FIRST) // STEP for t in (a, b)}
    for t in (a, b):
        assert await raw_count(db, t.organization.id, FIRST - timedelta(days=1), MARCH) == 0
        assert await raw_count(db, t.organization.id, MARCH, MAY) == kept[t.organization.id]
    assert await hourly_rows_before(db, a.unit_sensor, MARCH) == rollup_rows
    assert_same(await consumption(storage, a), before)

    # A time series over the expired period comes from the hourly rollups, in whole hours, and says so.
    gone = await service.time_series(syndic, a.unit_sensor.id, jan10, jan10 + timedelta(days=2), 300)
    assert (gone.source, gone.raw_available, gone.raw_kept_from, gone.interval) == ("rollups", False, MARCH, 3600)
    expected = hourly[a.unit_sensor.id].points
    assert len(gone.points) == len(expected) == 48
    for point, then in zip(gone.points, expected, strict=True):
        assert isinstance(point, CounterPoint) and isinstance(then, CounterPoint)
        assert (point.start, point.consumption) == (then.start, pytest.approx(then.consumption, abs=1e-9))
    gauge = await service.time_series(syndic, a.common_sensor.id, jan10, jan10 + timedelta(days=2), 600)
    assert (gauge.source, gauge.raw_available) == ("rollups", False)
    assert [(p.start, p.avg, p.count) for p in gauge.points if isinstance(p, GaugePoint)] == [
        (p.start, p.avg, p.count) for p in hourly[a.common_sensor.id].points if isinstance(p, GaugePoint)
    ]
    # After the horizon, raw readings still answer.
    april = await service.time_series(syndic, a.unit_sensor.id, APRIL, APRIL + timedelta(days=1), 300)
    assert (april.source, april.raw_available, april.raw_kept_from) == ("raw", True, MARCH)

    # Rebuilding and verifying the rollups keep the rows of the expired months, and find nothing wrong.
    await storage.rollups.rebuild(a.organization.id)
    assert await hourly_rows_before(db, a.unit_sensor, MARCH) == rollup_rows
    assert_same(await consumption(storage, a), before)
    assert (await storage.rollups.verify(a.organization.id)).differences == []
    assert (await storage.rollups.verify(a.organization.id, FIRST, MAY)).differences == []

    # A reading arriving late for an expired hour is stored and marks its hour, but the refresh does not recompute
    # it: from that reading alone, the hour's rollup would lose the readings retention deleted.
    await storage.readings.ingest([Ingested(IoTReading.measured(a.unit_sensor, jan10 + timedelta(minutes=30), 1.0))])
    assert await storage.rollups.refresh() == 1
    assert await hourly_rows_before(db, a.unit_sensor, MARCH) == rollup_rows
    assert_same(await consumption(storage, a), before)
    again = await storage.maintenance.apply_retention(NOW, 2)  # and the next run deletes it
    assert (again.dropped_partitions, again.deleted[a.organization.id]) == ([], 1)


async def test_an_organization_keeping_less_loses_only_its_own_rows_in_batches(storage: Storage, db: Database) -> None:
    short, other = await make_tenant(storage, "Short"), await make_tenant(storage, "Other")
    await ensure_partitions(db, FIRST, MAY)
    for t in (short, other):
        await populate(storage, t)
    await storage.tenancy.set_raw_retention(short.organization.id, 1)  # April only; the other keeps March too
    march = {t.organization.id: await raw_count(db, t.organization.id, MARCH, APRIL) for t in (short, other)}
    before_march = await raw_count(db, other.organization.id, FIRST, MARCH)
    before = await consumption(storage, short)

    run = await apply_retention(db, NOW, 2, batch=100)  # several transactions per sensor

    assert run.kept_from == {short.organization.id: APRIL, other.organization.id: MARCH}
    if db.dialect == "postgres":  # March is kept whole: the other organization still needs it
        assert run.dropped_partitions == ["iot_readings_p202601", "iot_readings_p202602"]
        assert run.deleted == {short.organization.id: march[short.organization.id], other.organization.id: 0}
    else:
        assert run.deleted == {
            short.organization.id: before_march + march[short.organization.id],
            other.organization.id: before_march,
        }
    assert await raw_count(db, short.organization.id, FIRST, APRIL) == 0
    assert await raw_count(db, other.organization.id, FIRST, MARCH) == 0
    assert await raw_count(db, other.organization.id, MARCH, APRIL) == march[other.organization.id]
    assert_same(await consumption(storage, short), before)
    assert (await storage.rollups.verify(short.organization.id)).differences == []


async def test_retention_settings_are_checked(storage: Storage) -> None:
    t = await make_tenant(storage)
    with pytest.raises(InvalidValue, match="1 to 1200 months, not 0"):
        await storage.tenancy.set_raw_retention(t.organization.id, 0)
    with pytest.raises(InvalidValue, match="1 to 1200 months"):
        Organization(name="Too short", raw_retention_months=-3)
    with pytest.raises(NotFound):
        await storage.tenancy.set_raw_retention(Organization(name="Unknown").id, 12)
    assert (await storage.tenancy.set_raw_retention(t.organization.id, 24)).raw_retention_months == 24
    assert (await storage.tenancy.get_organization(t.organization.id)).raw_retention_months == 24
    assert (await storage.tenancy.set_raw_retention(t.organization.id, None)).raw_retention_months is None
    # The cutoff falls on a UTC month's start whatever the day: whole partitions expire at once.
    assert raw_cutoff(NOW, 13) == datetime(2025, 4, 1, tzinfo=UTC)
