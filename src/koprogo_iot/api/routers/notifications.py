"""Who hears about alerts, through which providers, and what was sent: an organization's notification setup.

Managers only (syndics, superadmins): provider URLs hold credentials and routes hold people's contacts.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from koprogo_iot.api.deps import PrincipalDep, ServicesDep
from koprogo_iot.api.inputs import Int32, Text
from koprogo_iot.domain.alerts import AlertSeverity
from koprogo_iot.domain.notices import (
    DEFAULT_CHANNELS,
    MAX_ATTEMPTS,
    Channel,
    Notification,
    NotificationRoute,
    NotificationSettings,
    channels_document,
)
from koprogo_iot.domain.tenancy import Role
from koprogo_iot.services.notifications import NotificationSetup

router = APIRouter(prefix="/iot/notifications", tags=["notifications"])


def _setup(services: ServicesDep) -> NotificationSetup:
    return services.notifications


SetupDep = Annotated[NotificationSetup, Depends(_setup)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


_URL_HELP = "apprise URL template, {to} standing for the recipient's address; null: the platform's provider"


class SettingsIn(_In):
    email_url: Text | None = Field(None, description=_URL_HELP + " (e.g. mailtos://user:pass@smtp.host?to={to})")
    sms_url: Text | None = Field(None, description=_URL_HELP + " (e.g. twilio://SID:token@+3228887766/{to})")
    push_url: Text | None = Field(None, description=_URL_HELP + " (e.g. ntfys://ntfy.sh/{to})")
    reminder_interval_s: Int32 = Field(
        4 * 3600, ge=60, description="at most one reminder per interval for an unacknowledged, repeating alert"
    )


class SettingsOut(BaseModel):
    email_url: str | None
    sms_url: str | None
    push_url: str | None
    reminder_interval_s: int | None = Field(description="null: never set, the platform's default applies")
    updated_at: datetime | None

    @classmethod
    def of(cls, s: NotificationSettings) -> SettingsOut:
        reminder = None if s.reminder_interval is None else int(s.reminder_interval.total_seconds())
        return cls(
            email_url=s.email_url,
            sms_url=s.sms_url,
            push_url=s.push_url,
            reminder_interval_s=reminder,
            updated_at=s.updated_at,
        )


ChannelsDoc = dict[AlertSeverity, list[Channel]]


class RouteIn(_In):
    """A role (its users' login email, phone and push topic) or one explicit contact, not both."""

    building_id: UUID | None = Field(None, description="null: every building of the organization")
    role: Literal[Role.SYNDIC, Role.OWNER] | None = Field(None, description="owners: those owning the alert's unit")
    name: Text | None = None
    email: Text | None = None
    phone: Text | None = None
    push_topic: Text | None = None
    channels: ChannelsDoc = Field(
        default_factory=lambda: {s: sorted(c) for s, c in DEFAULT_CHANNELS.items()},
        description='channels per severity, e.g. {"warning": ["email"], "critical": ["email", "sms", "push"]}',
    )


class RouteOut(BaseModel):
    id: UUID
    building_id: UUID | None
    role: Role | None
    name: str | None
    email: str | None
    phone: str | None
    push_topic: str | None
    channels: dict[str, list[str]]
    created_at: datetime

    @classmethod
    def of(cls, r: NotificationRoute) -> RouteOut:
        return cls(
            id=r.id,
            building_id=r.building_id,
            role=r.role,
            name=r.name,
            email=r.email,
            phone=r.phone,
            push_topic=r.push_topic,
            channels=channels_document(r.channels),
            created_at=r.created_at,
        )


class NotificationOut(BaseModel):
    id: UUID
    alert_id: UUID
    channel: Channel
    recipient: str
    purpose: str
    subject: str
    body: str
    status: str
    attempts: int
    max_attempts: int = MAX_ATTEMPTS
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None

    @classmethod
    def of(cls, n: Notification) -> NotificationOut:
        return cls(
            id=n.id,
            alert_id=n.alert_id,
            channel=n.channel,
            recipient=n.recipient,
            purpose=n.purpose,
            subject=n.subject,
            body=n.body,
            status=n.status,
            attempts=n.attempts,
            next_attempt_at=n.next_attempt_at,
            last_error=n.last_error,
            created_at=n.created_at,
            sent_at=n.sent_at,
        )


@router.get("/settings")
async def get_settings(principal: PrincipalDep, setup: SetupDep) -> SettingsOut:
    return SettingsOut.of(await setup.settings(principal))


@router.put("/settings")
async def put_settings(body: SettingsIn, principal: PrincipalDep, setup: SetupDep) -> SettingsOut:
    """Each URL is checked with apprise before it is stored (422 when apprise cannot use it)."""
    urls = {Channel.EMAIL: body.email_url, Channel.SMS: body.sms_url, Channel.PUSH: body.push_url}
    return SettingsOut.of(await setup.save_settings(principal, urls, timedelta(seconds=body.reminder_interval_s)))


@router.get("/routes")
async def list_routes(principal: PrincipalDep, setup: SetupDep) -> list[RouteOut]:
    """Oldest first. With no route at all, the organization's syndics receive its alerts (default channels)."""
    return [RouteOut.of(r) for r in await setup.routes(principal)]


@router.post("/routes", status_code=status.HTTP_201_CREATED)
async def create_route(body: RouteIn, principal: PrincipalDep, setup: SetupDep) -> RouteOut:
    route = await setup.add_route(
        principal,
        building_id=body.building_id,
        role=body.role,
        contact={"name": body.name, "email": body.email, "phone": body.phone, "push_topic": body.push_topic},
        channels={severity: frozenset(channels) for severity, channels in body.channels.items()},
    )
    return RouteOut.of(route)


@router.delete("/routes/{route_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_route(route_id: UUID, principal: PrincipalDep, setup: SetupDep) -> Response:
    await setup.delete_route(principal, route_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("")
async def list_notifications(
    principal: PrincipalDep,
    setup: SetupDep,
    alert_id: UUID | None = None,
    status: Literal["pending", "sent", "failed"] | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> list[NotificationOut]:
    """The outbox, newest first: every message to every recipient, its attempts and last error."""
    return [NotificationOut.of(n) for n in await setup.outbox(principal, alert_id, status, limit)]
