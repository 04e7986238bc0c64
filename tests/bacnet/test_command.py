"""`koprogo-iot bacnet` as an operator runs it: a process reading the database, polling a controller simulated on
loopback, publishing to a real Mosquitto (an ingest worker stores), serving its metrics, stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from koprogo_iot.bootstrap import open_storage
from koprogo_iot.cli import main
from koprogo_iot.domain.bacnet import BacnetPoint
from koprogo_iot.domain.sensors import SensorType
from koprogo_iot.ingest.mqtt_worker import MqttIngestWorker
from koprogo_iot.ingest.pipeline import Pipeline
from tests.bacnet.conftest import native_sensor, simulated_controller
from tests.conftest import ENCRYPTION_KEY, Mosquitto, Tenant, eventually, free_port, make_tenant, running

pytestmark = pytest.mark.mosquitto


async def cli(*args: str, log: Path, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    with log.open("ab") as output:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "koprogo_iot.cli", *args, stdout=output, stderr=output, env=env
        )


async def test_the_command_polls_publishes_serves_metrics_and_stops_on_sigterm(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    url, log = f"sqlite:///{tmp_path / 'k.db'}", tmp_path / "bacnet.log"
    storage = await open_storage(url, ENCRYPTION_KEY)
    try:
        t = await make_tenant(storage)
        sensor = native_sensor(t, "outside", SensorType.TEMPERATURE, "°C")
        await storage.sensors.add(sensor)
        metrics_port = free_port()
        async with simulated_controller() as pxc:
            await storage.bacnet.add(
                BacnetPoint(
                    organization_id=t.organization.id,
                    building_id=t.building.id,
                    sensor_id=sensor.id,
                    address=pxc.address,
                    object_type="analog-input",
                    object_instance=1,
                    polling_interval=60,
                )
            )
            worker = MqttIngestWorker(Pipeline(storage), mosquitto.endpoint, f"bacnet-cli-{uuid.uuid4().hex[:8]}")
            async with running(worker):
                poller = await cli(
                    "bacnet",
                    "--data-dir",  # where the process keeps its own encryption key
                    str(tmp_path),
                    "--database-url",
                    url,
                    "--mqtt-url",
                    mosquitto.server.url,
                    "--organization",
                    str(t.organization.id),
                    "--building",
                    str(t.building.id),
                    "--bacnet-host",
                    "127.0.0.1",
                    "--bacnet-port",
                    "0",
                    "--metrics-port",
                    str(metrics_port),
                    log=log,
                    # It publishes with a device login of its own, issued through the broker's admin.
                    env=os.environ | {"KOPROGO_MQTT_ADMIN_URL": mosquitto.server.admin_url},
                )
                try:
                    [reading] = await eventually(lambda: storage.readings.recent(t.organization.id, sensor.id), 20)
                    assert reading.value == 21.5
                    text = await eventually(lambda: _metrics(metrics_port))
                    assert re.search(r'^koprogo_bacnet_reads_total\{result="ok"\} [1-9]', text, re.M), text
                    assert re.search(r"^koprogo_bacnet_points 1\.0$", text, re.M), text
                finally:
                    poller.send_signal(signal.SIGTERM)
                    status = await asyncio.wait_for(poller.wait(), timeout=15)
        assert status == 0, log.read_text()
        assert "polling 1 BACnet point(s) of 1 controller(s)" in log.read_text()
    finally:
        await storage.close()


def test_errors_are_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"

    async def tenant() -> Tenant:
        storage = await open_storage(url, ENCRYPTION_KEY)
        try:
            return await make_tenant(storage)
        finally:
            await storage.close()

    t = asyncio.run(tenant())
    stranger = uuid.uuid4()
    assert main(["bacnet", "--data-dir", str(tmp_path), "--database-url", url, "--organization", str(stranger)]) == 2
    assert capsys.readouterr().err == f"koprogo-iot bacnet: error: organization {stranger} not found\n"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:  # a BMS workstation on the same host
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        args = ["--organization", str(t.organization.id), "--bacnet-host", "127.0.0.1", "--bacnet-port", str(port)]
        assert main(["bacnet", "--data-dir", str(tmp_path), "--database-url", url, *args]) == 2
    expected = f"UDP port {port} is in use on 127.0.0.1: give the poller another BACnet port"
    assert capsys.readouterr().err == f"koprogo-iot bacnet: error: {expected}\n"


async def _metrics(port: int) -> str | None:
    try:
        async with httpx.AsyncClient() as client:
            return (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    except httpx.ConnectError:
        return None
