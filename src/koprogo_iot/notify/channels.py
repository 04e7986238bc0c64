"""Sending one message through apprise: a provider URL template, a recipient, a subject and a body.

Templates are apprise URLs with a `{to}` placeholder, e.g. `mailto://smtp.example.com?from=a@example.com&to={to}`,
`smseagle://token@gateway/{to}`, `ntfy://ntfy.example.com/{to}`. apprise's async API runs the provider's blocking
client in its own thread pool, so a slow SMTP server never blocks the event loop.
"""

from __future__ import annotations

import functools
import logging
import warnings
from typing import Protocol
from urllib.parse import quote

import apprise

from koprogo_iot.domain.errors import InvalidValue
from koprogo_iot.domain.notices import Channel

SEND_TIMEOUT = 30.0  # seconds for one message, connection included
# Addresses used to check that a template makes a valid apprise URL before it is stored.
_SAMPLE_ADDRESS = {Channel.EMAIL: "someone@example.org", Channel.SMS: "+32470123456", Channel.PUSH: "koprogo-test"}


def render(template: str, address: str) -> str:
    """The template with `{to}` replaced by the address, quoted so `@` or `+` cannot change the URL's meaning."""
    return template.replace("{to}", quote(address, safe=""))


@functools.cache
def _load_providers() -> None:
    """Load apprise's provider plugins once, before the first message (else the first send pays ~0.3 s for it).

    One of them imports the deprecated `imghdr` (through PGPy): that DeprecationWarning must not fail a send
    when warnings are errors (the tests run so).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        apprise.NotificationManager().load_modules()  # type: ignore[no-untyped-call]


def _apprise() -> apprise.Apprise:
    _load_providers()
    # Memory only: apprise must not write state files next to the application.
    return apprise.Apprise(asset=apprise.AppriseAsset(storage_mode="memory"))


def check_template(channel: Channel, template: str) -> str:
    """The template, if apprise understands it; InvalidValue otherwise (checked when an organization saves it)."""
    template = template.strip()
    if not _apprise().add(render(template, _SAMPLE_ADDRESS[channel])):
        raise InvalidValue(f"{channel.value}: not a URL apprise can send to (see https://appriseit.com/services/)")
    return template


class Sender(Protocol):
    async def send(self, url: str, subject: str, body: str) -> str | None:
        """Deliver one message; None when delivered, else why not (kept as the outbox row's last error)."""
        ...


class AppriseSender:
    def __init__(self, timeout: float = SEND_TIMEOUT) -> None:
        self.timeout = timeout

    async def send(self, url: str, subject: str, body: str) -> str | None:
        sender = _apprise()
        if not sender.add(url):
            return "invalid provider URL"
        with await sender.async_notify(
            body=body,
            title=subject,
            body_format=apprise.NotifyFormat.TEXT,
            timeout=self.timeout,
            log_level=logging.WARNING,
        ) as result:
            if result:
                return None
            # What apprise logged at WARNING or above (the capture level asked for): why it failed.
            problems = [entry.message for entry in result.logs()]
            return "; ".join(problems) or f"not delivered ({result.status.name.lower()})"
