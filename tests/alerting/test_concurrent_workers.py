"""Two ingest workers on a shared subscription, each with its own connections, one sensor's burst: one alert."""

import asyncio
import json
from datetime import timedelta
from uuid import UUID

import pytest

from koprogo_iot.bootstrap import open_storage
from koprogo_iot.domain.alerts import AlertSeverity, AlertStatus, AlertType
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.credentials import INGEST_GROUP
from koprogo_iot.ingest.mqtt_worker import MqttIngestWorker
from koprogo_iot.ingest.pipeline import IngestLimits, Pipeline
from koprogo_iot.storage.ports import AlertFilter, Storage
from tests.conftest import ENCRYPTION_KEY, Mosquitto, device_endpoint, eventually, login_args, make_tenant, running

pytestmark = pytest.mark.postgres
BURST = 200


async def test_two_workers_on_one_sensors_burst_keep_one_active_alert(postgres_url: str, mosquitto: Mosquitto) -> None:
    first, second = await open_storage(postgres_url, ENCRYPTION_KEY), await open_storage(postgres_url, ENCRYPTION_KEY)
    try:
        t = await make_tenant(first)
        flow = t.common_sensor  # max 50 L/h
        limits = IngestLimits(rate_per_sensor=10_000, burst_per_sensor=10_000)  # the burst itself is the test
        workers = [
            MqttIngestWorker(
                Pipeline(storage, limits), mosquitto.endpoint, f"alert-race-{i}-{t.organization.id}", INGEST_GROUP
            )
            for i, storage in enumerate((first, second))
        ]
        start = utcnow() - timedelta(seconds=BURST)
        lines = "\n".join(
            json.dumps({"timestamp": (start + timedelta(seconds=i)).isoformat(), "value": 75.0}) for i in range(BURST)
        )
        async with running(workers[0]), running(workers[1]):
            # One mosquitto_pub sending a line per message: the broker spreads them over the two workers.
            proc = await asyncio.create_subprocess_exec(
                "mosquitto_pub",
                *login_args(await device_endpoint(mosquitto, flow.mqtt_topic)),
                "-q",
                "1",
                "-t",
                flow.mqtt_topic,
                "-l",
                stdin=asyncio.subprocess.PIPE,
            )
            await proc.communicate(lines.encode() + b"\n")
            assert proc.returncode == 0
            await eventually(lambda: _count(first, t.organization.id, flow.id, BURST), timeout=30)
        handled = [w.pipeline.stats.stored for w in workers]
        assert sum(handled) == BURST and all(handled), handled  # both workers took part
        alerts = await first.alerts.select(t.organization.id, AlertFilter(status=AlertStatus.ACTIVE))
        assert len(alerts) == 1
        (alert,) = alerts
        assert alert.alert_type is AlertType.THRESHOLD_EXCEEDED and alert.severity is AlertSeverity.CRITICAL
        assert alert.occurrences == BURST  # every reading counted once, whichever worker stored it
        assert alert.last_triggered_at == start + timedelta(seconds=BURST - 1)
    finally:
        await first.close()
        await second.close()


async def _count(storage: Storage, organization_id: UUID, sensor_id: UUID, expected: int) -> bool:
    return await storage.readings.count(organization_id, sensor_id) >= expected
