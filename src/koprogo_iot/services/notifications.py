"""An organization's notification setup, for managers only: provider URLs hold credentials and routes hold
people's contacts. Also the outbox, to see what was sent to whom."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from uuid import UUID

from koprogo_iot.domain.access import Principal
from koprogo_iot.domain.alerts import AlertSeverity
from koprogo_iot.domain.audit import AuditAction, AuditEntity, differences
from koprogo_iot.domain.errors import InvalidValue
from koprogo_iot.domain.notices import (
    MASK,
    Channel,
    Notification,
    NotificationRoute,
    NotificationSettings,
    Status,
    masked_url,
)
from koprogo_iot.domain.tenancy import Role
from koprogo_iot.services.audit import AuditLog
from koprogo_iot.storage.ports import AlertRepository, NotificationRepository

# Checks a provider URL template before it is stored; returns it cleaned, or raises InvalidValue (apprise's check,
# wired by bootstrap: the service does not know the delivery library).
TemplateCheck = Callable[[Channel, str], str]
_URLS = frozenset({"email_url", "sms_url", "push_url"})  # they hold credentials: logged as changed, not shown


class NotificationSetup:
    def __init__(
        self, repository: NotificationRepository, alerts: AlertRepository, check: TemplateCheck, audit: AuditLog
    ) -> None:
        self.repository = repository
        self.alerts = alerts
        self.check = check
        self.audit = audit

    async def settings(self, principal: Principal) -> NotificationSettings:
        """With the provider URLs' secrets masked: they are stored sealed, and shown to nobody."""
        principal.require_manager()
        return (await self.repository.get_settings(principal.organization_id)).masked()

    async def save_settings(
        self, principal: Principal, urls: Mapping[Channel, str | None], reminder_interval: timedelta
    ) -> NotificationSettings:
        """Each URL is checked before it is stored; empty ones fall back to the platform's providers. A URL sent
        back as it was read (masked) keeps the stored one: a form can be saved without retyping every secret."""
        principal.require_manager()
        before = await self.repository.get_settings(principal.organization_id)
        kept: dict[Channel, str | None] = {}
        for channel, url in urls.items():
            if url and MASK in url:
                if url != masked_url(before.url(channel)):
                    raise InvalidValue(f"{channel.value}_url: send the whole URL, or the masked one unchanged")
                kept[channel] = before.url(channel)
        checked = {
            channel: self.check(channel, url)
            for channel, url in urls.items()
            if url and url.strip() and channel not in kept
        } | kept
        settings = NotificationSettings(
            principal.organization_id,
            email_url=checked.get(Channel.EMAIL),
            sms_url=checked.get(Channel.SMS),
            push_url=checked.get(Channel.PUSH),
            reminder_interval=reminder_interval,
        )
        saved = await self.repository.save_settings(settings)
        details = differences(before, saved, ignore=frozenset({"updated_at"}), secret=_URLS)
        entity = AuditEntity.NOTIFICATION_SETTINGS
        await self.audit.record(principal, entity, principal.organization_id, AuditAction.CHANGED, details)
        return saved.masked()

    async def routes(self, principal: Principal) -> list[NotificationRoute]:
        principal.require_manager()
        return await self.repository.list_routes(principal.organization_id)

    async def add_route(
        self,
        principal: Principal,
        *,
        building_id: UUID | None,
        role: Role | None,
        contact: Mapping[str, str | None],
        channels: Mapping[AlertSeverity, frozenset[Channel]],
    ) -> NotificationRoute:
        """`contact`: name, email, phone and push topic of one explicit recipient (or nothing, with a role)."""
        principal.require_manager()
        route = NotificationRoute(
            organization_id=principal.organization_id,
            building_id=building_id,
            role=role,
            name=contact.get("name"),
            email=contact.get("email"),
            phone=contact.get("phone"),
            push_topic=contact.get("push_topic"),
            channels=channels,
        )
        await self.repository.add_route(route)
        details = {"building_id": building_id, "role": role, **contact, "channels": channels}
        await self.audit.record(principal, AuditEntity.NOTIFICATION_ROUTE, route.id, AuditAction.CREATED, details)
        return route

    async def delete_route(self, principal: Principal, route_id: UUID) -> None:
        principal.require_manager()
        await self.repository.delete_route(principal.organization_id, route_id)
        await self.audit.record(principal, AuditEntity.NOTIFICATION_ROUTE, route_id, AuditAction.DELETED)

    async def outbox(
        self, principal: Principal, alert_id: UUID | None, status: Status | None, limit: int
    ) -> list[Notification]:
        """Newest first; another organization's alert is not found."""
        principal.require_manager()
        if alert_id is not None:
            await self.alerts.get(principal.organization_id, alert_id)
        return await self.repository.list_notifications(principal.organization_id, alert_id, status, limit)
