"""JSON bodies of large answers, encoded off the event loop."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Response

from koprogo_iot.offload import off_loop


async def json_off_loop(encode: Callable[[], bytes | str]) -> Response:
    """The JSON `encode` returns, computed in a worker thread: validating a building's 2,000 sensors or 48,000
    consumption buckets is tens to hundreds of milliseconds the loop would otherwise stall for. A Response:
    FastAPI does not validate it a second time (the route's `response_model` still documents it)."""
    return Response(await off_loop(encode), media_type="application/json")
