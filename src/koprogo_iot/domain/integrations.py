"""An organization's LoRaWAN network server (ChirpStack, The Things Stack), whose MQTT broker the ingest workers
subscribe to directly: its devices need no bridge of the organization's own."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from urllib.parse import urlsplit
from uuid import UUID

from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.errors import InvalidValue
from koprogo_iot.domain.sensors import DeviceFormat


class IntegrationKind(StrEnum):
    CHIRPSTACK = "chirpstack"  # ChirpStack v4's MQTT integration
    TTN = "ttn"  # The Things Stack v3 MQTT server (cloud or on-premise)

    @property
    def device_format(self) -> DeviceFormat:
        return DeviceFormat(self.value)

    @property
    def default_topic(self) -> str:
        """Every uplink of every application the credentials can read."""
        return "application/+/device/+/event/up" if self is IntegrationKind.CHIRPSTACK else "v3/+/devices/+/up"


class IntegrationStatus(StrEnum):
    PENDING = "pending"  # no worker has connected yet
    CONNECTED = "connected"
    FAILING = "failing"  # connecting fails: see last_error
    DISABLED = "disabled"


_SCHEMES = {"mqtt": False, "tcp": False, "mqtts": True, "ssl": True}


@dataclass(frozen=True, slots=True)
class LnsIntegration:
    organization_id: UUID
    kind: IntegrationKind
    name: str
    broker_url: str  # mqtt://host:1883 or mqtts://host:8883; the credentials are given apart
    username: str | None = None
    password: str | None = None  # in memory only: stored encrypted, never shown
    topic_filter: str = ""  # "" means the kind's default
    ca_certificate: str | None = None  # PEM of a private CA for mqtts; None: the system's trusted CAs
    enabled: bool = True
    status: IntegrationStatus = IntegrationStatus.PENDING
    last_error: str | None = None
    last_message_at: datetime | None = None
    id: UUID = field(default_factory=uuid.uuid4)
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", IntegrationKind(self.kind))
        name = self.name.strip()
        if not name or len(name) > 200:
            raise InvalidValue("name: 1 to 200 characters")
        object.__setattr__(self, "name", name)
        parts = urlsplit(self.broker_url.strip())
        if parts.scheme not in _SCHEMES or not parts.hostname:
            raise InvalidValue(
                f"broker_url: expected mqtt://host[:port] or mqtts://host[:port], not {self.broker_url!r}"
            )
        if parts.username or parts.password:
            raise InvalidValue("broker_url: give the username and password apart, not in the URL (it is shown)")
        if parts.path not in ("", "/") or parts.query:
            raise InvalidValue("broker_url: only a scheme, a host and a port")
        object.__setattr__(self, "broker_url", self.broker_url.strip())
        topic = self.topic_filter.strip() or self.kind.default_topic
        if not _valid_filter(topic):
            raise InvalidValue(f"topic_filter: {topic!r} is not an MQTT topic filter")
        object.__setattr__(self, "topic_filter", topic)
        if self.ca_certificate is not None and "BEGIN CERTIFICATE" not in self.ca_certificate:
            raise InvalidValue("ca_certificate: a PEM certificate (-----BEGIN CERTIFICATE-----)")

    @property
    def tls(self) -> bool:
        return _SCHEMES[urlsplit(self.broker_url).scheme]

    @property
    def client_id(self) -> str:
        """The persistent session on the network server's broker: stable, whichever worker holds it."""
        return f"koprogo-{self.id}"


def _valid_filter(topic: str) -> bool:
    levels = topic.split("/")
    if not topic or len(topic) > 1024 or topic.startswith("$") or "\x00" in topic:
        return False
    for position, level in enumerate(levels):
        if "#" in level and (level != "#" or position != len(levels) - 1):
            return False
        if "+" in level and level != "+":
            return False
    return True
