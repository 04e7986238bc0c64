"""Issue 13: every consumption path gives `domain.consumption`'s answer on the raw readings, on both stores."""

import math
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from koprogo_iot.domain.consumption import CounterResult, Point, consumption_by_bucket
from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.domain.rollups import Rollup
from koprogo_iot.storage.ports import Ingested
from koprogo_iot.storage.sql.rollups import HOURLY
from tests.api.conftest import Api


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# The counter: an index that steps back by less than 1 % within the 10:00 hour (a Tasmota total restored
# after a power cut) and passes its old high only in the 11:00 hour. The reference counts 2.5; rollups restarting
# their baseline each hour counted the 0.5 drop again (3.0).
SEVEN = [
    ("2026-03-10T10:00", 100.0),
    ("2026-03-10T10:20", 101.0),  # +1
    ("2026-03-10T10:40", 100.5),  # jitter: 0, the baseline stays 101
    ("2026-03-10T11:10", 100.8),  # still under the baseline: 0
    ("2026-03-10T11:40", 101.5),  # +0.5 over 101
    ("2026-03-10T12:10", 102.0),  # +0.5
    ("2026-03-10T12:40", 102.5),  # +0.5
]


async def register_counter(api: Api, headers: dict[str, str], **extra: Any) -> dict[str, Any]:
    body = {
        "building_id": str(api.a.building.id),
        "unit_id": str(api.a.units[0].id),
        "sensor_id": "TASMOTA-1",
        "sensor_type": "electricity",
        "manufacturer": "Tasmota",
        "model": "Sonoff POW",
        "location": "App. 1 board",
        "unit_of_measure": "kWh",
        "sampling_interval": 600,
    } | extra
    response = await api.client.post("/api/v1/iot/sensors", json=body, headers=headers)
    assert response.status_code == 201, response.text
    sensor: dict[str, Any] = response.json()
    return sensor


async def consumption(
    api: Api, headers: dict[str, str], sensor_id: str, period: str, start: str, end: str
) -> list[dict[str, Any]]:
    params = {"group_by": "sensor", "period": period, "start": start, "end": end}
    response = await api.client.get("/api/v1/iot/consumption", params=params, headers=headers)
    assert response.status_code == 200, response.text
    [group] = [g for g in response.json()["groups"] if g["key"] == sensor_id]
    buckets: list[dict[str, Any]] = group["buckets"]
    return buckets


def same(found: float | None, expected: float | None) -> bool:
    """Equal to 1e-9 relative (and to 1e-12 near 0, where a relative error means nothing); None only for None."""
    if found is None or expected is None:
        return found is expected
    return math.isclose(found, expected, rel_tol=1e-9, abs_tol=1e-12)


def reference(points: list[Point], buckets: list[dict[str, Any]], **options: Any) -> list[CounterResult]:
    grid = [(datetime.fromisoformat(b["start"]), datetime.fromisoformat(b["end"])) for b in buckets]
    return [result for _, result in consumption_by_bucket(points, grid, **options)]


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [
        ("hour", "2026-03-10T09:00:00Z", "2026-03-10T14:00:00Z"),
        ("day", "2026-03-08T00:00:00+01:00", "2026-03-12T00:00:00+01:00"),
        ("month", "2026-01-01T00:00:00+01:00", "2026-05-01T00:00:00+02:00"),
    ],
)
async def test_a_jitter_recovered_in_a_later_hour_is_counted_once(api: Api, period: str, start: str, end: str) -> None:
    headers = await api.token(api.a.syndic.email)
    created = await register_counter(api, headers)
    sensor = await api.storage.sensors.get(api.a.organization.id, UUID(created["id"]))
    points = [(at(ts), value) for ts, value in SEVEN]
    await api.storage.readings.ingest([Ingested(IoTReading.measured(sensor, ts, value)) for ts, value in points])

    buckets = await consumption(api, headers, created["id"], period, start, end)
    expected = reference(points, buckets)
    assert [(b["start"], b["complete"]) for b in buckets] == [
        (b["start"], r.complete) for b, r in zip(buckets, expected, strict=True)
    ]
    for bucket, result in zip(buckets, expected, strict=True):
        assert same(bucket["consumption"], result.consumption), (bucket, result)
    assert sum(b["consumption"] or 0.0 for b in buckets) == pytest.approx(2.5)


