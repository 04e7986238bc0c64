"""MQTT over TLS, with a certificate authority the test makes: devices, the ingest worker and the load generator
on the shipped configuration's TLS listener; a client that does not trust the CA, or lacks the client certificate
a broker requires, is refused."""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path

import pytest

from koprogo_iot.bootstrap import build_worker
from koprogo_iot.broker import certificates
from koprogo_iot.config import MqttSettings, Settings
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.ingest.mqtt_worker import MqttIngestWorker
from koprogo_iot.ingest.pipeline import Pipeline
from koprogo_iot.loadgen.publisher import run_load
from koprogo_iot.mqtt_url import client_tls
from koprogo_iot.storage.ports import Storage
from tests.conftest import Mosquitto, eventually, make_tenant, running
from tests.support.mqtt_client import Client
from tests.support.network_server import NetworkServerBroker, make_authority

pytestmark = pytest.mark.mosquitto


def trusted(mosquitto: Mosquitto) -> ssl.SSLContext:
    assert mosquitto.server.authority is not None
    return client_tls(mosquitto.server.authority.ca_file)


async def test_devices_and_workers_over_tls_with_the_platforms_ca(storage: Storage, mosquitto: Mosquitto) -> None:
    tenant = await make_tenant(storage)
    server = mosquitto.server
    plain = await server.device(tenant.organization.id)
    device = server.endpoint_of(None, tls=True).with_login(plain.username or "", plain.password or "")
    worker_endpoint = server.endpoint_of(server.ingest, tls=True)
    worker = MqttIngestWorker(Pipeline(storage), worker_endpoint, "tls-worker", tls=trusted(mosquitto))
    client = Client(device, tls=trusted(mosquitto))
    sensor = tenant.unit_sensor
    try:
        async with running(worker):
            assert str(await asyncio.to_thread(client.connect)) == "Success"
            body = json.dumps({"timestamp": utcnow().isoformat(), "value": 3.25})
            assert str(await asyncio.to_thread(client.publish, sensor.mqtt_topic, body)) == "Success"
            [stored] = await eventually(lambda: storage.readings.recent(tenant.organization.id, sensor.id))
            result = await run_load(device, [sensor.mqtt_topic], rate=200, duration=0.5, tls=trusted(mosquitto))
    finally:
        client.close()
    assert stored.value == 3.25
    assert result.published == result.acknowledged == 100


async def test_a_client_that_does_not_trust_the_ca_is_refused(storage: Storage, mosquitto: Mosquitto) -> None:
    endpoint = mosquitto.server.endpoint_of(mosquitto.server.ingest, tls=True)
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        await asyncio.open_connection(endpoint.host, endpoint.port, ssl=ssl.create_default_context())
    worker = MqttIngestWorker(Pipeline(storage), endpoint, "untrusting")  # the system's CAs only
    task = asyncio.create_task(worker.run())
    try:
        await eventually(lambda: _failed_with(worker, "CERTIFICATE_VERIFY_FAILED"))
    finally:
        task.cancel()
    assert not worker.subscribed.is_set()


async def _failed_with(worker: MqttIngestWorker, text: str) -> bool:
    return text in (worker.last_error or "")


async def test_the_worker_presents_its_client_certificate_from_the_settings(storage: Storage, tmp_path: Path) -> None:
    authority = make_authority(tmp_path / "ca")
    issued = certificates.issue(authority.signer, tmp_path / "ca", "worker", "koprogo-ingest-1")
    with NetworkServerBroker(tmp_path / "broker", authority, require_certificate=True) as broker:
        endpoint = broker.endpoint
        with_certificate = Settings(
            mqtt=MqttSettings(ca_file=authority.ca_file, cert_file=issued.cert_file, key_file=issued.key_file)
        )
        worker = build_worker(with_certificate, Pipeline(storage), endpoint, shared=False)
        async with running(worker):
            assert worker.subscribed.is_set()
        without = build_worker(
            Settings(mqtt=MqttSettings(ca_file=authority.ca_file)), Pipeline(storage), endpoint, False
        )
        task = asyncio.create_task(without.run())
        try:
            await eventually(lambda: _failed_with(without, "closed the connection"))  # TLS 1.3: after the handshake
        finally:
            task.cancel()
        assert not without.subscribed.is_set()
