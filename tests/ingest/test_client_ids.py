"""Each ingest worker has its own MQTT client id by default, and two workers sharing one are told so (issue 14:
every worker defaulted to `koprogo-ingest`, and two such took the broker session from each other in a loop)."""

from __future__ import annotations

import logging
import socket
import uuid
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from koprogo_iot.config import IngestSettings, MqttSettings, Settings
from koprogo_iot.ingest.mqtt_worker import MqttIngestWorker
from koprogo_iot.ingest.pipeline import Pipeline
from koprogo_iot.storage.ports import Storage
from tests.conftest import Mosquitto, eventually, running


def test_the_default_client_id_is_the_host_name_and_the_worker_index() -> None:
    host = socket.gethostname()
    assert Settings().ingest_client_id() == f"koprogo-ingest-{host}-0"
    second = Settings(ingest=IngestSettings(worker_index=1))
    assert second.ingest_client_id() == f"koprogo-ingest-{host}-1" != Settings().ingest_client_id()
    assert Settings(mqtt=MqttSettings(client_id="ingest-7")).ingest_client_id() == "ingest-7"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the database plays no part here."""
    return f"sqlite:///{tmp_path / 'koprogo.db'}"


def conflicts() -> float:
    return REGISTRY.get_sample_value("koprogo_ingest_client_id_conflicts_total") or 0.0


async def _above(value: float) -> bool:
    return conflicts() > value


@pytest.mark.mosquitto
async def test_two_workers_sharing_a_client_id_are_reported(
    storage: Storage, mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    shared = f"twins-{uuid.uuid4().hex[:8]}"
    before = conflicts()
    first = MqttIngestWorker(Pipeline(storage), mosquitto.endpoint, shared)
    second = MqttIngestWorker(Pipeline(storage), mosquitto.endpoint, shared)
    with caplog.at_level(logging.ERROR, logger="koprogo_iot.ingest.mqtt_worker"):
        async with running(first), running(second):
            await eventually(lambda: _above(before), timeout=20)
    [report, *_] = [r.getMessage() for r in caplog.records if "same client id" in r.getMessage()]
    assert shared in report and "KOPROGO_MQTT_CLIENT_ID" in report
