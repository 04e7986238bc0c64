"""One sensor's time series from stored readings, checked against figures computed by hand, on SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta

import pytest

from koprogo_iot.analytics.export import to_csv
from koprogo_iot.analytics.series import CounterPoint, GaugePoint, time_series
from koprogo_iot.domain.access import Principal
from koprogo_iot.domain.errors import InvalidValue, NotFound
from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.domain.sensors import IoTSensor
from koprogo_iot.services.analytics import Analytics
from koprogo_iot.services.audit import AuditLog
from koprogo_iot.services.provisioning import Provisioning
from koprogo_iot.storage.ports import Ingested, Storage
from tests.conftest import Tenant, make_tenant

DAY = datetime(2026, 3, 2, tzinfo=UTC)


def at(hours: float) -> datetime:
    return DAY + timedelta(hours=hours)


async def ingest(storage: Storage, sensor: IoTSensor, *pairs: tuple[float, float]) -> None:
    """Store (hours after DAY, value) readings of `sensor`."""
    await storage.readings.ingest([Ingested(IoTReading.measured(sensor, at(hours), value)) for hours, value in pairs])


async def series_of(
    storage: Storage, principal: Principal, sensor: IoTSensor, start: float, end: float, interval: int
) -> list[GaugePoint] | list[CounterPoint]:
    """The series from the raw readings (the reference the rollups must agree with), for a sensor `principal` may
    read (through the analytics service's check)."""
    analytics = Analytics(Provisioning(storage.tenancy, storage.sensors, AuditLog(storage.audit)), storage.source)
    found = await analytics.provisioning.get_sensor(principal, sensor.id)
    result = await time_series(storage.source, found, at(start), at(end), interval, use_rollups=False)
    return result.points


def syndic(t: Tenant) -> Principal:
    return Principal.of(t.syndic)


async def test_counter_is_interpolated_across_an_hour_boundary(storage: Storage) -> None:
    t = await make_tenant(storage)
    # 100 at 10:30, 101 at 11:30, 103 at 12:30: each hour gets half of each step it overlaps.
    await ingest(storage, t.unit_sensor, (10.5, 100.0), (11.5, 101.0), (12.5, 103.0))
    points = await series_of(storage, syndic(t), t.unit_sensor, 10, 12, 3600)
    # Hourly steps of a sensor sampling every 5 minutes are gaps (over 3 intervals): the figures are estimated.
    assert points == [
        CounterPoint(at(10), at(11), 0.5, 100.0, readings=1, resets=0, complete=False, estimated=True),
        CounterPoint(at(11), at(12), 1.5, 101.0, readings=1, resets=0, complete=True, estimated=True),
    ]
    # Asked for 11:00-12:00 alone, the readings just outside the period (10:30 and 12:30) still bound it.
    (alone,) = await series_of(storage, syndic(t), t.unit_sensor, 11, 12, 3600)
    assert isinstance(alone, CounterPoint)
    assert alone.consumption == pytest.approx(1.5) and alone.complete


async def test_counter_reset_counts_the_new_index(storage: Storage) -> None:
    t = await make_tenant(storage)
    # 500 -> 510 (+10), then the meter restarts: 5 (+5 from 0), then 15 (+10).
    await ingest(storage, t.unit_sensor, (0, 500.0), (1, 510.0), (2, 5.0), (3, 15.0))
    points = await series_of(storage, syndic(t), t.unit_sensor, 0, 3, 3600)
    assert [p.consumption for p in points if isinstance(p, CounterPoint)] == [10.0, 5.0, 10.0]
    assert [p.resets for p in points if isinstance(p, CounterPoint)] == [0, 1, 0]


async def test_gauge_buckets_hold_avg_min_max_last_count(storage: Storage) -> None:
    t = await make_tenant(storage)
    await ingest(
        storage, t.common_sensor, (10 + 5 / 60, 10.0), (10 + 20 / 60, 30.0), (10 + 50 / 60, 20.0), (11 + 1 / 6, 40.0)
    )
    points = await series_of(storage, syndic(t), t.common_sensor, 10, 13, 3600)
    # 12:00-13:00 has no reading: a gauge leaves it out.
    assert points == [
        GaugePoint(at(10), at(11), avg=20.0, min=10.0, max=30.0, last=20.0, count=3),
        GaugePoint(at(11), at(12), avg=40.0, min=40.0, max=40.0, last=40.0, count=1),
    ]
    # A start inside an hour, with hourly buckets: the period widens to whole hours (the rollups' bounds).
    points = await series_of(storage, syndic(t), t.common_sensor, 10.5, 12, 3600)
    assert points == [
        GaugePoint(at(10), at(11), avg=20.0, min=10.0, max=30.0, last=20.0, count=3),
        GaugePoint(at(11), at(12), avg=40.0, min=40.0, max=40.0, last=40.0, count=1),
    ]
    # Below an hour, buckets stay on the interval's grid and the first one is cut at the start.
    points = await series_of(storage, syndic(t), t.common_sensor, 10.5, 11, 1800)
    assert points == [GaugePoint(at(10.5), at(11), avg=20.0, min=20.0, max=20.0, last=20.0, count=1)]


async def test_too_many_points_names_the_smallest_interval_that_fits(storage: Storage) -> None:
    t = await make_tenant(storage)
    # Two days by 10 s is 17,280 points; 172,800 s / 10,000 = 17.28, so 18 s (9,600 points) is the smallest.
    with pytest.raises(InvalidValue, match="at least 18 s"):
        await series_of(storage, syndic(t), t.unit_sensor, 0, 48, 10)
    assert len(await series_of(storage, syndic(t), t.unit_sensor, 0, 48, 18)) == 9_600


async def test_defaults_are_the_last_24_hours_by_5_minutes(storage: Storage) -> None:
    t = await make_tenant(storage)
    result = await time_series(storage.source, t.unit_sensor, use_rollups=False)
    assert result.end - result.start == timedelta(hours=24)
    assert result.interval == 300
    assert len(result.points) in (288, 289)  # 289 when now is not on a 5-minute boundary


async def test_foreign_and_neighbour_sensors_are_not_found(storage: Storage) -> None:
    a, b = await make_tenant(storage, "A"), await make_tenant(storage, "B")
    analytics = Analytics(Provisioning(storage.tenancy, storage.sensors, AuditLog(storage.audit)), storage.source)
    with pytest.raises(NotFound):
        await analytics.time_series(syndic(b), a.unit_sensor.id, at(0), at(1), 300)
    owner = Principal.of(a.owner, [a.building.id])
    with pytest.raises(NotFound):
        await analytics.time_series(owner, a.other_unit_sensor.id, at(0), at(1), 300)
    assert (await analytics.time_series(owner, a.unit_sensor.id, at(0), at(1), 300)).points  # their own answers


async def test_series_csv(storage: Storage) -> None:
    t = await make_tenant(storage)
    await ingest(storage, t.unit_sensor, (10.5, 100.0), (11.5, 101.0), (12.5, 103.0))
    result = await time_series(storage.source, t.unit_sensor, at(10), at(12), 3600, use_rollups=False)
    sid = t.unit_sensor.id
    assert to_csv(result).splitlines() == [
        "sensor_id,unit_of_measure,start,end,consumption,last_index,readings,resets,complete,estimated",
        f"{sid},m³,2026-03-02T10:00:00Z,2026-03-02T11:00:00Z,0.5,100,1,0,false,true",
        f"{sid},m³,2026-03-02T11:00:00Z,2026-03-02T12:00:00Z,1.5,101,1,0,true,true",
    ]
    await ingest(storage, t.common_sensor, (10.25, 12.5), (10.75, 0.1 + 0.2))
    gauge = await time_series(storage.source, t.common_sensor, at(10), at(11), 3600, use_rollups=False)
    assert to_csv(gauge).splitlines() == [
        "sensor_id,unit_of_measure,start,end,avg,min,max,last,count",
        f"{t.common_sensor.id},L/h,2026-03-02T10:00:00Z,2026-03-02T11:00:00Z,6.4,0.3,12.5,0.3,2",
    ]
