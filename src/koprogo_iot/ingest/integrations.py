"""The ingest side of the network server integrations: organizations' ChirpStack and The Things Stack brokers.

Every ingest process runs an `IntegrationRunner`. Each enabled integration is consumed by the one process holding
its lease (`integration:<id>`, renewed every round; another takes over once it expires), through an ingest worker
of its own: the network server's topics, its credentials and TLS, a persistent session whose client id is the
integration's (so the next holder resumes it), and the same pipeline and acknowledgment rules as our broker's
messages — a message is acknowledged only once stored. Its status and last error are reported for the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit
from uuid import UUID

from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.integrations import IntegrationStatus, LnsIntegration
from koprogo_iot.ingest.mqtt_worker import MqttIngestWorker
from koprogo_iot.ingest.pipeline import Pipeline
from koprogo_iot.ingest.topics import Origin
from koprogo_iot.logs import about
from koprogo_iot.mqtt_url import MqttEndpoint
from koprogo_iot.periodic import every
from koprogo_iot.storage.ports import Storage

log = logging.getLogger(__name__)

ROUND = 10.0  # seconds between two looks at the integrations (new, changed, removed) and status reports


def endpoint(integration: LnsIntegration) -> MqttEndpoint:
    parts = urlsplit(integration.broker_url)
    base = MqttEndpoint.parse(f"{'mqtts' if integration.tls else 'mqtt'}://{parts.netloc}")
    return MqttEndpoint(base.host, base.port, integration.username, integration.password, base.tls)


def tls_context(integration: LnsIntegration) -> ssl.SSLContext | None:
    """The system's trusted CAs, or the integration's own CA; None without TLS."""
    if not integration.tls:
        return None
    return ssl.create_default_context(cadata=integration.ca_certificate)  # None: the system's CAs


@dataclass
class _Consumer:
    integration: LnsIntegration
    worker: MqttIngestWorker
    task: asyncio.Task[None]
    reported: tuple[IntegrationStatus, str | None] | None = None
    received: int = 0  # messages the pipeline had received at the last report


class IntegrationRunner:
    def __init__(
        self, storage: Storage, pipeline: Callable[[Origin], Pipeline], holder: str, interval: float = ROUND
    ) -> None:
        """`pipeline` builds a pipeline for one integration's messages; `holder` names this process (unique)."""
        self.storage = storage
        self.pipeline = pipeline
        self.holder = holder
        self.interval = interval
        self.lease_ttl = timedelta(seconds=3 * interval)  # a dead holder's integrations are taken over within this
        self.consumers: dict[UUID, _Consumer] = {}

    async def run(self) -> None:
        """Until cancelled: a round every `interval` seconds (a failing round is logged and tried again)."""
        try:
            await every(self.interval, "integrations", self.round)
        finally:
            for integration_id in list(self.consumers):
                await self._stop(integration_id)

    async def round(self, now: datetime | None = None) -> None:
        now = now or utcnow()
        wanted = {i.id: i for i in await self.storage.integrations.enabled()}
        for integration_id, consumer in list(self.consumers.items()):
            current = wanted.get(integration_id)
            if current is None or current.updated_at != consumer.integration.updated_at:
                await self._stop(integration_id)  # removed, disabled or changed: changed ones start again below
        for integration in wanted.values():
            lease = f"integration:{integration.id}"
            held, _ = await self.storage.leases.acquire(lease, self.holder, now, self.lease_ttl)
            if not held:
                await self._stop(integration.id)
                continue
            consumer = self.consumers.get(integration.id) or self._start(integration)
            await self._report(consumer, now)

    def _start(self, integration: LnsIntegration) -> _Consumer:
        origin = Origin(integration.organization_id, integration.kind.device_format)
        worker = MqttIngestWorker(
            self.pipeline(origin),
            endpoint(integration),
            integration.client_id,
            subscription=integration.topic_filter,
            tls=tls_context(integration),
            primary=False,
        )
        task = asyncio.create_task(worker.run(), name=f"integration {integration.id}")
        log.info(
            "integration %s (%s): connecting to %s",
            integration.name,
            integration.id,
            integration.broker_url,
            extra=about(integration.organization_id),
        )
        consumer = _Consumer(integration, worker, task)
        self.consumers[integration.id] = consumer
        return consumer

    async def _stop(self, integration_id: UUID) -> None:
        consumer = self.consumers.pop(integration_id, None)
        if consumer is None:
            return
        consumer.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer.task
        log.info("integration %s: stopped here", integration_id)

    async def _report(self, consumer: _Consumer, now: datetime) -> None:
        """The connection's state, written when it changed or when messages came in since the last report."""
        worker = consumer.worker
        if worker.subscribed.is_set():
            state: tuple[IntegrationStatus, str | None] = (IntegrationStatus.CONNECTED, None)
        elif worker.last_error is not None:
            state = (IntegrationStatus.FAILING, worker.last_error[:500])
        else:
            state = (IntegrationStatus.PENDING, None)
        received = worker.pipeline.stats.received
        if state == consumer.reported and received == consumer.received:
            return
        last_message = now if received > consumer.received else None
        await self.storage.integrations.report(consumer.integration.id, *state, last_message)
        if state != consumer.reported and state[0] is IntegrationStatus.FAILING:
            log.warning(
                "integration %s: %s",
                consumer.integration.name,
                state[1],
                extra=about(consumer.integration.organization_id),
            )
        consumer.reported, consumer.received = state, received
