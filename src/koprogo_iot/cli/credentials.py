"""`koprogo-iot credentials`: the MQTT logins of devices and gateways (issue, list, rotate, revoke), and
`koprogo-iot broker`: the Mosquitto files the platform writes (dynamic-security configuration, TLS certificates)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from uuid import UUID

from koprogo_iot import bootstrap
from koprogo_iot.broker import certificates
from koprogo_iot.broker.dynsec import Login, configuration
from koprogo_iot.cli import options
from koprogo_iot.cli.ista import operator
from koprogo_iot.config import Settings
from koprogo_iot.domain.credentials import DeviceCredential
from koprogo_iot.mqtt_url import MqttEndpoint
from koprogo_iot.services.audit import AuditLog
from koprogo_iot.services.credentials import DeviceLogins


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    logins = commands.add_parser("credentials", help="MQTT logins of devices and gateways")
    actions = logins.add_subparsers(dest="credentials_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="issue a login (its password is printed once)")
    add.add_argument("--name", required=True, help="what the device is, e.g. 'Passerelle chaufferie'")
    add.add_argument("--building", type=UUID, help="publish under this building only (default: any)")
    listed = actions.add_parser("list", help="the organization's logins, revoked ones included")
    rotate = actions.add_parser("rotate", help="a new password for a login (devices using the old one are cut off)")
    revoke = actions.add_parser("revoke", help="refuse a login from now on")
    for action in (rotate, revoke):
        action.add_argument("credential", type=UUID, help="the credential's id (`credentials list`)")
    for action in (add, listed, rotate, revoke):
        action.add_argument("--organization", type=UUID, required=True, help="the organization's id")
        action.add_argument("--data-dir", help="where embedded data lives (KOPROGO_DATA_DIR, default ./data)")
        action.add_argument("--database-url", help="postgresql://... or sqlite:///path (KOPROGO_DATABASE_URL)")

    broker = commands.add_parser("broker", help="Mosquitto's files: access configuration, TLS certificates")
    files = broker.add_subparsers(dest="broker_command", required=True, metavar="ACTION")
    config = files.add_parser(
        "config",
        help="write the dynamic-security file (logins and access rules) from the database, before Mosquitto starts",
    )
    config.add_argument("--output", type=Path, required=True, help="e.g. /var/lib/mosquitto/dynamic-security.json")
    config.add_argument(
        "--hold-devices",
        action="store_true",
        help="devices cannot log in until an ingest worker has subscribed and lets them in (workers need "
        "KOPROGO_MQTT_ADMIN_URL): nothing a device publishes right after a broker restart is lost",
    )
    options.add_flags(config, "broker config")
    certs = files.add_parser("certificates", help="a private CA and the broker's TLS certificate (and clients')")
    certs.add_argument("folder", type=Path, help="where to write ca.pem, server.pem and server.key")
    certs.add_argument("--host", action="append", required=True, help="a name or address clients connect to")
    certs.add_argument("--client", action="append", default=[], help="also a client certificate of this name")


def _line(c: DeviceCredential) -> str:
    state = "active" if c.active else f"revoked {c.revoked_at:%Y-%m-%d %H:%M}"
    return f"{c.id}  {c.username:<16} {state:<24} {c.topic_filter:<60} {c.name}"


async def execute(settings: Settings, args: argparse.Namespace) -> int:
    if args.command == "broker" and args.broker_command == "certificates":
        print(_certificates(args))
        return 0
    storage = await bootstrap.open_storage(settings.resolved_database_url, settings.encryption_secret())
    try:
        if args.command == "broker":
            devices = await storage.credentials.active()
            print(await _broker_config(settings, args.output, devices, args.hold_devices))
            return 0
        await storage.tenancy.get_organization(args.organization)
        audit = AuditLog(storage.audit)
        logins = DeviceLogins(storage.credentials, storage.tenancy, audit, bootstrap.tool_broker_accounts(settings))
        principal = operator(args.organization)
        if args.credentials_command == "list":
            print("\n".join(_line(c) for c in await logins.list(principal)) or "no credential")
        elif args.credentials_command == "revoke":
            print(f"revoked {(await logins.revoke(principal, args.credential)).username}")
        else:
            if args.credentials_command == "add":
                credential, password = await logins.issue(principal, args.name, args.building)
            else:
                credential, password = await logins.rotate(principal, args.credential)
            print(f"MQTT login    {credential.username} / {password}")
            print(f"publish to    {credential.topic_filter}  (the password is not shown again)")
    finally:
        await storage.close()
    return 0


async def _broker_config(settings: Settings, output: Path, devices: list[DeviceCredential], hold: bool) -> str:
    if not settings.mqtt.admin_url or not settings.mqtt.url:
        raise ValueError(
            "the broker's logins come from KOPROGO_MQTT_ADMIN_URL (the platform's) and KOPROGO_MQTT_URL (the "
            "ingest workers'): set both, as for the api and ingest processes"
        )
    admin = Login.of(MqttEndpoint.parse(settings.mqtt.admin_url), "KOPROGO_MQTT_ADMIN_URL")
    ingest = Login.of(MqttEndpoint.parse(settings.mqtt.url), "KOPROGO_MQTT_URL")
    if admin.username == ingest.username:
        raise ValueError("KOPROGO_MQTT_ADMIN_URL and KOPROGO_MQTT_URL must use two different logins")
    output.parent.mkdir(parents=True, exist_ok=True)
    # Written beside, then renamed: Mosquitto never reads half a file; 0600 as it holds password digests.
    partial = output.with_name(output.name + ".partial")
    partial.write_text(json.dumps(configuration(admin, ingest, devices, hold), indent=1), encoding="utf-8")
    os.chmod(partial, 0o600)
    partial.replace(output)
    held = " (held until an ingest worker has subscribed)" if hold else ""
    return f"wrote {output}: the admin and ingest logins and {len(devices)} device logins{held}"


def _certificates(args: argparse.Namespace) -> str:
    authority = certificates.make_authority(args.folder)
    certificates.issue(authority, args.folder, "server", args.host[0], args.host)
    lines = [f"wrote {authority.ca_file} (give it to devices and workers to trust) and server.pem, server.key"]
    for name in args.client:
        issued = certificates.issue(authority, args.folder, name, name)
        lines.append(f"wrote {issued.cert_file} and {issued.key_file}")
    lines.append("the CA's private key was not kept: run this again to issue more (and give devices the new ca.pem)")
    return "\n".join(lines)
