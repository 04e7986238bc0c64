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

# Deliberately loose: real validation happens when a message is delivered; this only catches typos.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _require_text(value: str, name: str, max_length: int = 200) -> str:
    value = value.strip()
    if not value:
        raise InvalidValue(f"{name} cannot be empty")
    if len(value) > max_length:
        raise InvalidValue(f"{name} cannot be longer than {max_length} characters")
    return value


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

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", _require_text(self.name, "organization name"))


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

    def __post_init__(self) -> None:
        email = self.email.strip().lower()
        if not _EMAIL.match(email):
            raise InvalidValue(f"{self.email!r} is not an email address")
        object.__setattr__(self, "email", email)
        object.__setattr__(self, "full_name", _require_text(self.full_name, "full name"))
        object.__setattr__(self, "role", Role(self.role))
        object.__setattr__(self, "unit_ids", frozenset(self.unit_ids))
        if self.role is Role.OWNER and not self.unit_ids:
            raise InvalidValue("an owner must be linked to at least one unit")
        if self.role is not Role.OWNER and self.unit_ids:
            raise InvalidValue("only owners are linked to units")
