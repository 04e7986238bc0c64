"""Logging in, tokens, and turning a token back into a scoped `Principal`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from koprogo_iot.domain.access import Principal
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.errors import AuthenticationFailed, NotFound
from koprogo_iot.domain.tenancy import User
from koprogo_iot.storage.ports import TenancyRepository

_hasher = PasswordHasher()
# Verifying against this when the email is unknown keeps the response time from revealing which emails exist.
_DUMMY_HASH = _hasher.hash("not-a-real-password")
MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int  # seconds
    user: User


class Accounts:
    def __init__(self, tenancy: TenancyRepository, secret: str, token_ttl: timedelta) -> None:
        self.tenancy = tenancy
        self._secret = secret
        self._ttl = token_ttl

    async def login(self, email: str, password: str) -> IssuedToken:
        user = await self.tenancy.find_user_by_email(email)
        if user is None:
            _password_matches(_DUMMY_HASH, password)
            raise AuthenticationFailed("wrong email or password")
        if not _password_matches(user.password_hash, password):
            raise AuthenticationFailed("wrong email or password")
        now = utcnow()
        claims = {
            "sub": str(user.id),
            "org": str(user.organization_id),
            "role": user.role.value,
            "iat": int(now.timestamp()),
            "exp": int((now + self._ttl).timestamp()),
        }
        token = jwt.encode(claims, self._secret, algorithm="HS256")
        return IssuedToken(token, int(self._ttl.total_seconds()), user)

    async def principal(self, token: str) -> Principal:
        """The caller behind a bearer token; the user is read again so a deleted user loses access."""
        try:
            claims = jwt.decode(token, self._secret, algorithms=["HS256"], options={"require": ["exp", "sub", "org"]})
            user = await self.tenancy.get_user(UUID(claims["org"]), UUID(claims["sub"]))
        except jwt.ExpiredSignatureError:
            raise AuthenticationFailed("token expired") from None
        except (jwt.InvalidTokenError, ValueError, NotFound):
            raise AuthenticationFailed("invalid token") from None
        if not user.unit_ids:  # only owners have units; the others need no look-up on every request
            return Principal.of(user)
        buildings = {
            u.building_id for u in await self.tenancy.list_units(user.organization_id) if u.id in user.unit_ids
        }
        return Principal.of(user, buildings)

    async def me(self, principal: Principal) -> User:
        return await self.tenancy.get_user(principal.organization_id, principal.user_id)