async def test_a_late_reading_moves_the_baselines_of_the_hours_after_it(api: Api) -> None:
    """The 10:20 high arrives last: the rows of 10:00 and 11:00 were computed without it and must follow it."""
    sensor = api.a.unit_sensor
    points = [(at(ts), value) for ts, value in SEVEN]
    late = points.pop(1)
    await api.storage.readings.ingest([Ingested(IoTReading.measured(sensor, ts, value)) for ts, value in points])
    assert await api.storage.rollups.refresh() == 3
    await api.storage.readings.ingest([Ingested(IoTReading.measured(sensor, *late))])
    assert await api.storage.rollups.refresh() == 1  # one stale hour; the walk recomputes the next one too
    incremental = await hourly_rows(api, sensor.id)
    assert await api.storage.rollups.rebuild(api.a.organization.id) == 3  # the hours of the only sensor with readings
    assert await hourly_rows(api, sensor.id) == incremental
    headers = await api.token(api.a.syndic.email)
    buckets = await consumption(api, headers, str(sensor.id), "hour", "2026-03-10T09:00:00Z", "2026-03-10T14:00:00Z")
    expected = reference([*points, late], buckets)
    assert all(same(b["consumption"], r.consumption) for b, r in zip(buckets, expected, strict=True))
    assert sum(b["consumption"] or 0.0 for b in buckets) == pytest.approx(2.5)


async def hourly_rows(api: Api, sensor_id: UUID) -> list[Rollup]:
    rows = await api.db.fetch(HOURLY.select("sensor_id = $1") + " ORDER BY bucket", sensor_id)
    return [HOURLY.decode(row) for row in rows]


async def test_a_gap_inside_an_hour_flags_the_hourly_series_estimated(api: Api) -> None:
    """Sampled every 5 minutes (a gap is a step over 15): 10:05 -> 10:45 inside the 10:00 hour, a step across the
    hours' edge of 10 minutes only, so only the row's own longest step can say the 10:00 figure is estimated."""
    sensor = api.a.unit_sensor  # sampling_interval 300 s
    readings = [("10:00", 1.0), ("10:05", 1.5), ("10:45", 2.0), ("10:55", 2.5), ("11:05", 3.0), ("11:10", 3.5)]
    points = [(at(f"2026-03-10T{hm}"), value) for hm, value in readings]
    await api.storage.readings.ingest([Ingested(IoTReading.measured(sensor, ts, value)) for ts, value in points])
    headers = await api.token(api.a.syndic.email)
    params = {"start": "2026-03-10T10:00:00Z", "end": "2026-03-10T12:00:00Z", "aggregation_interval": 3600}
    response = await api.client.get(f"/api/v1/iot/sensors/{sensor.id}/time-series", params=params, headers=headers)
    assert response.status_code == 200, response.text
    got = [(p["consumption"], p["estimated"], p["readings"], p["last_index"]) for p in response.json()["points"]]
    assert got == [(pytest.approx(1.75), True, 4, 2.5), (pytest.approx(0.75), False, 2, 3.5)]
    grid = [(at("2026-03-10T10:00"), at("2026-03-10T11:00")), (at("2026-03-10T11:00"), at("2026-03-10T12:00"))]
    expected = [r for _, r in consumption_by_bucket(points, grid, max_gap=timedelta(minutes=15))]
    assert [r.estimated for r in expected] == [True, False]


# A 99999.999 m³ register wrapping between 10:40 and 11:10: with its size known the wrap counts 5 + 3 = 8 (the
# reference's ROLLOVER); unknown, the wrap is a reset and counts 3 only.
WRAP = [
    ("2026-03-10T10:00", 99990.0),
    ("2026-03-10T10:40", 99995.0),  # +5
    ("2026-03-10T11:10", 3.0),  # wrapped: +8 with the register size known, +3 as a reset
    ("2026-03-10T11:50", 8.0),  # +5
]


