"""What every HTTP exchange goes through: a cap on request bodies, and the browser's security headers.

Both are plain ASGI middleware: no request body is buffered; of responses, only the two documentation pages' own
HTML, which their Content-Security-Policy is computed from.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from koprogo_iot.api.errors import respond

DEFAULT_MAX_BODY_BYTES = 1024 * 1024  # the largest JSON body the API takes (a rules document) is a few kB


class BodyLimit:
    """Refuses bodies above `default` bytes (`larger` gives some paths their own limit): at once when the
    Content-Length says so, else as soon as the streamed body passes it, before it is all read."""

    def __init__(
        self, app: ASGIApp, default: int = DEFAULT_MAX_BODY_BYTES, larger: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.default = default
        self.larger = dict(larger or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope["path"], self.default)
        refusal = respond(413, "too_large", f"the request body is larger than {limit:,} bytes")
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await refusal(scope, receive, send)
            return
        received, refused = 0, False

        async def counted() -> Message:
            # Past the limit: answer 413 now, and tell the app the client is gone so that it stops reading (an
            # exception raised here would reach FastAPI's body parsing, which answers 400 for any).
            nonlocal received, refused
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit and not refused:
                refused = True
                await refusal(scope, receive, send)
            return {"type": "http.disconnect"} if refused else message

        async def unless_refused(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counted, unless_refused)


# The web application's pages: only its own scripts, styles, images and fonts, its API over fetch and WebSocket,
# never inside another site's frame (clickjacking), no plugins, no <base> or form posts elsewhere.
APPLICATION_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "
    "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
DOCUMENTATION_PATHS = frozenset({"/docs", "/redoc"})
_HEADERS = {
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"no-referrer",  # alert links carry ids: never sent to another site
    b"x-frame-options": b"DENY",  # frame-ancestors' older equivalent
    b"cross-origin-opener-policy": b"same-origin",
}
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S | re.I)
_ASSET = re.compile(rb"<(?:script|link)\b[^>]*\b(?:src|href)=[\"']([^\"']+)[\"']", re.I)


def documentation_policy(html: bytes) -> str:
    """The policy of a documentation page (Swagger UI, ReDoc): its inline bootstrap script by hash, its assets'
    origins (a CDN, or this server when they are vendored), and inline styles (both UIs set styles at run time)."""
    hashes = [
        f"'sha256-{base64.b64encode(hashlib.sha256(body).digest()).decode()}'" for body in _INLINE_SCRIPT.findall(html)
    ]
    origins = sorted(
        {f"{u.scheme}://{u.netloc}" for u in map(urlsplit, (a.decode() for a in _ASSET.findall(html))) if u.netloc}
    )
    sources = " ".join(["'self'", *origins])
    return (
        f"default-src 'self'; script-src {' '.join([sources, *hashes])}; style-src {sources} 'unsafe-inline'; "
        f"img-src 'self' data: {' '.join(origins)}; font-src 'self' data: {' '.join(origins)}; "
        "worker-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
    )


class SecurityHeaders:
    """Adds the security headers to every response; the documentation pages get their own policy."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] in DOCUMENTATION_PATHS:
            await self._documentation(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _merged(message["headers"], APPLICATION_POLICY)
            await send(message)

        await self.app(scope, receive, with_headers)

    async def _documentation(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The page is held until complete (a few kB), so that its policy can name its inline script."""
        start: Message | None = None
        body = b""

        async def held(message: Message) -> None:
            nonlocal start, body
            if message["type"] == "http.response.start":
                start = message
                return
            body += message.get("body", b"")
            if not message.get("more_body", False) and start is not None:
                start["headers"] = _merged(start["headers"], documentation_policy(body))
                await send(start)
                await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, held)


def _merged(headers: list[tuple[bytes, bytes]], policy: str) -> list[tuple[bytes, bytes]]:
    present = {name.lower() for name, _ in headers}
    added = {**_HEADERS, b"content-security-policy": policy.encode()}
    return [*headers, *((name, value) for name, value in added.items() if name not in present)]
