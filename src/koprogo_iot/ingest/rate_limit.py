"""A token bucket per sensor: a device may send `rate` messages per second, with bursts up to `burst`."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Per-worker state: with N workers sharing a subscription, a sensor may reach N x `rate` at worst."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[UUID, _Bucket] = {}

    def allow(self, sensor_id: UUID, now: float) -> bool:
        bucket = self._buckets.get(sensor_id)
        if bucket is None:
            bucket = self._buckets[sensor_id] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True
