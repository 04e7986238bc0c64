"""Start-up failures an operator can fix, each told in one line naming its cause and the setting to change.

A server process takes what can be taken before anything starts (its listening ports, its database), so that a
failure leaves nothing running: `up` with its HTTP port taken stops before the broker or the worker start.
"""

from __future__ import annotations

import errno
import socket
from urllib.parse import urlsplit, urlunsplit


class StartupError(Exception):
    """The process cannot start: `str()` is the one line to print (the cause, then the variable and flag)."""

    def __init__(self, cause: str, setting: str) -> None:
        super().__init__(f"{cause}: change {setting}")
        self.cause, self.setting = cause, setting


def listen(host: str, port: int, setting: str) -> socket.socket:
    """A listening TCP socket on host:port, taken now for a server to use later (uvicorn's `sockets=`)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # What uvicorn and asyncio do: a restarted server may take back a port whose old connections are in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise StartupError(f"cannot listen on {host}:{port} ({_why(exc)})", setting) from exc
    sock.setblocking(False)
    return sock


def ensure_free(host: str, port: int, setting: str) -> None:
    """Fail now if host:port cannot be listened on (for a server that binds its own socket, like amqtt)."""
    listen(host, port, setting).close()


def _why(exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return "address already in use: another program listens there"
    if exc.errno == errno.EADDRNOTAVAIL:
        return "no such address on this machine"
    if exc.errno == errno.EACCES:
        return "permission denied: ports below 1024 need privileges"
    return exc.strerror or str(exc)


def redacted(url: str) -> str:
    """`url` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))
