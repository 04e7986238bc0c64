"""Membership leases and the ingest workers' membership over them, on SQLite and PostgreSQL alike: a worker whose
lease expired has its session released once, by one live worker, and again only after it came back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from koprogo_iot.domain.clock import utcnow
from koprogo_iot.ingest.members import PREFIX, Membership
from koprogo_iot.storage.ports import Storage

HOUR = timedelta(hours=1)


async def test_expired_member_leases_are_listed_until_released_and_again_once_renewed(storage: Storage) -> None:
    leases, now = storage.leases, utcnow()
    await leases.renew("m:gone", "gone", now - 2 * HOUR, HOUR)  # expired an hour ago
    await leases.renew("m:alive", "alive", now, HOUR)
    await leases.renew("other:gone", "x", now - 2 * HOUR, HOUR)  # another prefix
    assert await leases.expired("m:", now) == ["m:gone"]

    held, _ = await leases.acquire("m:gone", "alive", now, HOUR)  # expired: another member may take it over
    assert held
    assert await leases.expired("m:", now + 2 * HOUR) == ["m:alive", "m:gone"]  # the taker's hold expires too
    await leases.released("m:gone", "alive", now)
    assert await leases.expired("m:", now + 2 * HOUR) == ["m:alive"]  # dealt with: not listed again

    await leases.renew("m:gone", "gone", now, HOUR)  # it came back: its own lease, whoever held it
    assert await leases.expired("m:", now) == []
    assert await leases.expired("m:", now + 2 * HOUR) == ["m:alive", "m:gone"]  # and may be gone again later


async def test_one_live_worker_releases_a_gone_one_once(storage: Storage) -> None:
    released: list[tuple[str, str]] = []

    def releaser(by: str) -> Callable[[str], Awaitable[int]]:
        async def release(client_id: str) -> int:
            released.append((by, client_id))
            return 7

        return release

    await storage.leases.renew(PREFIX + "gone", "gone", utcnow() - 2 * HOUR, HOUR)
    first = Membership(storage.leases, "live-1", 3600, releaser("live-1"))
    second = Membership(storage.leases, "live-2", 3600, releaser("live-2"))

    # A first beat only renews: after an outage the others must have had their chance to renew first.
    assert await first.beat() == {} and await second.beat() == {}
    assert await first.beat() == {"gone": 7}
    assert await second.beat() == {} and await first.beat() == {}
    assert released == [("live-1", "gone")]
    assert first.interval == 1200  # three renewals per lease lifetime

    # After a silence of its own (the database away longer than two intervals) a worker first renews, releases later.
    await storage.leases.renew(PREFIX + "gone-too", "gone-too", utcnow() - 2 * HOUR, HOUR)
    assert first._renewed_at is not None
    first._renewed_at -= 2 * first.interval
    assert await first.beat() == {}
    assert await first.beat() == {"gone-too": 7}
