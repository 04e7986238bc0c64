"""Errors the domain and its services raise; the API maps them to status codes in one place.

KoproGoError
 ├── InvalidValue          a value breaks a domain rule (HTTP 422)
 ├── NotFound              no such entity in the caller's organization (HTTP 404)
 ├── Forbidden             the caller's role may not do this (HTTP 403)
 ├── Conflict              the entity would duplicate an existing one (HTTP 409)
 ├── AuthenticationFailed  unknown user, wrong password or bad token (HTTP 401)
 │    ├── TokenExpired     the token (or the session it was refreshed from) is too old: log in again (HTTP 401)
 │    └── AccountDeactivated  a manager deactivated the account (HTTP 401)
 ├── TooManyAttempts       too many failed logins for an account or an address: wait (HTTP 429)
 ├── StorageUnavailable    the database cannot be reached right now: retry later (HTTP 503)
 │    ├── StorageContention  the transaction lost a deadlock or serialization race: retry it at once (HTTP 503)
 │    └── StorageFault       the database refuses everything it is given (a migration missing, a bug): retry later
 ├── StorageRefused        the database refuses for a reason waiting does not cure (wrong login, no database)
 └── BrokerUnavailable     the MQTT broker's administration cannot be reached or refused (HTTP 503)
"""


class KoproGoError(Exception):
    """Base of every error KoproGo raises on purpose."""


class InvalidValue(KoproGoError):
    """A value breaks a domain rule (empty sensor id, interval out of range, ...)."""


class NotFound(KoproGoError):
    """The entity does not exist, or belongs to another organization: both look the same to the caller."""


class Forbidden(KoproGoError):
    """The caller is known but their role does not allow the action."""


class Conflict(KoproGoError):
    """Creating or changing the entity would duplicate an existing one."""


class AuthenticationFailed(KoproGoError):
    """The credentials or the token are not valid."""


class TokenExpired(AuthenticationFailed):
    """The token is past its expiry, or its session is past the longest a session may be refreshed."""


class AccountDeactivated(AuthenticationFailed):
    """A manager deactivated the account: its logins and tokens are refused."""


class TooManyAttempts(KoproGoError):
    """Logins are refused for a while after too many failures; `retry_after` is in whole seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StorageUnavailable(KoproGoError):
    """The storage backend failed for a reason outside the request (connection lost, server down)."""


class StorageContention(StorageUnavailable):
    """The transaction was rolled back to break a deadlock or a serialization conflict with another writer."""


class StorageFault(StorageUnavailable):
    """The database refused each message of a batch on its own: no poison message but a fault of the schema or of
    the code (a migration not applied, a bug). Retried like an outage, so that no reading is lost meanwhile."""


class StorageRefused(KoproGoError):
    """The database refused us for a reason that waiting does not cure (wrong login, unknown database)."""


class BrokerUnavailable(KoproGoError):
    """The MQTT broker could not apply a change of device credentials (unreachable, not configured, refused)."""
