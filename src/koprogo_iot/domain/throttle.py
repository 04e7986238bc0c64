"""Refusing to guess: at most `limit` failures per key (an account, an address) within a sliding window.

Past the limit, attempts are refused without being tried until the oldest failure leaves the window; a success
forgets the key's failures. Keys are kept in memory (per process) and the oldest are dropped beyond `max_keys`,
so that a flood of made-up emails or addresses cannot grow the process without bound.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from datetime import datetime, timedelta


class FailureThrottle:
    def __init__(self, limit: int, window: timedelta, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._failures: OrderedDict[str, deque[datetime]] = OrderedDict()

    def retry_after(self, key: str, now: datetime) -> int:
        """Seconds before `key` may try again; 0 when it may now."""
        failures = self._failures.get(key)
        if failures is None:
            return 0
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if len(failures) < self.limit:
            return 0
        return max(1, math.ceil((failures[0] + self.window - now).total_seconds()))

    def failed(self, key: str, now: datetime) -> None:
        failures = self._failures.setdefault(key, deque(maxlen=self.limit))
        failures.append(now)
        self._failures.move_to_end(key)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)
