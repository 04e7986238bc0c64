"""Ingest workers' membership: a worker gone for longer than KOPROGO_INGEST_RELEASE_AFTER no longer holds its share.

Mosquitto keeps giving a shared subscription's member its share while it is away, queued in its persistent
session. Letting that session expire (MQTT 5 session expiry, `persistent_client_expiration`) would end the share
but delete the queue with it: messages already acknowledged to the devices (measured on Mosquitto 2.0.11:
docs/operations.md). So instead each worker renews a lease named after its client id every third of
RELEASE_AFTER; a worker whose lease has expired (gone for longer than RELEASE_AFTER) has its session released by a
live one: the first to take the expired lease over resumes the session under that client id, unsubscribes it,
stores and acknowledges what it held (`MqttIngestWorker.release`), and records the release so that nobody does it
again. A worker that comes back renews its lease (whoever holds it) and subscribes again.

Released too soon, a session is only taken over from a worker that is in fact alive: it reconnects and takes its
session back, nothing is lost (acknowledged after storing) but time. So RELEASE_AFTER stays above any restart or
pause of a worker; and a worker releases nobody unless its own previous renewal is recent (`beat`): after a
database outage every worker first renews its own lease.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from koprogo_iot.domain.clock import utcnow
from koprogo_iot.storage.ports import LeaseRepository

log = logging.getLogger(__name__)

PREFIX = "ingest-member:"  # + the worker's MQTT client id: the name of its lease


class Membership:
    """This worker's lease, renewed by `beat`, which also releases the sessions of workers gone too long."""

    def __init__(
        self,
        leases: LeaseRepository,
        client_id: str,
        release_after: float,
        release: Callable[[str], Awaitable[int]],
    ) -> None:
        """`release(client_id)`: release that worker's session; how many messages it held."""
        self.leases = leases
        self.client_id = client_id
        self.release_after = release_after
        self.release = release
        self._renewed_at: float | None = None  # time.monotonic() of this worker's last renewal

    @property
    def interval(self) -> float:
        """Seconds between two beats: three renewals per lease lifetime, so one late beat does not expire it."""
        return self.release_after / 3

    async def beat(self) -> dict[str, int]:
        """Renew this worker's lease; release the sessions of the workers gone too long. Messages stored, per id."""
        now, beat_at = utcnow(), time.monotonic()
        ttl = timedelta(seconds=self.release_after)
        # In standing when this worker's previous renewal is less than two intervals old: the database then answered
        # for the last interval or so, and every live worker renewed in it. A live worker's lease lasts three
        # intervals from its last renewal, so it cannot look expired here; after a longer silence (an outage, a
        # pause) this beat only renews, and the next one, an interval later, may release.
        standing = self._renewed_at is not None and beat_at - self._renewed_at < 2 * self.interval
        await self.leases.renew(PREFIX + self.client_id, self.client_id, now, ttl)
        self._renewed_at = beat_at
        released: dict[str, int] = {}
        if not standing:
            return released
        for name in await self.leases.expired(PREFIX, now):
            gone = name.removeprefix(PREFIX)
            held, _ = await self.leases.acquire(name, self.client_id, now, ttl)
            if not held:  # another live worker took it first
                continue
            log.warning(
                "ingest worker %s has been gone for more than %.0f s: releasing its session (its share)",
                gone,
                self.release_after,
            )
            try:
                released[gone] = await self.release(gone)
            except (OSError, TimeoutError, ConnectionError) as exc:  # e.g. it came back and took its session
                log.warning("could not release the session of %s (%s); looking again later", gone, exc)
                continue
            await self.leases.released(name, self.client_id, utcnow())
            log.info("released the session of %s: %d messages it held stored", gone, released[gone])
        return released
