"""The specification's scenario end to end: a device publishing to a real broker, an ingest worker, the notifier
sending to a real SMTP server, and the API listing the alert.

A water flow sensor with a 50 L/h maximum (clear level 45 L/h, set through the API) reports 75 L/h: one critical
alert and one email; 20 more readings at 75 L/h leave one alert counted 21 times and no second email; readings
back under the clear level clear it.
"""

import json
from collections.abc import Awaitable
from datetime import timedelta

from koprogo_iot.domain.clock import utcnow
from koprogo_iot.ingest.mqtt_worker import MqttIngestWorker
from koprogo_iot.ingest.pipeline import IngestLimits, Pipeline
from tests.api.conftest import Api
from tests.conftest import Mosquitto, eventually, mosquitto_pub, running
from tests.notify.conftest import PUBLIC_URL, SmtpServer, make_notifier


async def test_seed_scenario_one_critical_alert_one_email_then_cleared(
    api: Api, mosquitto: Mosquitto, smtp: SmtpServer
) -> None:
    storage, t = api.storage, api.a
    flow = t.common_sensor  # cold water, L/h, alert_threshold_max 50
    headers = await api.token(t.syndic.email)
    response = await api.client.put(
        f"/api/v1/iot/sensors/{flow.id}/alert-rules", json={"threshold": {"clear_maximum": 45}}, headers=headers
    )
    assert response.status_code == 200, response.text
    pipeline = Pipeline(storage, IngestLimits(rate_per_sensor=100, burst_per_sensor=100))
    worker = MqttIngestWorker(pipeline, mosquitto.endpoint, f"seed-{t.organization.id}")
    notifier = make_notifier(storage, smtp)
    start = utcnow() - timedelta(minutes=10)

    async def publish(second: int, value: float) -> None:
        payload = {"timestamp": (start + timedelta(seconds=second)).isoformat(), "value": value}
        await mosquitto_pub(mosquitto, flow.mqtt_topic, json.dumps(payload))

    async def alerts(**params: str) -> list[dict[str, object]]:
        response = await api.client.get("/api/v1/iot/alerts", params=params, headers=headers)
        assert response.status_code == 200, response.text
        found: list[dict[str, object]] = response.json()
        return found

    async with running(worker):
        await publish(0, 75.0)
        [alert] = await eventually(lambda: alerts(status="active"))
        assert (alert["severity"], alert["acknowledged_at"], alert["occurrences"]) == ("critical", None, 1)
        await notifier.run_once(utcnow())
        [mail] = smtp.received
        assert mail.recipients == [t.syndic.email]
        for fact in (flow.sensor_id, flow.location, "75 L/h", "50 L/h", f"{PUBLIC_URL}/alerts/{alert['id']}"):
            assert fact in mail.body, fact

        for second in range(1, 21):
            await publish(second, 75.0)

        async def counted(occurrences: int) -> bool:
            found = await alerts(status="active")
            return len(found) == 1 and found[0]["occurrences"] == occurrences

        await eventually(lambda: counted(21))
        await notifier.run_once(utcnow())
        assert len(smtp.received) == 1  # a repeat within the reminder interval tells nobody again

        await publish(21, 48.0)  # under the maximum, above the clear level: still active
        await eventually(lambda: _at_least(storage.readings.count(t.organization.id, flow.id), 22))
        assert [a["id"] for a in await alerts(status="active")] == [alert["id"]]
        await publish(22, 40.0)
        await eventually(lambda: alerts(status="cleared"))
    assert await alerts(status="active") == []
    [cleared] = await alerts(status="cleared")
    assert cleared["id"] == alert["id"] and cleared["occurrences"] == 21
    assert cleared["email_sent"] is True


async def _at_least(count: Awaitable[int], expected: int) -> bool:
    return await count >= expected
