"""Errors the domain and its services raise; the API maps them to status codes in one place.

KoproGoError
 ├── InvalidValue          a value breaks a domain rule (HTTP 422)
 ├── NotFound              no such entity in the caller's organization (HTTP 404)
 ├── Forbidden             the caller's role may not do this (HTTP 403)
 ├── Conflict              the entity would duplicate an existing one (HTTP 409)
 ├── AuthenticationFailed  unknown user, wrong password or bad token (HTTP 401)
 ├── StorageUnavailable    the database cannot be reached right now (HTTP 503)
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


class StorageUnavailable(KoproGoError):
    """The storage backend failed for a reason outside the request (connection lost, server down)."""


class BrokerUnavailable(KoproGoError):
    """The MQTT broker could not apply a change of device credentials (unreachable, not configured, refused)."""
