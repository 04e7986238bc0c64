"""An in-process MQTT broker (amqtt) for the embedded mode, enforcing the rules the shipped Mosquitto does.

amqtt measured ~800-2,000 QoS 1 messages/s here: plenty for a building, not for load (use Mosquitto).
It does not redeliver unacknowledged messages after a reconnect and waits at most 5 s for an ack;
the production guarantees (nothing lost across a broker restart) need Mosquitto.

No anonymous client: devices log in with their credentials (read from the database at each connection, so a
credential issued a second ago works), publish only under their topic filter and subscribe to nothing; the
ingest worker logs in with a password made for this process and is the only one to subscribe.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from koprogo_iot.broker.dynsec import Login
from koprogo_iot.domain.credentials import ALL_TOPICS, DeviceCredential
from koprogo_iot.mqtt_url import MqttEndpoint
from koprogo_iot.storage.ports import CredentialRepository

log = logging.getLogger(__name__)
INGEST_USERNAME = "koprogo-ingest"


class Guard:
    """Who may log in and where: device credentials from the database, and this process's ingest login."""

    def __init__(self, credentials: CredentialRepository, ingest: Login) -> None:
        self.credentials = credentials
        self.ingest = ingest
        self.devices: dict[str, DeviceCredential] = {}  # logged-in devices' credentials, by username

    async def login(self, username: str | None, password: str | None) -> bool:
        if not username or password is None:
            return False
        if username == self.ingest.username:
            return secrets.compare_digest(password, self.ingest.password)
        credential = await self.credentials.by_username(username)
        if credential is None or not credential.accepts(password):
            log.info("refused MQTT login %r", username)
            return False
        self.devices[username] = credential
        return True

    def allows(self, username: str | None, topic: str, action: Action) -> bool:
        if action is Action.RECEIVE:
            return True  # what a client subscribed to, itself checked
        if username == self.ingest.username:
            return action is Action.SUBSCRIBE and topic == ALL_TOPICS
        credential = self.devices.get(username or "")
        return action is Action.PUBLISH and credential is not None and credential.may_publish(topic)


@dataclass
class _GuardConfig:
    guard: Any = None


class LoginPlugin(BaseAuthPlugin):  # type: ignore[misc]  # amqtt has no type hints
    Config = _GuardConfig

    async def authenticate(self, *, session: Session) -> bool | None:
        guard: Guard = self.config.guard
        return await guard.login(session.username, session.password)


class TopicPlugin(BaseTopicPlugin):  # type: ignore[misc]
    Config = _GuardConfig

    async def topic_filtering(
        self, *, session: Session | None = None, topic: str | None = None, action: Action | None = None
    ) -> bool | None:
        guard: Guard = self.config.guard
        if session is None or topic is None or action is None:
            return False
        allowed = guard.allows(session.username, topic, action)
        if not allowed:
            log.info("refused %s of %r by %r", action.value, topic, session.username)
        return allowed


class EmbeddedBroker:
    """`async with EmbeddedBroker(host, port, credentials):` serves MQTT on host:port inside the running loop.

    `endpoint` carries the ingest worker's login. As `BrokerAccounts`, it needs nothing to grant (it reads the
    database at each login) and disconnects the clients of a login whose password changed or that was removed.
    """

    def __init__(self, host: str, port: int, credentials: CredentialRepository) -> None:
        ingest = Login(INGEST_USERNAME, secrets.token_urlsafe(24))
        self.endpoint = MqttEndpoint(host, port, ingest.username, ingest.password)
        self.guard = Guard(credentials, ingest)
        # Listing the plugins replaces amqtt's defaults ($SYS topics, packet loggers, anonymous logins).
        plugins = {f"{__name__}.{p.__name__}": {"guard": self.guard} for p in (LoginPlugin, TopicPlugin)}
        self._config = {"listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}}, "plugins": plugins}
        self._broker: Broker | None = None

    async def __aenter__(self) -> EmbeddedBroker:
        for name in ("amqtt", "transitions"):  # both log every packet at INFO
            logging.getLogger(name).setLevel(logging.WARNING)
        self._broker = Broker(self._config)
        try:
            await self._broker.start()
        except Exception as exc:
            raise OSError(f"cannot start the MQTT broker on {self.endpoint}: {exc}") from exc
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._broker is not None:
            await self._broker.shutdown()

    async def grant(self, credential: DeviceCredential, password: str) -> None:
        return None  # the next login reads it from the database

    async def change_password(self, credential: DeviceCredential, password: str) -> None:
        await self.remove(credential.username)

    async def remove(self, username: str) -> None:
        self.guard.devices.pop(username, None)
        if self._broker is None:
            return
        for session, handler in list(self._broker.sessions.values()):
            if session.username == username and session.transitions.is_connected():
                log.info("disconnecting MQTT client %s of login %s", session.client_id, username)
                await handler.handle_connection_closed()
                await handler.stop()

    async def logins(self) -> set[str] | None:
        return None
