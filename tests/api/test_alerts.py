"""Alerts through the API: listing with filters and acknowledging with a note."""

from datetime import timedelta

from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.detection import reading_decisions
from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.domain.rules import effective_rules
from koprogo_iot.storage.ports import Ingested
from tests.api.conftest import Api


async def ingest(api: Api, value: float, minutes_ago: int) -> None:
    sensor = api.a.common_sensor
    reading = IoTReading.measured(sensor, utcnow() - timedelta(minutes=minutes_ago), value)
    await api.storage.readings.ingest(
        [Ingested(reading, reading_decisions(sensor, effective_rules(sensor), reading, None))]
    )


async def test_list_filter_and_acknowledge(api: Api) -> None:
    headers = await api.token(api.a.syndic.email)
    await ingest(api, 75.0, 10)
    await ingest(api, 20.0, 9)  # clears
    await ingest(api, 80.0, 8)  # a new occurrence
    everything = (await api.client.get("/api/v1/iot/alerts", headers=headers)).json()
    assert [a["status"] for a in everything] == ["active", "cleared"]
    active = (await api.client.get("/api/v1/iot/alerts?status=active", headers=headers)).json()
    assert len(active) == 1 and active[0]["severity"] == "critical" and active[0]["acknowledged"] is False
    assert active[0]["sensor_id"] == str(api.a.common_sensor.id) and active[0]["threshold_value"] == 50.0

    url = f"/api/v1/iot/alerts/{active[0]['id']}/acknowledge"
    acked = await api.client.post(url, json={"note": "plumber on his way"}, headers=headers)
    assert acked.status_code == 200
    body = acked.json()
    assert body["acknowledged"] is True and body["acknowledged_by"] == str(api.a.syndic.id)
    assert body["resolution_note"] == "plumber on his way" and body["status"] == "active"
    unacked = (await api.client.get("/api/v1/iot/alerts?acknowledged=false", headers=headers)).json()
    assert [a["status"] for a in unacked] == ["cleared"]
    bad = await api.client.get("/api/v1/iot/alerts?status=sleeping", headers=headers)
    assert bad.status_code == 422 and "status" in bad.json()["message"]
