"""An organization's raw retention through the API, and what a time series over expired raw readings says."""

from datetime import UTC, datetime, timedelta

from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.storage.ports import Ingested
from tests.api.conftest import Api

DAY = datetime(2026, 1, 12, tzinfo=UTC)
NOW = datetime(2026, 5, 15, tzinfo=UTC)  # with 2 months kept: January's raw readings expire


async def test_syndics_set_their_organizations_retention_with_checks(api: Api) -> None:
    syndic = await api.token(api.a.syndic.email)
    url = f"/api/v1/organizations/{api.a.organization.id}/retention"
    response = await api.client.put(url, json={"raw_retention_months": 24}, headers=syndic)
    assert response.status_code == 200, response.text
    assert response.json()["raw_retention_months"] == 24
    assert (await api.storage.tenancy.get_organization(api.a.organization.id)).raw_retention_months == 24
    listed = await api.client.get("/api/v1/organizations", headers=syndic)
    assert [o["raw_retention_months"] for o in listed.json()] == [24]
    for wrong in (0, -1, 1201, 1.5, "twelve"):
        refused = await api.client.put(url, json={"raw_retention_months": wrong}, headers=syndic)
        assert refused.status_code == 422, wrong
        assert "raw_retention_months" in refused.text
    assert (await api.client.put(url, json={}, headers=syndic)).status_code == 422  # null must be said
    reset = await api.client.put(url, json={"raw_retention_months": None}, headers=syndic)
    assert reset.status_code == 200 and reset.json()["raw_retention_months"] is None
    foreign = f"/api/v1/organizations/{api.b.organization.id}/retention"
    assert (await api.client.put(foreign, json={"raw_retention_months": 1}, headers=syndic)).status_code == 404
    assert (await api.storage.tenancy.get_organization(api.b.organization.id)).raw_retention_months is None


async def test_a_time_series_over_expired_raw_readings_comes_from_rollups_and_says_so(api: Api) -> None:
    sensor = api.a.unit_sensor
    readings = [IoTReading.measured(sensor, DAY + timedelta(minutes=20 * i), 100 + 0.1 * i) for i in range(9)]
    await api.storage.readings.ingest([Ingested(r) for r in readings])
    syndic = await api.token(api.a.syndic.email)
    url = f"/api/v1/iot/sensors/{sensor.id}/time-series"
    period = {"start": "2026-01-12T00:00:00Z", "end": "2026-01-12T03:00:00Z", "aggregation_interval": 1200}
    raw = await api.client.get(url, params=period, headers=syndic)
    assert raw.status_code == 200, raw.text
    body = raw.json()
    assert (body["source"], body["raw_available"], body["raw_kept_from"]) == ("raw", True, None)
    assert (raw.headers["x-koprogo-source"], raw.headers.get("x-koprogo-raw-kept-from")) == ("raw", None)

    await api.storage.tenancy.set_raw_retention(api.b.organization.id, 24)
    await api.storage.maintenance.apply_retention(NOW, 2)

    gone = await api.client.get(url, params=period, headers=syndic)
    body = gone.json()
    assert (body["source"], body["raw_available"], body["raw_kept_from"]) == ("rollups", False, "2026-03-01T00:00:00Z")
    assert body["aggregation_interval"] == 3600
    assert [round(p["consumption"], 9) for p in body["points"]] == [0.3, 0.3, 0.2]  # last hour: no reading after
    assert gone.headers["x-koprogo-raw-kept-from"] == "2026-03-01T00:00:00Z"
    csv = await api.client.get(url, params=period | {"format": "csv"}, headers=syndic)
    assert csv.status_code == 200
    assert (csv.headers["x-koprogo-source"], csv.headers["x-koprogo-raw-kept-from"]) == (
        "rollups",
        "2026-03-01T00:00:00Z",
    )
    assert len(csv.text.splitlines()) == 1 + 3  # the header row, then one row per hour
    # Another organization keeping two years has its own horizon, before the period.
    other = await api.token(api.b.syndic.email)
    own = await api.client.get(f"/api/v1/iot/sensors/{api.b.unit_sensor.id}/time-series", params=period, headers=other)
    assert (own.json()["raw_available"], own.json()["raw_kept_from"]) == (True, "2024-05-01T00:00:00Z")
