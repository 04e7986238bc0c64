"""A second Mosquitto playing an organization's LoRaWAN network server broker (ChirpStack's, The Things Stack's):
credentials required, optionally TLS with a certificate authority made for the test."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from koprogo_iot.bench.services import Service
from koprogo_iot.broker import certificates
from koprogo_iot.mqtt_url import MqttEndpoint

USER, PASSWORD = "koprogo", "lns-secret-password"


@dataclass(frozen=True)
class Authority:
    """A certificate authority and a server certificate it signed for 127.0.0.1, as PEM files."""

    signer: certificates.Authority  # to sign client certificates too
    cert_file: Path
    key_file: Path

    @property
    def ca_file(self) -> Path:
        return self.signer.ca_file

    @property
    def ca_pem(self) -> str:
        return self.signer.ca_pem


def make_authority(folder: Path) -> Authority:
    signer = certificates.make_authority(folder, "KoproGo test CA", days=1)
    server = certificates.issue(signer, folder, "server", "127.0.0.1", ["127.0.0.1"], days=1)
    return Authority(signer, server.cert_file, server.key_file)


class NetworkServerBroker(Service):
    """Mosquitto refusing anonymous clients, persisting into `folder`, over TLS when given an authority."""

    name = "network server broker"

    def __init__(self, folder: Path, authority: Authority | None = None, require_certificate: bool = False) -> None:
        """`require_certificate`: clients must also present a certificate the authority signed."""
        super().__init__()
        self.folder = folder
        self.authority = authority
        self.require_certificate = require_certificate

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.authority else 'mqtt'}://127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> MqttEndpoint:
        return MqttEndpoint("127.0.0.1", self.port, USER, PASSWORD, tls=self.authority is not None)

    def command(self) -> list[str]:
        self.folder.mkdir(parents=True, exist_ok=True)
        passwords = self.folder / "passwords"
        subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwords), USER, PASSWORD], check=True, timeout=30)
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous false",
            f"password_file {passwords}",
            "max_inflight_messages 10000",
            # What the broker keeps for a consumer that is away (Mosquitto's default is 1000 messages, then drops):
            # a network server's broker must hold the backlog of a worker outage and of a lease takeover.
            "max_queued_messages 100000",
            "persistence true",
            f"persistence_location {self.folder}/",
        ]
        if self.authority is not None:
            a = self.authority
            lines += [f"cafile {a.ca_file}", f"certfile {a.cert_file}", f"keyfile {a.key_file}"]
            if self.require_certificate:
                lines.append("require_certificate true")
        if os.geteuid() == 0:  # as the shipped-configuration broker does (see bench.services.MosquittoServer)
            lines.append("user root")
        config = self.folder / "mosquitto.conf"
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(config)]

    def publish_args(self) -> list[str]:
        """What `mosquitto_pub` needs to publish here."""
        args = ["-h", "127.0.0.1", "-p", str(self.port), "-u", USER, "-P", PASSWORD]
        return args + (["--cafile", str(self.authority.ca_file)] if self.authority else [])
