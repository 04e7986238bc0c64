"""Device credentials: the MQTT login a device (or a gateway serving several sensors) publishes with.

A credential belongs to one organization and, optionally, one building: the broker lets it publish under
`koprogo/{organization}/#` (or `koprogo/{organization}/{building}/#`) and subscribe to nothing. Its password is
shown once, when it is issued or rotated, and stored only as a PBKDF2-SHA512 digest in the very form Mosquitto's
dynamic-security plugin keeps (salt, iterations, digest): the broker's configuration can always be rebuilt from
the database, and the embedded broker checks the same digest.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from uuid import UUID

from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.errors import InvalidValue

# Mosquitto's own count. The passwords are 32 random bytes, not words a person chose: no iteration count makes
# guessing 2^256 values feasible, while a high one would cost the broker CPU on every connection.
ITERATIONS = 101
_SALT_BYTES = 12
USERNAME_PREFIX = "dev-"  # device logins, told apart from the platform's own (admin, ingest) at the broker
INGEST_GROUP = "koprogo-ingest"  # the shared subscription group only ingest workers may join
ALL_TOPICS = "koprogo/#"  # every organization's: what ingestion subscribes to


@dataclass(frozen=True, slots=True)
class Digest:
    """A password's PBKDF2-HMAC-SHA512 digest, base64 encoded as Mosquitto stores it."""

    salt: str
    value: str
    iterations: int = ITERATIONS

    @classmethod
    def of(cls, password: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> Digest:
        salt = salt if salt is not None else os.urandom(_SALT_BYTES)
        value = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
        return cls(base64.b64encode(salt).decode(), base64.b64encode(value).decode(), iterations)

    def __str__(self) -> str:
        """Mosquitto's password-file notation: `$7$<iterations>$<salt>$<digest>`."""
        return f"$7${self.iterations}${self.salt}${self.value}"

    @classmethod
    def parse(cls, text: str) -> Digest:
        _, kind, iterations, salt, value = text.split("$")
        if kind != "7":
            raise ValueError(f"not a PBKDF2-SHA512 digest: ${kind}$...")
        return cls(salt, value, int(iterations))

    def matches(self, password: str) -> bool:
        other = Digest.of(password, base64.b64decode(self.salt), self.iterations)
        return hmac.compare_digest(other.value, self.value)


def new_password() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class DeviceCredential:
    organization_id: UUID
    name: str  # what the device is, for people: "Passerelle chaufferie", "Shelly Pro 3EM compteur général"
    username: str
    digest: Digest
    building_id: UUID | None = None  # None: any building of the organization
    id: UUID = field(default_factory=uuid.uuid4)
    created_at: datetime = field(default_factory=utcnow)
    rotated_at: datetime | None = None
    revoked_at: datetime | None = None

    def __post_init__(self) -> None:
        name = self.name.strip()
        if not name or len(name) > 200:
            raise InvalidValue("name: 1 to 200 characters")
        object.__setattr__(self, "name", name)

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def topic_filter(self) -> str:
        """Where the device may publish."""
        scope = self.organization_id if self.building_id is None else f"{self.organization_id}/{self.building_id}"
        return f"koprogo/{scope}/#"

    def may_publish(self, topic: str) -> bool:
        return self.active and topic.startswith(self.topic_filter[:-1]) and "\x00" not in topic

    def accepts(self, password: str) -> bool:
        return self.active and self.digest.matches(password)

    def rotated(self, at: datetime | None = None) -> tuple[DeviceCredential, str]:
        """The same login with a new password (the old one stops working), and that password."""
        password = new_password()
        return replace(self, digest=Digest.of(password), rotated_at=at or utcnow()), password

    def revoked(self, at: datetime | None = None) -> DeviceCredential:
        return replace(self, revoked_at=at or utcnow())


def issue(organization_id: UUID, name: str, building_id: UUID | None = None) -> tuple[DeviceCredential, str]:
    """A new credential and its password, which only this call ever sees."""
    password = new_password()
    username = USERNAME_PREFIX + secrets.token_hex(6)
    return DeviceCredential(organization_id, name, username, Digest.of(password), building_id), password
