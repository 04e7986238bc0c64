"""MQTT broker addresses given as URLs: `mqtt://user:password@host:1883`."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

DEFAULT_PORT = 1883


@dataclass(frozen=True, slots=True)
class MqttEndpoint:
    host: str
    port: int = DEFAULT_PORT
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> MqttEndpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
            raise ValueError(f"expected mqtt://[user:password@]host[:port], got {url!r}")
        return cls(
            host=parts.hostname,
            port=parts.port or DEFAULT_PORT,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )

    def __str__(self) -> str:
        return f"mqtt://{self.host}:{self.port}"
