"""At most `limit` per key each minute: how many dead letters one topic, or one organization, may add.

The keys come from what devices send (topics, organizations named in topics): the table of them is bounded, and
forgotten whole when full, which at worst lets one more minute's allowance through.
"""

from __future__ import annotations

from collections.abc import Hashable

WINDOW = 60.0


class MinuteQuota:
    def __init__(self, limit: int, max_keys: int = 10_000) -> None:
        self.limit = limit
        self.max_keys = max_keys
        self._windows: dict[Hashable, tuple[float, int]] = {}  # key: (window start, taken in it)

    def take(self, key: Hashable, now: float) -> bool:
        """Count one for `key` at `now` (monotonic seconds) if its allowance of this minute is not used up."""
        started, taken = self._windows.get(key, (now, 0))
        if now - started >= WINDOW:
            started, taken = now, 0
        if taken >= self.limit:
            return False
        if len(self._windows) >= self.max_keys and key not in self._windows:
            self._windows.clear()
        self._windows[key] = (started, taken + 1)
        return True