async def test_a_register_size_set_through_the_api_counts_wraps_on_every_path(api: Api) -> None:
    headers = await api.token(api.a.syndic.email)
    created = await register_counter(api, headers, sensor_type="cold_water", unit_of_measure="m³")
    assert created["rollover"] is None
    sensor = await api.storage.sensors.get(api.a.organization.id, UUID(created["id"]))
    points = [(at(ts), value) for ts, value in WRAP]
    await api.storage.readings.ingest([Ingested(IoTReading.measured(sensor, ts, value)) for ts, value in points])
    day = ("day", "2026-03-10T00:00:00+01:00", "2026-03-11T00:00:00+01:00")
    assert [b["consumption"] for b in await consumption(api, headers, created["id"], *day)] == [pytest.approx(13.0)]

    url = f"/api/v1/iot/sensors/{created['id']}"
    updated = await api.client.put(url, json={"rollover": 100000}, headers=headers)
    assert updated.status_code == 200, updated.text
    assert (await api.client.get(url, headers=headers)).json()["rollover"] == 100000.0
    # The rollups were computed without it: changing it marks them stale, and every answer now counts the wrap.
    for period, start, end in [day, ("hour", "2026-03-10T09:00:00Z", "2026-03-10T13:00:00Z")]:
        buckets = await consumption(api, headers, created["id"], period, start, end)
        expected = reference(points, buckets, rollover=100000)
        assert all(same(b["consumption"], r.consumption) for b, r in zip(buckets, expected, strict=True))
        assert sum(b["consumption"] or 0.0 for b in buckets) == pytest.approx(18.0)
    # Raw readings too: a time series in quarters of an hour is not served by the rollups.
    params = {"start": "2026-03-10T10:00:00Z", "end": "2026-03-10T12:00:00Z", "aggregation_interval": 900}
    series = await api.client.get(f"{url}/time-series", params=params, headers=headers)
    assert sum(p["consumption"] or 0.0 for p in series.json()["points"]) == pytest.approx(18.0)

    cleared = await api.client.put(url, json={"rollover": None}, headers=headers)
    assert cleared.status_code == 200 and cleared.json()["rollover"] is None
    assert [b["consumption"] for b in await consumption(api, headers, created["id"], *day)] == [pytest.approx(13.0)]


@pytest.mark.parametrize("bad", [0, -5, 1e13, "many"])
async def test_a_register_size_out_of_bounds_is_refused_naming_the_field(api: Api, bad: object) -> None:
    headers = await api.token(api.a.syndic.email)
    created = await register_counter(api, headers)
    response = await api.client.put(f"/api/v1/iot/sensors/{created['id']}", json={"rollover": bad}, headers=headers)
    assert response.status_code == 422 and "rollover" in response.text
    assert (await api.client.get(f"/api/v1/iot/sensors/{created['id']}", headers=headers)).json()["rollover"] is None


async def test_a_gauge_has_no_register_size(api: Api) -> None:
    headers = await api.token(api.a.syndic.email)
    body = {"kind": "instantaneous", "unit_of_measure": "W", "rollover": 1000}
    response = await api.client.post(
        "/api/v1/iot/sensors",
        json={
            "building_id": str(api.a.building.id),
            "sensor_id": "PM-1",
            "sensor_type": "electricity",
            "manufacturer": "Shelly",
            "model": "PM",
            "location": "board",
        }
        | body,
        headers=headers,
    )
    assert response.status_code == 422 and "only a counter" in response.json()["message"]


async def test_raw_readings_carry_the_baseline_from_before_the_period(api: Api) -> None:
    """Quarters of an hour are served from the raw readings: from 11:00, after the jitter at 10:40, the step to
    11:10 (100.5 -> 100.8) is still under the baseline of 101 and counts nothing, as on the whole history."""
    headers = await api.token(api.a.syndic.email)
    created = await register_counter(api, headers)
    sensor = await api.storage.sensors.get(api.a.organization.id, UUID(created["id"]))
    points = [(at(ts), value) for ts, value in SEVEN]
    await api.storage.readings.ingest([Ingested(IoTReading.measured(sensor, ts, value)) for ts, value in points])
    params = {"start": "2026-03-10T11:00:00Z", "end": "2026-03-10T13:00:00Z", "aggregation_interval": 900}
    response = await api.client.get(f"/api/v1/iot/sensors/{created['id']}/time-series", params=params, headers=headers)
    assert response.status_code == 200, response.text
    got = response.json()["points"]
    grid = [(datetime.fromisoformat(p["start"]), datetime.fromisoformat(p["end"])) for p in got]
    expected = [r for _, r in consumption_by_bucket(points, grid, max_gap=timedelta(seconds=3 * 600))]
    for point, result in zip(got, expected, strict=True):
        assert same(point["consumption"], result.consumption), (point, result)
        assert (point["readings"], point["complete"], point["estimated"]) == (
            result.readings,
            result.complete,
            result.estimated,
        )
    assert sum(p["consumption"] or 0.0 for p in got) == pytest.approx(1.5)  # 0.5 + 0.5 + 0.5 over 101
