"""Start our own Mosquitto, Redis and ingest workers on free ports: for benchmarks (and the tests, which start
the same processes).

Each runs from the machine's binaries with KoproGo's configuration, so a test or a benchmark can stop, kill
and restart it without touching the services other programs use.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

from koprogo_iot.mqtt_url import MqttEndpoint

# The broker configuration ingestion needs, shipped in the package (deploy/mosquitto/mosquitto.conf links to it).
SHIPPED_MOSQUITTO_CONF = resources.files("koprogo_iot.broker") / "mosquitto.conf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], name: str, timeout: float = 15.0) -> None:
    """Return once something accepts connections on `port`; fail if `process` dies or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with code {process.returncode}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not listen on port {port} within {timeout:.0f} s") from None
            time.sleep(0.05)


def peak_rss_mib(pid: int) -> float | None:
    """The process's peak resident memory (VmHWM), in MiB; None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Service:
    name = "service"

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        self.process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, self.process, self.name)

    def stop(self, kill: bool = False) -> None:
        """Stop it (SIGTERM), or kill it (SIGKILL: no chance to save anything)."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        self.process.wait(timeout=30)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> Service:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class MosquittoServer(Service):
    """Mosquitto with the shipped configuration, persisting into `folder` (so a restart keeps sessions)."""

    name = "mosquitto"

    def __init__(self, folder: Path, port: int | None = None) -> None:
        super().__init__(port)
        self.folder = folder
        self.endpoint = MqttEndpoint("127.0.0.1", self.port)

    def command(self) -> list[str]:
        self.folder.mkdir(parents=True, exist_ok=True)
        lines = []
        for line in SHIPPED_MOSQUITTO_CONF.read_text(encoding="utf-8").splitlines():
            if line.startswith("listener "):
                line = f"listener {self.port} 127.0.0.1"
            elif line.startswith("persistence_location "):
                line = f"persistence_location {self.folder}/"
            lines.append(line)
        if os.geteuid() == 0:
            # Mosquitto started as root switches to the `mosquitto` user, which cannot write in our private
            # temporary folder: its persistence (what a restart keeps) would silently fail.
            lines.append("user root")
        config = self.folder / "mosquitto.conf"
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        return [binary, "-c", str(config)]


class RedisServer(Service):
    name = "redis-server"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]


class IngestWorker(Service):
    """`koprogo-iot ingest` in its own process, its metrics on `port`."""

    name = "ingest worker"

    def __init__(self, env: dict[str, str], client_id: str, log: Path | None = None) -> None:
        super().__init__()
        self.env = env | {"KOPROGO_MQTT_CLIENT_ID": client_id, "KOPROGO_INGEST_METRICS_PORT": str(self.port)}
        self.log = log

    def command(self) -> list[str]:
        return [sys.executable, "-m", "koprogo_iot.cli", "ingest"]

    def start(self) -> None:
        if self.log is None:
            self.process = subprocess.Popen(
                self.command(), env=os.environ | self.env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
            )
        else:
            with open(self.log, "ab") as output:  # the child keeps its own copy of the descriptor
                self.process = subprocess.Popen(
                    self.command(), env=os.environ | self.env, stdout=output, stderr=subprocess.STDOUT
                )
        wait_for_port(self.port, self.process, self.name)

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"
