"""The shipped Mosquitto configurations and the ingest workers agree on sizes (issue 14): the broker forwards no
message a worker would refuse as too large (which would drop the worker's connection, and again on every
redelivery), and refuses none the pipeline would rather record as a payload_too_large dead letter."""

from __future__ import annotations

from pathlib import Path

import pytest

from koprogo_iot.bootstrap import build_worker
from koprogo_iot.config import IngestSettings, MqttSettings, Settings
from koprogo_iot.ingest import mqtt_worker
from koprogo_iot.ingest.pipeline import Pipeline
from koprogo_iot.mqtt_url import MqttEndpoint
from koprogo_iot.storage.ports import Storage

ROOT = Path(__file__).resolve().parents[2]
CONFIGURATIONS = [
    "src/koprogo_iot/broker/mosquitto.conf",
    "deploy/mosquitto/mosquitto.conf",
    "deploy/kubernetes/base/mosquitto/mosquitto.conf",
]
# A PUBLISH around its payload, at most: type byte and 4 length bytes, the longest topic with its length, packet id.
PUBLISH_OVERHEAD = 1 + 4 + 2 + 65_535 + 2


def setting(path: Path, name: str) -> int:
    [value] = [line.split()[1] for line in path.read_text(encoding="utf-8").splitlines() if line.startswith(name + " ")]
    return int(value)


@pytest.mark.parametrize("path", CONFIGURATIONS)
def test_the_broker_forwards_no_message_the_workers_refuse_and_refuses_none_the_pipeline_records(path: str) -> None:
    limit = setting(ROOT / path, "message_size_limit")
    assert IngestSettings().max_payload_bytes <= limit
    assert limit + PUBLISH_OVERHEAD <= MqttSettings().max_packet_bytes


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the database plays no part here."""
    return f"sqlite:///{tmp_path / 'koprogo.db'}"


def test_the_workers_take_the_configured_maximum_and_integrations_the_same_default(storage: Storage) -> None:
    settings = Settings(mqtt=MqttSettings(max_packet_bytes=4096))
    worker = build_worker(settings, Pipeline(storage), MqttEndpoint("127.0.0.1"), shared=True)
    assert worker.max_packet == 4096
    assert MqttSettings().max_packet_bytes == mqtt_worker.MAX_PACKET  # network server integrations' workers
