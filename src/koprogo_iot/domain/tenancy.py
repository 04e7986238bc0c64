"""Organizations, buildings, units and the people who use them."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.errors import InvalidValue
from koprogo_iot.domain.retention import check_retention_months

# Deliberately loose: real validation happens when a message is delivered; this only catches typos.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# International or national numbers as people type them: "+32 470 12.34.56", "0470/123456".
_PHONE = re.compile(r"^\+?[0-9][0-9 ./()-]{5,24}$")
_PHONE_SEPARATORS = re.compile(r"[ ./()-]")
# A push topic is a path segment of the push server's URL (ntfy: letters, digits, `_` and `-`).
_PUSH_TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _require_text(value: str, name: str, max_length: int = 200) -> str:
    value = value.strip()
    if not value:
        raise InvalidValue(f"{name} cannot be empty")
    if len(value) > max_length:
        raise InvalidValue(f"{name} cannot be longer than {max_length} characters")
    return value


def check_email(value: str) -> str:
    email = value.strip().lower()
    if not _EMAIL.match(email):
        raise InvalidValue(f"{value!r} is not an email address")
    return email


def check_phone(value: str | None) -> str | None:
    """The number without separators ("+32470123456"), or None when empty; SMS gateways want digits only."""
    if value is None or not value.strip():
        return None
    if not _PHONE.match(value.strip()):
        raise InvalidValue(f"{value!r} is not a phone number")
    return _PHONE_SEPARATORS.sub("", value.strip())


def check_push_topic(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    if not _PUSH_TOPIC.match(value.strip()):
        raise InvalidValue(f"{value!r} is not a push topic: 1 to 64 letters, digits, '_' or '-'")
    return value.strip()


class Channel(StrEnum):
    """How an alert reaches a person: at their email (the login), phone, or push topic."""

    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"


class Role(StrEnum):
    SUPERADMIN = "superadmin"  # operates the platform, creates organizations
    SYNDIC = "syndic"  # manages the buildings of one organization
    OWNER = "owner"  # co-owner: reads their units and their building's common meters

    @property
    def manages(self) -> bool:
        """Whether the role may provision and configure (everything but reading)."""
        return self is not Role.OWNER


@dataclass(frozen=True, slots=True)
class Organization:
    name: str
    id: UUID = field(default_factory=uuid.uuid4)
    created_at: datetime = field(default_factory=utcnow)
    raw_retention_months: int | None = None  # None: the platform's (KOPROGO_RAW_RETENTION_MONTHS)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", _require_text(self.name, "organization name"))
        if self.raw_retention_months is not None:
            check_retention_months(self.raw_retention_months)


@dataclass(frozen=True, slots=True)
class Building:
    organization_id: UUID
    name: str
    address: str = ""
    id: UUID = field(default_factory=uuid.uuid4)
    created_at: datetime = field(default_factory=utcnow)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", _require_text(self.name, "building name"))


@dataclass(frozen=True, slots=True)
class Unit:
    """An apartment (lot) of a building."""

    organization_id: UUID
    building_id: UUID
    name: str
    floor: int | None = None
    id: UUID = field(default_factory=uuid.uuid4)
    created_at: datetime = field(default_factory=utcnow)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", _require_text(self.name, "unit name"))


@dataclass(frozen=True, slots=True)
class User:
    organization_id: UUID
    email: str
    full_name: str
    role: Role
    password_hash: str
    unit_ids: frozenset[UUID] = frozenset()
    id: UUID = field(default_factory=uuid.uuid4)
    created_at: datetime = field(default_factory=utcnow)
    # Where alerts reach the user besides their email (the login): SMS and push notifications.
    phone: str | None = None
    push_topic: str | None = None
    # The channels on which the user does not want alerts through the routes naming their role (their opt-out).
    muted_channels: frozenset[Channel] = frozenset()
    # Tokens from a login before it are refused: changing one's password closes one's other sessions.
    password_changed_at: datetime | None = None
    # Removed from the organization by a manager (an owner who sold their flat): kept, so that what they did still
    # names them, but refused at login and by their tokens, and told of no alert.
    deactivated_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.deactivated_at is None

    def __post_init__(self) -> None:
        object.__setattr__(self, "email", check_email(self.email))
        object.__setattr__(self, "muted_channels", frozenset(Channel(c) for c in self.muted_channels))
        object.__setattr__(self, "phone", check_phone(self.phone))
        object.__setattr__(self, "push_topic", check_push_topic(self.push_topic))
        object.__setattr__(self, "full_name", _require_text(self.full_name, "full name"))
        object.__setattr__(self, "role", Role(self.role))
        object.__setattr__(self, "unit_ids", frozenset(self.unit_ids))
        if self.role is Role.OWNER and not self.unit_ids:
            raise InvalidValue("an owner must be linked to at least one unit")
        if self.role is not Role.OWNER and self.unit_ids:
            raise InvalidValue("only owners are linked to units")
