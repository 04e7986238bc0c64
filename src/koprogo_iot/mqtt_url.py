"""MQTT broker addresses given as URLs: `mqtt://user:password@host:1883`, or `mqtts://...` over TLS (port 8883)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883
_TLS_SCHEMES = {"mqtt": False, "tcp": False, "mqtts": True, "ssl": True}


@dataclass(frozen=True, slots=True)
class MqttEndpoint:
    host: str
    port: int = DEFAULT_PORT
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @classmethod
    def parse(cls, url: str) -> MqttEndpoint:
        parts = urlsplit(url)
        if parts.scheme not in _TLS_SCHEMES or not parts.hostname:
            raise ValueError(f"expected mqtt://[user:password@]host[:port] or mqtts://..., got {url!r}")
        tls = _TLS_SCHEMES[parts.scheme]
        return cls(
            host=parts.hostname,
            port=parts.port or (DEFAULT_TLS_PORT if tls else DEFAULT_PORT),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
        )

    def with_login(self, username: str, password: str) -> MqttEndpoint:
        return MqttEndpoint(self.host, self.port, username, password, self.tls)

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def client_tls(ca_file: Path | None, cert_file: Path | None = None, key_file: Path | None = None) -> ssl.SSLContext:
    """A TLS client context trusting `ca_file` (or the system's CAs), presenting a client certificate if given."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    if cert_file is not None:
        context.load_cert_chain(str(cert_file), str(key_file) if key_file else None)
    return context
