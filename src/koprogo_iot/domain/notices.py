"""Telling people about alerts: when, whom, on which channel, and what the message says.

Pure: the notifier (koprogo_iot.notify) reads alerts, routes and users from the database and hands them here.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID
from zoneinfo import ZoneInfo

from koprogo_iot.domain.alerts import AlertSeverity, AlertType, IoTAlert
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.consumption import DEFAULT_ZONE
from koprogo_iot.domain.errors import InvalidValue
from koprogo_iot.domain.sensors import IoTSensor
from koprogo_iot.domain.tenancy import Building, Role, Unit, User, check_email, check_phone, check_push_topic
from koprogo_iot.domain.tenancy import Channel as Channel  # a person's channels are theirs (User.muted_channels)

Purpose = Literal["opened", "escalated", "reminder"]

DEFAULT_REMINDER = timedelta(hours=4)  # the settings table's default too
MIN_REMINDER = timedelta(minutes=1)

# A provider that keeps failing is tried 8 times over about two hours (30 s, 1 min, 2 min ... 1 h), then the
# message is given up ("failed") and shows in the outbox listing for an operator.
MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=1)


def backoff(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failed try before the next one."""
    if attempts < 1:
        return timedelta(0)
    return min(FIRST_RETRY * (1 << min(attempts - 1, 20)), LONGEST_RETRY)


def notice_purpose(alert: IoTAlert, now: datetime, reminder_interval: timedelta) -> Purpose | None:
    """Why people must be told about `alert` now, or None.

    Never told: "opened" (even if it cleared meanwhile: a burst pipe that stopped is still news). Active and more
    severe than what they were told: "escalated". Active, unacknowledged, repeated since the last notice, and that
    notice older than the reminder interval: "reminder". Everything else (a repeat within the interval, an
    acknowledged or cleared alert) stays quiet: an alert that keeps repeating must not become a storm.
    """
    if alert.notified_at is None:
        return "opened"
    if alert.cleared_at is not None:
        return None
    told = alert.notified_severity or AlertSeverity.INFO
    if alert.severity.rank > told.rank:
        return "escalated"
    if alert.acknowledged:
        return None
    last = alert.last_triggered_at or alert.triggered_at
    if last > alert.notified_at and alert.notified_at <= now - reminder_interval:
        return "reminder"
    return None


# --- who is told


ChannelsBySeverity = Mapping[AlertSeverity, frozenset[Channel]]
# What a new route sends unless told otherwise: nothing for information, email for warnings, everything for
# critical alerts (somebody has to act).
DEFAULT_CHANNELS: ChannelsBySeverity = {
    AlertSeverity.INFO: frozenset(),
    AlertSeverity.WARNING: frozenset({Channel.EMAIL}),
    AlertSeverity.CRITICAL: frozenset({Channel.EMAIL, Channel.SMS, Channel.PUSH}),
}


def parse_channels(doc: Mapping[str, Iterable[str]]) -> ChannelsBySeverity:
    """{"warning": ["email"], "critical": ["email", "sms"]}: severities not given send nothing."""
    try:
        parsed = {
            AlertSeverity(severity): frozenset(Channel(c) for c in channels) for severity, channels in doc.items()
        }
    except ValueError as exc:
        raise InvalidValue(f"channels: {exc}") from None
    return {severity: parsed.get(severity, frozenset()) for severity in AlertSeverity}


def channels_document(channels: ChannelsBySeverity) -> dict[str, list[str]]:
    """The JSON form stored in `iot_notification_routes.channels`, in a stable order."""
    return {severity.value: sorted(c.value for c in channels.get(severity, ())) for severity in AlertSeverity}


@dataclass(frozen=True, slots=True)
class NotificationRoute:
    """Who hears about an organization's (or one building's) alerts: the users of a role, or one contact."""

    organization_id: UUID
    channels: ChannelsBySeverity = field(default_factory=lambda: dict(DEFAULT_CHANNELS))
    building_id: UUID | None = None  # None: every building of the organization
    role: Role | None = None  # owners: only those owning the alert's unit
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    push_topic: str | None = None
    id: UUID = field(default_factory=uuid.uuid4)
    created_at: datetime = field(default_factory=utcnow)

    def __post_init__(self) -> None:
        object.__setattr__(self, "email", None if not self.email else check_email(self.email))
        object.__setattr__(self, "phone", check_phone(self.phone))
        object.__setattr__(self, "push_topic", check_push_topic(self.push_topic))
        object.__setattr__(self, "name", (self.name or "").strip() or None)
        has_contact = any((self.email, self.phone, self.push_topic))
        if self.role is not None:
            object.__setattr__(self, "role", Role(self.role))
            if self.role not in (Role.SYNDIC, Role.OWNER):
                raise InvalidValue("a route's role is syndic or owner")
            if has_contact:
                raise InvalidValue("a route names a role or a contact, not both")
        elif not has_contact:
            raise InvalidValue("a route needs a role, or an email, phone or push topic")
        object.__setattr__(self, "channels", parse_channels(channels_document(self.channels)))

    def covers(self, alert: IoTAlert) -> bool:
        return self.organization_id == alert.organization_id and self.building_id in (None, alert.building_id)


