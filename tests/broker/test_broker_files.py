"""What the platform writes for Mosquitto, and what it does when Mosquitto missed a change: the dynamic-security
file rebuilt from the database (passwords never stored, yet every device logs in), TLS certificates, and a
revocation made while the broker was down applied once it is back."""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from koprogo_iot.bench.services import MosquittoServer
from koprogo_iot.cli.ista import operator
from koprogo_iot.domain.errors import BrokerUnavailable
from koprogo_iot.services.audit import AuditLog
from koprogo_iot.services.credentials import DeviceLogins
from koprogo_iot.storage.ports import Storage
from tests.conftest import make_tenant
from tests.support.mqtt_client import Client
from tests.test_cli import cli

pytestmark = pytest.mark.mosquitto


def login_of(output: str) -> tuple[str, str]:
    match = re.search(r"MQTT login +(\S+) / (\S+)", output)
    assert match, output
    return match[1], match[2]


async def connects(server: MosquittoServer, username: str, password: str) -> str:
    client = Client(server.endpoint_of(None).with_login(username, password))
    try:
        return str(await asyncio.to_thread(client.connect))
    finally:
        client.close()


async def test_the_broker_file_written_from_the_database_lets_active_devices_in_or_holds_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    created = cli(
        "create-admin", "--database-url", url, "--organization", "Op", "--email", "o@x.org", "--password", "long enough"
    )
    organization = uuid.UUID(re.search(r"organization (\S+)", created.stdout)[1])  # type: ignore[index]
    org = ["--organization", str(organization), "--database-url", url]
    kept = login_of(cli("credentials", "add", "--name", "Passerelle chaufferie", *org).stdout)
    gone = cli("credentials", "add", "--name", "Ancienne passerelle", *org)
    listed = cli("credentials", "list", *org).stdout
    gone_id = next(line.split()[0] for line in listed.splitlines() if "Ancienne" in line)
    assert cli("credentials", "revoke", gone_id, *org).returncode == 0

    server = MosquittoServer(tmp_path / "mq")
    env = os.environ | {"KOPROGO_MQTT_URL": server.url, "KOPROGO_MQTT_ADMIN_URL": server.admin_url}
    written = cli("broker", "config", "--output", str(tmp_path / "mq" / "dynamic-security.json"), *org[2:], env=env)
    assert written.returncode == 0, written.stderr
    assert "1 device logins" in written.stdout
    assert oct((tmp_path / "mq" / "dynamic-security.json").stat().st_mode & 0o777) == "0o600"
    with server:
        assert await connects(server, *kept) == "Success"
        assert await connects(server, *login_of(gone.stdout)) == "Not authorized"
        # The platform's own logins are in the file too: a worker subscribes, the admin changes things.
        assert await server.accounts().logins() == {kept[0]}
    # Held devices (`--hold-devices`): refused until a worker lets them in once subscribed (tests/faults:
    # test_a_device_back_at_once_after_a_broker_restart_is_held_until_a_worker_listens).
    held = cli(
        "broker",
        "config",
        "--output",
        str(tmp_path / "mq" / "dynamic-security.json"),
        "--hold-devices",
        *org[2:],
        env=env,
    )
    assert "1 device logins (held until an ingest worker has subscribed)" in held.stdout, held.stderr
    with server:
        assert await connects(server, *kept) == "Not authorized"
        # A login issued while the broker holds the others is held too (else it would publish to nobody).
        issued = login_of(cli("credentials", "add", "--name", "Passerelle neuve", *org, env=env).stdout)
        assert await connects(server, *issued) == "Not authorized"
        assert await connects(server, server.ingest.username, server.ingest.password) == "Success"
        assert await server.accounts().admit_held_devices() == 2
        assert await connects(server, *kept) == "Success"
        assert await connects(server, *issued) == "Success"
        assert await server.accounts().admit_held_devices() == 0
        later = login_of(cli("credentials", "add", "--name", "Passerelle du toit", *org, env=env).stdout)
        assert await connects(server, *later) == "Success"  # nothing held any more: in at once


def test_broker_certificates_make_a_ca_a_server_and_client_certificates(tmp_path: Path) -> None:
    result = cli(
        "broker",
        "certificates",
        str(tmp_path),
        "--host",
        "mqtt.example.be",
        "--host",
        "10.0.0.5",
        "--client",
        "worker-1",
    )
    assert result.returncode == 0, result.stderr
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.pem").read_bytes())
    server = x509.load_pem_x509_certificate((tmp_path / "server.pem").read_bytes())
    client = x509.load_pem_x509_certificate((tmp_path / "worker-1.pem").read_bytes())
    for issued in (server, client):
        issued.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["mqtt.example.be"]
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["10.0.0.5"]
    usage = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert oct((tmp_path / "server.key").stat().st_mode & 0o777) == "0o600"
    assert not list(tmp_path.glob("ca.key"))


async def test_a_revocation_the_broker_missed_is_applied_when_it_is_back(storage: Storage, tmp_path: Path) -> None:
    tenant = await make_tenant(storage)
    principal = operator(tenant.organization.id)
    with MosquittoServer(tmp_path / "mq") as server:
        logins = DeviceLogins(storage.credentials, storage.tenancy, AuditLog(storage.audit), server.accounts())
        credential, password = await logins.issue(principal, "gateway")
        await asyncio.to_thread(server.stop)
        with pytest.raises(BrokerUnavailable, match="revoked, but the broker could not disconnect it yet"):
            await logins.revoke(principal, credential.id)
        assert not (await storage.credentials.get(tenant.organization.id, credential.id)).active
        await asyncio.to_thread(server.start)
        assert await connects(server, credential.username, password) == "Success"  # the broker still has it
        assert await logins.reconcile() == 1
        assert await connects(server, credential.username, password) == "Not authorized"
        assert await logins.reconcile() == 0
