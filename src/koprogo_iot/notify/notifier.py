"""The notifier: find alerts people must hear about, write their messages to the outbox, deliver them.

Runs in the processes that serve the API (`up`, `api`), every `interval` seconds. Several may run at once (API
replicas): the repository's claims keep each alert announced once and each message sent by one of them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from koprogo_iot.config import NotifySettings
from koprogo_iot.domain.alerts import AlertSeverity
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.notices import (
    DEFAULT_REMINDER,
    MAX_ATTEMPTS,
    AlertContext,
    Channel,
    Draft,
    Notification,
    NotificationRoute,
    NotificationSettings,
    backoff,
    compose,
    recipients,
)
from koprogo_iot.domain.tenancy import Role
from koprogo_iot.live.bus import LiveAlert, LiveBus
from koprogo_iot.logs import about
from koprogo_iot.notify import metrics
from koprogo_iot.notify.channels import SEND_TIMEOUT, AppriseSender, Sender, render
from koprogo_iot.periodic import every
from koprogo_iot.storage.ports import NotificationRepository

log = logging.getLogger(__name__)

BATCH = 100  # alerts planned, or messages sent, per statement
CONCURRENT_SENDS = 10
# A claimed message is not claimed again before this: longer than one send can take.
LEASE = timedelta(seconds=SEND_TIMEOUT * 4)


@dataclass(frozen=True, slots=True)
class Round:
    """What one `run_once` did."""

    announced: int = 0  # alerts people were told about (first notice, escalation or reminder)
    sent: int = 0
    failed: int = 0  # attempts that failed (retried later, or given up)


class Notifier:
    def __init__(
        self,
        repository: NotificationRepository,
        sender: Sender | None = None,
        *,
        platform_urls: Mapping[Channel, str | None] | None = None,
        public_url: str = "http://127.0.0.1:8000",
        reminder_interval: timedelta = DEFAULT_REMINDER,
        bus: LiveBus | None = None,
        interval: float = 10.0,
    ) -> None:
        self.repository = repository
        self.sender = sender or AppriseSender()
        self.platform_urls = dict(platform_urls or {})
        self.public_url = public_url
        self.reminder_interval = reminder_interval
        self.bus = bus
        self.interval = interval

    @classmethod
    def configured(
        cls, repository: NotificationRepository, settings: NotifySettings, bus: LiveBus | None = None
    ) -> Notifier:
        urls = {Channel.EMAIL: settings.email_url, Channel.SMS: settings.sms_url, Channel.PUSH: settings.push_url}
        return cls(
            repository,
            platform_urls=urls,
            public_url=settings.public_url,
            reminder_interval=timedelta(seconds=settings.reminder_interval_s),
            bus=bus,
            interval=settings.interval,
        )

    async def run(self) -> None:
        """Until cancelled. A database outage, a failing provider or a failed round is logged and tried again."""
        await every(self.interval, "notifier", self.run_once)

    async def run_once(self, now: datetime | None = None) -> Round:
        """Plan the notices due at `now`, then deliver the messages due at `now`."""
        now = now or utcnow()
        announced = 0
        while True:
            contexts = await self.repository.plan(now, self._drafts, self.reminder_interval, BATCH)
            announced += len(contexts)
            for context in contexts:
                metrics.ALERTS_ANNOUNCED.labels(context.alert.severity.value, context.purpose).inc()
                await self._publish(context)
            if len(contexts) < BATCH:
                break
        sent = failed = 0
        while True:
            due = await self.repository.claim_due(now, LEASE, BATCH)
            outcomes = await self._deliver(due, now)
            sent += sum(1 for ok in outcomes if ok)
            failed += sum(1 for ok in outcomes if not ok)
            if len(due) < BATCH:
                break
        metrics.DUE.set(await self.repository.backlog(now))
        if announced or sent or failed:
            log.info("notifier: %d alerts announced, %d messages sent, %d failed", announced, sent, failed)
        return Round(announced, sent, failed)

    # --- planning

    def _url(self, settings: NotificationSettings, channel: Channel) -> str | None:
        return settings.url(channel) or self.platform_urls.get(channel)

    def _drafts(self, context: AlertContext) -> list[Draft]:
        # Without any route, an organization's syndics hear of its alerts (by the default channels).
        routes = context.routes or [NotificationRoute(context.alert.organization_id, role=Role.SYNDIC)]
        notice = compose(
            context.alert, context.sensor, context.building, context.unit, self.public_url, context.purpose
        )
        drafts = []
        for recipient in recipients(context.alert, routes, context.users):
            configured = self._url(context.settings, recipient.channel) is not None
            error = None if configured else f"no {recipient.channel.value} provider configured"
            drafts.append(Draft(recipient.channel, recipient.address, notice.subject, notice.body, error))
        return drafts

    async def _publish(self, context: AlertContext) -> None:
        """Critical alerts also reach open dashboards, once: when first told, or told of the escalation."""
        alert = context.alert
        if self.bus is None or alert.severity is not AlertSeverity.CRITICAL or context.purpose == "reminder":
            return
        await self.bus.publish_alert(alert.organization_id, LiveAlert.of(alert, context.purpose))

    # --- delivery

    async def _deliver(self, due: Sequence[Notification], now: datetime) -> list[bool]:
        settings: dict[UUID, NotificationSettings] = {}
        for organization_id in {m.organization_id for m in due}:
            settings[organization_id] = await self.repository.get_settings(organization_id)
        slots = asyncio.Semaphore(CONCURRENT_SENDS)

        async def one(message: Notification) -> bool:
            template = self._url(settings[message.organization_id], message.channel)
            async with slots:
                error = await self._send(template, message)
            if error is None:
                await self.repository.mark_sent(message, now)
                metrics.SENT.labels(message.channel.value).inc()
                return True
            metrics.FAILED.labels(message.channel.value).inc()
            retry_at = None if message.attempts >= MAX_ATTEMPTS else now + backoff(message.attempts)
            log.warning(
                "notifier: %s message %s failed (attempt %d): %s",
                message.channel.value,
                message.id,
                message.attempts,
                error,
                extra=about(message.organization_id),
            )
            await self.repository.mark_failed(message, error, retry_at)
            return False

        return list(await asyncio.gather(*(one(m) for m in due)))

    async def _send(self, template: str | None, message: Notification) -> str | None:
        if template is None:
            return f"no {message.channel.value} provider configured"
        try:
            return await self.sender.send(render(template, message.recipient), message.subject, message.body)
        except Exception as exc:  # a provider library's bug must not stop the notifier; the message is retried
            return f"{type(exc).__name__}: {exc}"
