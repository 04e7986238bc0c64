"""Mosquitto's dynamic-security plugin: who may connect, publish and subscribe, set at start and changed live.

Why this plugin rather than password and ACL files: a change takes effect at once on a running broker, from
wherever the API runs (a message on `$CONTROL/dynamic-security/v1`, no shared disk, no signal to send), and
deleting a login or changing its password disconnects the clients using it. The plugin keeps its state in its
own file; `configuration` writes that file from the database (`koprogo-iot broker config`), so a broker whose
volume was lost is rebuilt with every device's password digest, and no password is ever needed again.

Access, denied unless granted:
- a device login publishes under its credential's `koprogo/{organization}[/{building}]/#`, subscribes to nothing;
- the ingest login subscribes to `$share/koprogo-ingest/koprogo/#` (Mosquitto checks the full filter, so no
  other client can join the workers' group and take a share of the readings) or `koprogo/#` (a lone worker);
- the admin login (the platform) reaches the plugin's control topics only.

Devices held at start (`broker config --hold-devices`): the file lists the device logins disabled, and the first
ingest worker to subscribe (with KOPROGO_MQTT_ADMIN_URL) enables them. Mosquitto 2.0 restores persistent sessions
at a restart but not shared subscriptions: without the hold, a device back before every worker acknowledged
messages nobody received. Refused at CONNECT instead, it keeps its readings and tries again.
"""

from __future__ import annotations

import asyncio
import json
import queue
import ssl
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from koprogo_iot.domain.credentials import ALL_TOPICS, INGEST_GROUP, USERNAME_PREFIX, DeviceCredential, Digest
from koprogo_iot.domain.errors import BrokerUnavailable
from koprogo_iot.mqtt_url import MqttEndpoint

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
_ADMIT_ROUNDS = 10  # look-ups of held logins per admission: each round lets in those issued during the previous one
RESPONSE_TOPIC = CONTROL_TOPIC + "/response"
ADMIN_ROLE = "koprogo-admin"
INGEST_ROLE = "koprogo-ingest"
INGEST_FILTER = f"$share/{INGEST_GROUP}/{ALL_TOPICS}"


@dataclass(frozen=True, slots=True)
class Login:
    username: str
    password: str

    @classmethod
    def of(cls, endpoint: MqttEndpoint, what: str) -> Login:
        if not endpoint.username or not endpoint.password:
            raise ValueError(f"{what}: the broker URL needs a username and a password (mqtt://user:password@host)")
        return cls(endpoint.username, endpoint.password)


def _acl(kind: str, topic: str) -> dict[str, Any]:
    return {"acltype": kind, "topic": topic, "allow": True}


def device_role(credential: DeviceCredential) -> dict[str, Any]:
    """One role per organization or building: what its devices may publish."""
    name = f"building-{credential.building_id}" if credential.building_id else f"org-{credential.organization_id}"
    return {"rolename": name, "acls": [_acl("publishClientSend", credential.topic_filter)]}


def _client(username: str, digest: Digest, role: str, name: str) -> dict[str, Any]:
    return {
        "username": username,
        "textname": name,
        "password": digest.value,
        "salt": digest.salt,
        "iterations": digest.iterations,
        "roles": [{"rolename": role}],
    }


def configuration(
    admin: Login, ingest: Login, devices: Iterable[DeviceCredential], hold_devices: bool = False
) -> dict[str, Any]:
    """The plugin's whole file: the platform's two logins and every active device credential (`hold_devices`:
    disabled, until an ingest worker has subscribed and lets them in, `DynamicSecurity.admit_held_devices`)."""
    roles = {
        ADMIN_ROLE: {
            "rolename": ADMIN_ROLE,
            "acls": [
                _acl(kind, CONTROL_TOPIC + "/#")
                for kind in ("publishClientSend", "publishClientReceive", "subscribePattern")
            ],
        },
        INGEST_ROLE: {
            "rolename": INGEST_ROLE,
            # The group when several workers share the load; `koprogo/#` for a single worker (`up` over Mosquitto).
            "acls": [_acl("subscribePattern", INGEST_FILTER), _acl("subscribePattern", ALL_TOPICS)],
        },
    }
    clients = [
        _client(admin.username, Digest.of(admin.password), ADMIN_ROLE, "KoproGo platform (device credentials)"),
        _client(ingest.username, Digest.of(ingest.password), INGEST_ROLE, "KoproGo ingest workers"),
    ]
    for credential in devices:
        if credential.active:
            role = device_role(credential)
            roles[role["rolename"]] = role
            client = _client(credential.username, credential.digest, role["rolename"], credential.name)
            clients.append(client | {"disabled": True} if hold_devices else client)
    return {
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": True,  # what a client subscribed to (itself checked) may receive
            "subscribe": False,
            "unsubscribe": True,
        },
        "clients": clients,
        "groups": [],
        "roles": list(roles.values()),
    }


