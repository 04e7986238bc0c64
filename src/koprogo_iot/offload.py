"""Pure computations run off the event loop: answers' arithmetic, and decoding large query results."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

# Rows decoded on the loop itself below this (~10 µs each: a couple of milliseconds), in a thread above.
INLINE_ROWS = 200


async def off_loop(work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`work(*args, **kwargs)` in a worker thread.

    A building's 2,000 counters over a day or one counter's year by the hour is up to seconds of pure Python: on the
    event loop it would hold up every other request, the live stream and the jobs for that long (issue 15 measured
    loop ticks over 50 ms late while dashboards called). In a thread the interpreter hands the loop back within its
    switch interval (5 ms), at the price of one thread hop (~0.1 ms).
    """
    return await asyncio.to_thread(work, *args, **kwargs)


async def decoded(decode: Callable[[R], T], rows: Sequence[R]) -> list[T]:
    """`[decode(row) for row in rows]`, in a worker thread when there are enough rows to hold the loop."""
    if len(rows) <= INLINE_ROWS:
        return [decode(row) for row in rows]
    return await off_loop(lambda: [decode(row) for row in rows])
