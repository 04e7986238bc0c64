"""Logging in, tokens, and turning a token back into a scoped `Principal`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from koprogo_iot.domain.access import Principal
from koprogo_iot.domain.audit import AuditAction, AuditEntity
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.errors import (
    AccountDeactivated,
    AuthenticationFailed,
    InvalidValue,
    NotFound,
    TokenExpired,
    TooManyAttempts,
)
from koprogo_iot.domain.tenancy import User
from koprogo_iot.domain.throttle import FailureThrottle
from koprogo_iot.services.audit import AuditLog
from koprogo_iot.storage.ports import TenancyRepository

_hasher = PasswordHasher()
# Verifying against this when the email is unknown keeps the response time from revealing which emails exist.
_DUMMY_HASH = _hasher.hash("not-a-real-password")
MIN_PASSWORD_LENGTH = 8
# Password guessing: 5 failures per account, or 30 per client address (an office behind one NAT has many users),
# within 15 minutes; then refused until the oldest failure is 15 minutes old (OWASP's authentication advice).
ACCOUNT_FAILURES, ADDRESS_FAILURES, FAILURE_WINDOW = 5, 30, timedelta(minutes=15)
SESSION_MAX = timedelta(days=7)  # how long after a login its tokens may still be refreshed


def change_instant(now: datetime) -> datetime:
    """When a password change made `now` counts from: in whole milliseconds, as a token's login (`auth_ms`), so that
    the token issued with the change is not older than it, and one from a login the moment before is."""
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _logged_in(claims: dict[str, Any]) -> datetime:
    """The login a token comes from (a refreshed token keeps its login's time)."""
    return datetime.fromtimestamp(claims.get("auth_time", claims.get("iat", 0)), UTC)


def _ms(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)


def _login_ms(claims: dict[str, Any]) -> int:
    """The login's instant in milliseconds (`auth_ms`; a token without it: its whole second)."""
    return int(claims.get("auth_ms", 1000 * claims.get("auth_time", claims.get("iat", 0))))


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int  # seconds
    user: User


class Accounts:
    def __init__(
        self,
        tenancy: TenancyRepository,
        secret: str,
        token_ttl: timedelta,
        audit: AuditLog,
        session_max: timedelta = SESSION_MAX,
    ) -> None:
        self.tenancy = tenancy
        self.audit = audit
        self._secret = secret
        self._ttl = token_ttl
        self._session_max = session_max
        self._accounts = FailureThrottle(ACCOUNT_FAILURES, FAILURE_WINDOW)
        self._addresses = FailureThrottle(ADDRESS_FAILURES, FAILURE_WINDOW)

    async def login(self, email: str, password: str, client: str | None = None) -> IssuedToken:
        """A token for the user; refused (TooManyAttempts) without trying while the account or the client's
        address is over its failures, so that guessing stops even with the right password."""
        now = utcnow()
        account = email.strip().lower()
        wait = max(self._accounts.retry_after(account, now), self._addresses.retry_after(client, now) if client else 0)
        if wait:
            raise TooManyAttempts(f"too many failed logins: try again in {wait} s", wait)
        user = await self.tenancy.find_user_by_email(email)
        if user is None or not _password_matches(user.password_hash, password):
            if user is None:
                _password_matches(_DUMMY_HASH, password)
            self._accounts.failed(account, now)
            if client:
                self._addresses.failed(client, now)
            raise AuthenticationFailed("wrong email or password")
        self._accounts.succeeded(account)
        if not user.active:  # said only to whom knows the password
            raise AccountDeactivated("this account was deactivated by the syndic")
        return self._issue(user, now, now)

    async def change_password(self, principal: Principal, current: str, new: str) -> IssuedToken:
        """Set the caller's password, given the current one; their other sessions end (their tokens come from a
        login before the change) and this one goes on with the token returned. A wrong current password counts
        as a failed login (and is refused with 422, not 401: the caller's session is still valid)."""
        now = utcnow()
        user = await self.tenancy.get_user(principal.organization_id, principal.user_id)
        wait = self._accounts.retry_after(user.email, now)
        if wait:
            raise TooManyAttempts(f"too many failed attempts: try again in {wait} s", wait)
        if not _password_matches(user.password_hash, current):
            self._accounts.failed(user.email, now)
            raise InvalidValue("current_password: wrong password")
        if len(new) < MIN_PASSWORD_LENGTH:
            raise InvalidValue(f"new_password: at least {MIN_PASSWORD_LENGTH} characters")
        if new == current:
            raise InvalidValue("new_password: the same as the current one")
        changed_at = change_instant(now)
        user = await self.tenancy.set_password(user.organization_id, user.id, hash_password(new), changed_at)
        await self.audit.record(principal, AuditEntity.USER, user.id, AuditAction.CHANGED, {"password": "changed"})
        return self._issue(user, changed_at, now)

    async def refresh(self, token: str) -> IssuedToken:
        """A new token for a valid one, within `session_max` of the login it comes from (then: log in again)."""
        claims = self._claims(token)
        user = await self._user(claims)
        now = utcnow()
        logged_in = _logged_in(claims)
        if now - logged_in > self._session_max:
            raise TokenExpired("the session is too old to be refreshed: log in again")
        return self._issue(user, logged_in, now)

    def _issue(self, user: User, logged_in: datetime, now: datetime) -> IssuedToken:
        claims = {
            "sub": str(user.id),
            "org": str(user.organization_id),
            "role": user.role.value,
            "iat": int(now.timestamp()),
            "auth_time": int(logged_in.timestamp()),  # the login a refreshed token comes from
            "auth_ms": _ms(logged_in),  # the same to the millisecond: a password change ends the logins before it
            "exp": int((now + self._ttl).timestamp()),
        }
        token = jwt.encode(claims, self._secret, algorithm="HS256")
        return IssuedToken(token, int(self._ttl.total_seconds()), user)

    def _claims(self, token: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token, self._secret, algorithms=["HS256"], options={"require": ["exp", "sub", "org"]}
            )
        except jwt.ExpiredSignatureError:
            raise TokenExpired("token expired: log in again") from None
        except jwt.InvalidTokenError:
            raise AuthenticationFailed("invalid token") from None
        return claims

    async def _user(self, claims: dict[str, Any]) -> User:
        """The user is read again so a deactivated user loses access, and a changed password ends older sessions."""
        try:
            user = await self.tenancy.get_user(UUID(claims["org"]), UUID(claims["sub"]))
        except (ValueError, NotFound):
            raise AuthenticationFailed("invalid token") from None
        if not user.active:
            raise AccountDeactivated("this account was deactivated by the syndic")
        if user.password_changed_at is not None and _login_ms(claims) < _ms(user.password_changed_at):
            raise TokenExpired("the password was changed since this login: log in again")
        return user

    async def principal(self, token: str) -> Principal:
        """The caller behind a bearer token."""
        user = await self._user(self._claims(token))
        if not user.unit_ids:  # only owners have units; the others need no look-up on every request
            return Principal.of(user)
        buildings = {
            u.building_id for u in await self.tenancy.list_units(user.organization_id) if u.id in user.unit_ids
        }
        return Principal.of(user, buildings)

    async def me(self, principal: Principal) -> User:
        return await self.tenancy.get_user(principal.organization_id, principal.user_id)