class DynamicSecurity:
    """`BrokerAccounts` over the plugin's control topic, logged in as the admin of `endpoint`.

    Each change is one short connection: changes are rare (a person clicking), and a connection held open would
    need its own reconnecting task in every API process for nothing.
    """

    def __init__(self, endpoint: MqttEndpoint, tls: ssl.SSLContext | None = None, timeout: float = 10.0) -> None:
        Login.of(endpoint, "KOPROGO_MQTT_ADMIN_URL")
        self.endpoint = endpoint
        self.tls = tls if tls is not None or not endpoint.tls else ssl.create_default_context()
        self.timeout = timeout

    async def grant(self, credential: DeviceCredential, password: str) -> None:
        """A new device login; held like the others while the broker holds devices (it was just restarted and no
        worker has subscribed yet), else a device issued in those seconds would publish to nobody."""
        role = device_role(credential)
        await self._run(
            [{"command": "createRole", **role}],
            tolerate="Role already exists",
        )
        hold = bool(await self._held())
        create = {
            "command": "createClient",
            "username": credential.username,
            "password": password,
            "textname": credential.name,
            "roles": [{"rolename": role["rolename"]}],
        }
        await self._run([create, *([{"command": "disableClient", "username": credential.username}] if hold else [])])
        # A worker that let the others in between the two look-ups would leave this one held: let it in then. (A
        # worker letting them in after this look-up lets this one in too: it lists again until none is held.)
        if hold and await self._held() == [credential.username]:
            await self._run([{"command": "enableClient", "username": credential.username}])

    async def change_password(self, credential: DeviceCredential, password: str) -> None:
        await self._run([{"command": "setClientPassword", "username": credential.username, "password": password}])

    async def remove(self, username: str) -> None:
        await self._run([{"command": "deleteClient", "username": username}], tolerate="Client not found")

    async def logins(self) -> set[str] | None:
        (response,) = await self._run([{"command": "listClients", "verbose": False, "count": -1, "offset": 0}])
        names = response.get("data", {}).get("clients", [])
        return {name for name in names if isinstance(name, str) and name.startswith(USERNAME_PREFIX)}

    async def admit_held_devices(self) -> int:
        """Enable the device logins the broker holds (written disabled by `broker config --hold-devices`): how many.

        Only ever called once an ingest worker's subscription is in place: Mosquitto 2.0 does not restore shared
        subscriptions at a restart, and a device let in before any worker subscribed again would have what it
        publishes acknowledged and dropped (README, known limits). A held device is refused at CONNECT instead and
        tries again later, its readings still its own."""
        admitted: set[str] = set()
        # Until a look-up finds none held: a login issued meanwhile is created held (`grant`) and let in here.
        for _ in range(_ADMIT_ROUNDS):
            held = await self._held()
            if not held:
                break
            # a login deleted meanwhile (revoked) is not found: nothing to let in
            await self._run([{"command": "enableClient", "username": name} for name in held], "Client not found")
            admitted.update(held)
        return len(admitted)

    async def _held(self) -> list[str]:
        """The device logins the broker holds (disabled: only the hold disables one; a revoked login is deleted)."""
        (listed,) = await self._run([{"command": "listClients", "verbose": True, "count": -1, "offset": 0}])
        return [
            client["username"]
            for client in listed.get("data", {}).get("clients", [])
            if isinstance(client, dict)
            and client.get("disabled") is True
            and str(client.get("username", "")).startswith(USERNAME_PREFIX)
        ]

    async def _run(self, commands: list[dict[str, Any]], tolerate: str | None = None) -> list[dict[str, Any]]:
        responses = await asyncio.to_thread(self._exchange, commands)
        for response in responses:
            error = response.get("error")
            if error and error != tolerate:
                raise BrokerUnavailable(f"the broker refused {response.get('command')}: {error}")
        return responses

    def _exchange(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Connect, send `commands`, return the plugin's responses (paho's network thread does the I/O)."""
        answers: queue.Queue[list[dict[str, Any]] | str] = queue.Queue()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"koprogo-admin-{uuid.uuid4().hex[:12]}", protocol=mqtt.MQTTv311
        )
        client.username_pw_set(self.endpoint.username, self.endpoint.password)
        if self.tls is not None:
            client.tls_set_context(self.tls)

        def connected(c: mqtt.Client, _u: object, _f: object, reason: Any, _p: object) -> None:
            if reason.is_failure:
                answers.put(f"login refused ({reason})")
            else:
                c.subscribe(RESPONSE_TOPIC, qos=1)

        def subscribed(c: mqtt.Client, _u: object, _m: object, reasons: list[Any], _p: object) -> None:
            if any(r.is_failure for r in reasons):
                answers.put("the admin login may not read the plugin's responses")
            else:
                c.publish(CONTROL_TOPIC, json.dumps({"commands": commands}), qos=1)

        def received(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
            answers.put(json.loads(message.payload).get("responses", []))

        client.on_connect, client.on_subscribe, client.on_message = connected, subscribed, received
        try:
            client.connect(self.endpoint.host, self.endpoint.port, keepalive=30)
        except (OSError, ssl.SSLError) as exc:
            raise BrokerUnavailable(f"cannot reach the MQTT broker at {self.endpoint}: {exc}") from exc
        client.loop_start()
        try:
            answer = answers.get(timeout=self.timeout)
        except queue.Empty:
            raise BrokerUnavailable(
                f"the MQTT broker at {self.endpoint} did not answer within {self.timeout:g} s"
            ) from None
        finally:
            client.disconnect()
            client.loop_stop()
        if isinstance(answer, str):
            raise BrokerUnavailable(f"MQTT broker at {self.endpoint}: {answer}")
        return answer