@dataclass(frozen=True, slots=True)
class Recipient:
    channel: Channel
    address: str  # email address, phone number or push topic


def _addresses(
    email: str | None, phone: str | None, push_topic: str | None, muted: frozenset[Channel] = frozenset()
) -> dict[Channel, str | None]:
    found = {Channel.EMAIL: email, Channel.SMS: phone, Channel.PUSH: push_topic}
    return {channel: None if channel in muted else address for channel, address in found.items()}


def recipients(alert: IoTAlert, routes: Iterable[NotificationRoute], users: Iterable[User]) -> list[Recipient]:
    """Every (channel, address) to tell about `alert`, once each, in route order.

    A role route reaches the organization's active users of that role that have an address on the channel and
    have not muted it; for owners only those owning the alert's unit (a common meter's alert reaches no owner
    through a role route). A route naming a contact reaches it whatever any user muted: the syndic chose that one.
    """
    people = [u for u in users if u.organization_id == alert.organization_id and u.active]
    found: dict[Recipient, None] = {}  # an ordered set
    for route in routes:
        if not route.covers(alert):
            continue
        channels = route.channels.get(alert.severity, frozenset())
        if not channels:
            continue
        if route.role is None:
            contacts = [_addresses(route.email, route.phone, route.push_topic)]
        else:
            chosen = [u for u in people if u.role is route.role]
            if route.role is Role.OWNER:
                chosen = [u for u in chosen if alert.unit_id is not None and alert.unit_id in u.unit_ids]
            contacts = [_addresses(u.email, u.phone, u.push_topic, u.muted_channels) for u in chosen]
        for contact in contacts:
            for channel in sorted(channels):
                address = contact[channel]
                if address:
                    found[Recipient(channel, address)] = None
    return list(found)


# --- the organization's providers and the outbox


@dataclass(frozen=True, slots=True)
class NotificationSettings:
    """An organization's providers (apprise URL templates with `{to}`; None: the platform's) and reminder pace."""

    organization_id: UUID
    email_url: str | None = None
    sms_url: str | None = None
    push_url: str | None = None
    reminder_interval: timedelta | None = None  # None: never configured, the platform's default applies
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.reminder_interval is not None and self.reminder_interval < MIN_REMINDER:
            raise InvalidValue(f"the reminder interval must be at least {MIN_REMINDER.total_seconds():.0f} s")

    def url(self, channel: Channel) -> str | None:
        return {Channel.EMAIL: self.email_url, Channel.SMS: self.sms_url, Channel.PUSH: self.push_url}[channel]

    def masked(self) -> NotificationSettings:
        """The settings as people may read them back: provider URLs with their secrets masked."""
        return replace(
            self,
            email_url=masked_url(self.email_url),
            sms_url=masked_url(self.sms_url),
            push_url=masked_url(self.push_url),
        )


MASK = "****"
# Query parameters apprise providers take secrets in (mailtos `pass`, ntfy `token`, API keys...).
_SECRET_PARAMETER = re.compile(r"(pass|password|token|secret|key|apikey|auth|sid)$", re.I)
# A host or path segment that is a credential rather than a name: a long run of letters, digits, `_`, `-` or
# `:` without a dot (Telegram bot tokens, Discord webhook tokens, SMSEagle access tokens).
_TOKEN = re.compile(r"^[A-Za-z0-9_:-]{16,}$")


def masked_url(url: str | None) -> str | None:
    """`url` with what may be a credential replaced by `****`: the password of `user:password@`, a lone
    `token@` user, secret-looking query values and token-like host or path segments; `{to}` is kept."""
    if url is None:
        return None
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{f'{user}:{MASK}' if has_password else MASK}@{MASK if _TOKEN.match(host) else host}"
    elif _TOKEN.match(netloc):
        netloc = MASK
    path = "/".join(MASK if _TOKEN.match(segment) else segment for segment in parts.path.split("/"))
    query = "&".join(
        f"{name}={MASK}" if _SECRET_PARAMETER.search(name) else f"{name}{sep}{value}"
        for name, sep, value in (item.partition("=") for item in parts.query.split("&") if item)
    )
    return urlunsplit((parts.scheme, netloc, path, query, parts.fragment))


