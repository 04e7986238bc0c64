"""A private certificate authority for the broker's TLS listener: `koprogo-iot broker certificates`.

For an installation without certificates of its own: the CA signs the broker's certificate (and, for brokers that
require them, clients'); devices and workers are given `ca.pem` to trust. Keys are ECDSA P-256, which every
MQTT client library of the last decade handles.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_Key = ec.EllipticCurvePrivateKey


@dataclass(frozen=True, slots=True)
class Authority:
    """A CA's certificate and key in memory, and where its certificate was written."""

    certificate: x509.Certificate
    key: _Key
    ca_file: Path

    @property
    def ca_pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()


@dataclass(frozen=True, slots=True)
class Issued:
    cert_file: Path
    key_file: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key: _Key, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)


def make_authority(folder: Path, name: str = "KoproGo MQTT CA", days: int = 3650) -> Authority:
    """A new CA; its certificate is written to `folder/ca.pem` (its key stays in memory: sign, then forget)."""
    now = datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    authority = Authority(certificate, key, folder / "ca.pem")
    authority.ca_file.write_text(authority.ca_pem)
    return authority


def _subject_names(hosts: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def issue(
    authority: Authority, folder: Path, stem: str, common_name: str, hosts: list[str] | None = None, days: int = 825
) -> Issued:
    """A certificate signed by `authority`: a server's for `hosts` (names or addresses), else a client's."""
    now = datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    usage = ExtendedKeyUsageOID.SERVER_AUTH if hosts else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(authority.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName(_subject_names(hosts)), critical=False)
    certificate = builder.sign(authority.key, hashes.SHA256())
    folder.mkdir(parents=True, exist_ok=True)
    issued = Issued(folder / f"{stem}.pem", folder / f"{stem}.key")
    issued.cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    _write_key(key, issued.key_file)
    return issued
