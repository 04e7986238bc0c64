"""`koprogo-iot ingest --workers N`: N workers with distinct client ids, one killed is restarted, SIGTERM stops all."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from koprogo_iot.cli import _parser, supervisor
from koprogo_iot.cli.supervisor import worker_arguments
from koprogo_iot.config import MqttSettings, Settings
from tests.conftest import Mosquitto, eventually
from tests.faults.test_faults import worker_env

STARTED = re.compile(r"started ingest worker (\d) \(pid (\d+), client id ([\w-]+)\)")


def two_free_ports() -> int:
    """A port p such that p and p + 1 are free now."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
                return port
    raise AssertionError("no two consecutive free ports")


def test_each_worker_gets_its_own_client_id_and_probe_port() -> None:
    settings = Settings.model_validate({"mqtt": {"client_id": "ingest-a"}, "ingest": {"metrics_port": 9100}})
    args = _parser().parse_args(worker_arguments(["ingest", "--workers", "3"], settings, 2))
    assert args.workers == 1 and args.mqtt_client_id == "ingest-a-2" and args.ingest_metrics_port == "9101"


async def subscribed(port: int) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    except httpx.HTTPError:
        return False
    return "koprogo_ingest_subscribed 1.0" in text


@pytest.mark.mosquitto
@pytest.mark.postgres
async def test_a_killed_worker_is_restarted_and_sigterm_stops_them_all(
    mosquitto: Mosquitto, postgres_url: str, tmp_path: Path
) -> None:
    port = two_free_ports()
    env = worker_env(postgres_url, mosquitto.server) | {
        "KOPROGO_MQTT_CLIENT_ID": "supervised",
        "KOPROGO_INGEST_METRICS_PORT": str(port),
    }
    log = tmp_path / "supervisor.log"
    with open(log, "wb") as output:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "koprogo_iot.cli", "ingest", "--workers", "2"],
            env=os.environ | env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        async def both_subscribed() -> bool:
            return await subscribed(port) and await subscribed(port + 1)

        await eventually(both_subscribed, timeout=30)
        first = {m[0]: (int(m[1]), m[2]) for m in STARTED.findall(log.read_text())}
        assert {client for _, client in first.values()} == {"supervised-1", "supervised-2"}

        os.kill(first["1"][0], signal.SIGKILL)

        async def restarted() -> bool:
            starts = [m for m in STARTED.findall(log.read_text()) if m[0] == "1"]
            return len(starts) == 2 and await subscribed(port)

        await eventually(restarted, timeout=30)
        text = log.read_text()
        assert "ingest worker 1 exited with status -9" in text
        later = [(int(m[1]), m[2]) for m in STARTED.findall(text) if m[0] == "1"][-1]
        assert later[1] == "supervised-1" and later[0] != first["1"][0]  # same session, new process
        os.kill(first["2"][0], 0)  # the other one was left alone
        assert await subscribed(port + 1)

        supervisor.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(supervisor.wait, 30) == 0
        with pytest.raises(ProcessLookupError):  # no worker outlives it
            os.killpg(supervisor.pid, 0)
    finally:
        if supervisor.poll() is None:
            os.killpg(supervisor.pid, signal.SIGKILL)
            supervisor.wait(10)
    assert "Traceback" not in log.read_text()


def test_supervised_workers_without_a_client_id_get_this_hosts_default_one_each() -> None:
    settings = Settings(mqtt=MqttSettings(client_id=None))
    ids = [supervisor.client_id(settings, i) for i in (1, 2)]
    assert ids == [f"koprogo-ingest-{socket.gethostname()}-{i}" for i in (1, 2)]
