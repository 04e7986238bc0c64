"""A second Mosquitto playing an organization's LoRaWAN network server broker (ChirpStack's, The Things Stack's):
credentials required, optionally TLS with a certificate authority made for the test."""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from koprogo_iot.bench.services import Service
from koprogo_iot.mqtt_url import MqttEndpoint

USER, PASSWORD = "koprogo", "lns-secret-password"


@dataclass(frozen=True)
class Authority:
    """A certificate authority and a server certificate it signed for 127.0.0.1, as PEM files."""

    ca_pem: str
    ca_file: Path
    cert_file: Path
    key_file: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_authority(folder: Path) -> Authority:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("KoproGo test CA"))
        .issuer_name(_name("KoproGo test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    ca_pem = ca.public_bytes(serialization.Encoding.PEM).decode()
    files = Authority(ca_pem, folder / "ca.pem", folder / "server.pem", folder / "server.key")
    files.ca_file.write_text(ca_pem)
    files.cert_file.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return files


class NetworkServerBroker(Service):
    """Mosquitto refusing anonymous clients, persisting into `folder`, over TLS when given an authority."""

    name = "network server broker"

    def __init__(self, folder: Path, authority: Authority | None = None) -> None:
        super().__init__()
        self.folder = folder
        self.authority = authority

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
        if os.geteuid() == 0:  # as the shipped-configuration broker does (see bench.services.MosquittoServer)
            lines.append("user root")
        config = self.folder / "mosquitto.conf"
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(config)]

    def publish_args(self) -> list[str]:
        """What `mosquitto_pub` needs to publish here."""
        args = ["-h", "127.0.0.1", "-p", str(self.port), "-u", USER, "-P", PASSWORD]
        return args + (["--cafile", str(self.authority.ca_file)] if self.authority else [])
