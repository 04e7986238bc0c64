"""Start our own Mosquitto, Redis and ingest workers on free ports: for benchmarks (and the tests, which start
the same processes).

Each runs from the machine's binaries with KoproGo's configuration, so a test or a benchmark can stop, kill
and restart it without touching the services other programs use.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path
from uuid import UUID

from koprogo_iot.broker.certificates import Authority, make_authority
from koprogo_iot.broker.certificates import issue as issue_certificate
from koprogo_iot.broker.dynsec import DynamicSecurity, Login, configuration
from koprogo_iot.domain.credentials import issue
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
    """Mosquitto with the shipped configuration, persisting into `folder` (so a restart keeps sessions).

    Its dynamic-security file is written at the first start with an admin and an ingest login made here; its TLS
    listener (on `tls_port`) serves a certificate of a CA made here (`authority.ca_file`). Devices get logins
    through the admin, as the platform gives them (`device`).
    """

    name = "mosquitto"

    def __init__(self, folder: Path, port: int | None = None) -> None:
        super().__init__(port)
        self.folder = folder
        self.tls_port = free_port()
        self.admin = Login("koprogo-admin", secrets.token_urlsafe(18))
        self.ingest = Login("koprogo-ingest", secrets.token_urlsafe(18))
        self.authority: Authority | None = None
        self._devices: dict[tuple[UUID, UUID | None], MqttEndpoint] = {}

    def endpoint_of(self, login: Login | None, tls: bool = False) -> MqttEndpoint:
        port = self.tls_port if tls else self.port
        user, password = (login.username, login.password) if login else (None, None)
        return MqttEndpoint("127.0.0.1", port, user, password, tls=tls)

    @property
    def endpoint(self) -> MqttEndpoint:
        """Where the ingest workers connect, with their login."""
        return self.endpoint_of(self.ingest)

    @property
    def url(self) -> str:
        return f"mqtt://{self.ingest.username}:{self.ingest.password}@127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"mqtt://{self.admin.username}:{self.admin.password}@127.0.0.1:{self.port}"

    def accounts(self) -> DynamicSecurity:
        return DynamicSecurity(self.endpoint_of(self.admin))

    async def device(self, organization_id: UUID, building_id: UUID | None = None) -> MqttEndpoint:
        """A device login of the organization (or building), issued once per server and scope."""
        scope = (organization_id, building_id)
        if scope not in self._devices:
            credential, password = issue(organization_id, "test device", building_id)
            await self.accounts().grant(credential, password)
            self._devices[scope] = self.endpoint_of(Login(credential.username, password))
        return self._devices[scope]

    def command(self) -> list[str]:
        self.folder.mkdir(parents=True, exist_ok=True)
        certificates = self.folder / "certs"
        if self.authority is None:
            self.authority = make_authority(certificates, "KoproGo test CA", days=2)
            issue_certificate(self.authority, certificates, "server", "127.0.0.1", ["127.0.0.1", "localhost"], days=2)
        security = self.folder / "dynamic-security.json"
        if not security.exists():  # later starts keep what the plugin saved (logins given or removed since)
            security.write_text(json.dumps(configuration(self.admin, self.ingest, [])), encoding="utf-8")
        replaced = {
            "listener 1883": f"listener {self.port} 127.0.0.1",
            "listener 8883": f"listener {self.tls_port} 127.0.0.1",
            "certfile ": f"certfile {certificates / 'server.pem'}",
            "keyfile ": f"keyfile {certificates / 'server.key'}",
            "persistence_location ": f"persistence_location {self.folder}/",
            "plugin ": f"plugin {dynamic_security_plugin()}",
            "plugin_opt_config_file ": f"plugin_opt_config_file {security}",
        }
        lines = []
        for line in SHIPPED_MOSQUITTO_CONF.read_text(encoding="utf-8").splitlines():
            lines.append(next((new for start, new in replaced.items() if line.startswith(start)), line))
        if os.geteuid() == 0:
            # Mosquitto started as root switches to the `mosquitto` user, which cannot write in our private
            # temporary folder: its persistence (what a restart keeps) would silently fail.
            lines.append("user root")
        config = self.folder / "mosquitto.conf"
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        return [binary, "-c", str(config)]


def dynamic_security_plugin() -> Path:
    """The plugin's library, wherever this machine's Mosquitto package put it."""
    for pattern in ("/usr/lib/*/mosquitto_dynamic_security.so", "/usr/lib/mosquitto_dynamic_security.so"):
        for found in sorted(Path("/").glob(pattern.lstrip("/"))):
            return found
    raise RuntimeError("Mosquitto's dynamic-security plugin (mosquitto_dynamic_security.so) is not installed")


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

    def __init__(self, env: dict[str, str], client_id: str, log: Path | None = None, client: str = "own") -> None:
        super().__init__()
        self.env = env | {"KOPROGO_MQTT_CLIENT_ID": client_id, "KOPROGO_INGEST_METRICS_PORT": str(self.port)}
        self.log = log
        self.client = client  # "paho": the same pipeline behind paho-mqtt (bench/paho_worker.py), to compare

    def command(self) -> list[str]:
        if self.client == "paho":
            return [sys.executable, "-m", "koprogo_iot.bench.paho_worker"]
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