Status = Literal["pending", "sent", "failed"]


@dataclass(frozen=True, slots=True)
class Notification:
    """One message to one address on one channel: a row of the outbox."""

    organization_id: UUID
    alert_id: UUID
    channel: Channel
    recipient: str
    purpose: Purpose
    subject: str
    body: str
    status: Status = "pending"
    attempts: int = 0
    next_attempt_at: datetime = field(default_factory=utcnow)
    last_error: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    sent_at: datetime | None = None
    id: UUID = field(default_factory=uuid.uuid4)


@dataclass(frozen=True, slots=True)
class Draft:
    """A message the planner is to write; with `error` it is written as failed at once (e.g. no provider)."""

    channel: Channel
    recipient: str
    subject: str
    body: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class AlertContext:
    """What the notice about an alert is made of, read in the transaction that claimed it."""

    alert: IoTAlert
    purpose: Purpose
    sensor: IoTSensor
    building: Building
    unit: Unit | None
    routes: list[NotificationRoute]  # the organization's, every building
    users: list[User]  # the organization's
    settings: NotificationSettings


Drafter = Callable[[AlertContext], Sequence[Draft]]


# --- what they are told


@dataclass(frozen=True, slots=True)
class Notice:
    subject: str
    body: str


_PURPOSE_PREFIX: dict[str, str] = {"opened": "", "escalated": "Escalated: ", "reminder": "Reminder: "}


def _quantity(value: float, unit: str) -> str:
    return f"{value:g} {unit}".strip()


def _label(alert_type: AlertType) -> str:
    return alert_type.value.replace("_", " ").capitalize()


def alert_link(public_url: str, alert_id: UUID) -> str:
    return f"{public_url.rstrip('/')}/alerts/{alert_id}"


def compose(
    alert: IoTAlert,
    sensor: IoTSensor,
    building: Building,
    unit: Unit | None,
    public_url: str,
    purpose: Purpose = "opened",
    zone: str = DEFAULT_ZONE,
) -> Notice:
    """The message about `alert`: what, where, how bad, when, and where to act (the link)."""
    tz = ZoneInfo(zone)

    def when(moment: datetime) -> str:
        return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")

    place = unit.name if unit is not None else "common"
    severity = alert.severity.value.capitalize()
    # A battery alert's value is the battery level, a balance alert's the unexplained share: not a reading of the
    # sensor's quantity.
    percent = alert.alert_type in (AlertType.LOW_BATTERY, AlertType.BUILDING_BALANCE)
    unit_of_measure = "%" if percent else sensor.unit_of_measure
    subject = (
        f"{_PURPOSE_PREFIX[purpose]}{severity}: {_label(alert.alert_type).lower()} on {sensor.sensor_id} "
        f"({building.name}, {place})"
    )
    last = alert.last_triggered_at or alert.triggered_at
    lines = [
        f"{severity} alert: {_label(alert.alert_type).lower()}",
        "",
        f"Sensor: {sensor.sensor_id} ({sensor.sensor_type.value.replace('_', ' ')}, {sensor.manufacturer} "
        f"{sensor.model})",
        f"Location: {building.name}, {place}, {sensor.location}",
    ]
    if alert.reading_value is not None:
        lines.append(f"Value: {_quantity(alert.reading_value, unit_of_measure)}")
    if alert.threshold_value is not None:
        lines.append(f"Threshold: {_quantity(alert.threshold_value, unit_of_measure)}")
    lines += [
        f"Severity: {alert.severity.value}"
        + (f" (was {alert.notified_severity.value})" if purpose == "escalated" and alert.notified_severity else ""),
        f"Type: {alert.alert_type.value}",
        f"Time: {when(last)}",
    ]
    if alert.occurrences > 1:
        lines.append(f"Occurrences: {alert.occurrences} since {when(alert.triggered_at)}")
    if alert.cleared_at is not None:
        lines.append(f"Cleared: {when(alert.cleared_at)}")
    if alert.message:
        lines.append(f"Details: {alert.message}")
    lines += ["", f"Open the alert: {alert_link(public_url, alert.id)}"]
    return Notice(subject, "\n".join(lines))
