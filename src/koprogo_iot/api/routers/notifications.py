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
from koprogo_iot.domain.alerts import AlertSeverity
from koprogo_iot.domain.notices import DEFAULT_CHANNELS, MAX_ATTEMPTS, Channel, NotificationRoute, channels_document
from koprogo_iot.domain.tenancy import Role
from koprogo_iot.notify.channels import check_template
from koprogo_iot.notify.repository import Notification, NotificationSettings, NotifyRepository

router = APIRouter(prefix="/iot/notifications", tags=["notifications"])


def _repository(services: ServicesDep) -> NotifyRepository:
    return NotifyRepository.over(services.store)


RepositoryDep = Annotated[NotifyRepository, Depends(_repository)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


_URL_HELP = "apprise URL template, {to} standing for the recipient's address; null: the platform's provider"


class SettingsIn(_In):
    email_url: str | None = Field(None, description=_URL_HELP + " (e.g. mailtos://user:pass@smtp.host?to={to})")
    sms_url: str | None = Field(None, description=_URL_HELP + " (e.g. twilio://SID:token@+3228887766/{to})")
    push_url: str | None = Field(None, description=_URL_HELP + " (e.g. ntfys://ntfy.sh/{to})")
    reminder_interval_s: int = Field(
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
        return cls(email_url=s.email_url, sms_url=s.sms_url, push_url=s.push_url, reminder_interval_s=reminder,
                   updated_at=s.updated_at)  # fmt: skip


ChannelsDoc = dict[AlertSeverity, list[Channel]]


class RouteIn(_In):
    """A role (its users' login email, phone and push topic) or one explicit contact, not both."""

    building_id: UUID | None = Field(None, description="null: every building of the organization")
    role: Literal[Role.SYNDIC, Role.OWNER] | None = Field(None, description="owners: those owning the alert's unit")
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    push_topic: str | None = None
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
            id=r.id, building_id=r.building_id, role=r.role, name=r.name, email=r.email, phone=r.phone,
            push_topic=r.push_topic, channels=channels_document(r.channels), created_at=r.created_at,
        )  # fmt: skip


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
        return cls(id=n.id, alert_id=n.alert_id, channel=n.channel, recipient=n.recipient, purpose=n.purpose,
                   subject=n.subject, body=n.body, status=n.status, attempts=n.attempts,
                   next_attempt_at=n.next_attempt_at, last_error=n.last_error, created_at=n.created_at,
                   sent_at=n.sent_at)  # fmt: skip


@router.get("/settings")
async def get_settings(principal: PrincipalDep, repository: RepositoryDep) -> SettingsOut:
    principal.require_manager()
    return SettingsOut.of(await repository.get_settings(principal.organization_id))


@router.put("/settings")
async def put_settings(body: SettingsIn, principal: PrincipalDep, repository: RepositoryDep) -> SettingsOut:
    """Each URL is checked with apprise before it is stored (422 when apprise cannot use it)."""
    principal.require_manager()

    def checked(channel: Channel, template: str | None) -> str | None:
        return check_template(channel, template) if template and template.strip() else None

    settings = NotificationSettings(
        principal.organization_id,
        email_url=checked(Channel.EMAIL, body.email_url),
        sms_url=checked(Channel.SMS, body.sms_url),
        push_url=checked(Channel.PUSH, body.push_url),
        reminder_interval=timedelta(seconds=body.reminder_interval_s),
    )
    return SettingsOut.of(await repository.save_settings(settings))


@router.get("/routes")
async def list_routes(principal: PrincipalDep, repository: RepositoryDep) -> list[RouteOut]:
    """Oldest first. With no route at all, the organization's syndics receive its alerts (default channels)."""
    principal.require_manager()
    return [RouteOut.of(r) for r in await repository.list_routes(principal.organization_id)]


@router.post("/routes", status_code=status.HTTP_201_CREATED)
async def create_route(body: RouteIn, principal: PrincipalDep, repository: RepositoryDep) -> RouteOut:
    principal.require_manager()
    route = NotificationRoute(
        organization_id=principal.organization_id,
        building_id=body.building_id,
        role=body.role,
        name=body.name,
        email=body.email,
        phone=body.phone,
        push_topic=body.push_topic,
        channels={severity: frozenset(channels) for severity, channels in body.channels.items()},
    )
    await repository.add_route(route)
    return RouteOut.of(route)


@router.delete("/routes/{route_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_route(route_id: UUID, principal: PrincipalDep, repository: RepositoryDep) -> Response:
    principal.require_manager()
    await repository.delete_route(principal.organization_id, route_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("")
async def list_notifications(
    principal: PrincipalDep,
    services: ServicesDep,
    repository: RepositoryDep,
    alert_id: UUID | None = None,
    status: Literal["pending", "sent", "failed"] | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> list[NotificationOut]:
    """The outbox, newest first: every message to every recipient, its attempts and last error."""
    principal.require_manager()
    if alert_id is not None:
        await services.store.get_alert(principal.organization_id, alert_id)  # another organization's: 404
    found = await repository.list_notifications(principal.organization_id, alert_id, status, limit)
    return [NotificationOut.of(n) for n in found]
