"""Pure computations of an answer, run off the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


async def off_loop(work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`work(*args, **kwargs)` in a worker thread.

    A building's 2,000 counters over a day or one counter's year by the hour is up to seconds of pure Python: on the
    event loop it would hold up every other request, the live stream and the jobs for that long (issue 15 measured
    loop ticks over 50 ms late while dashboards called). In a thread the interpreter hands the loop back within its
    switch interval (5 ms), at the price of one thread hop (~0.1 ms) per answer.
    """
    return await asyncio.to_thread(work, *args, **kwargs)
