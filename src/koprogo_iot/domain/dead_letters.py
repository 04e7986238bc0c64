"""Dead letters: messages ingestion refused, kept with their reason for an operator to inspect."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

EXCERPT_BYTES = 1024  # enough to see what a device sent, bounded so a flood cannot fill the disk quickly


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    payload_excerpt: str  # the first EXCERPT_BYTES bytes, decoded leniently
    payload_size: int
    reason: str
    detail: str
    received_at: datetime
    organization_id: UUID | None = None  # the topic's organization, when it names an existing one
    id: int | None = None  # assigned by the store

    @classmethod
    def of(
        cls, topic: str, payload: bytes, reason: str, detail: str, received_at: datetime, organization_id: UUID | None
    ) -> DeadLetter:
        excerpt = _storable(payload[:EXCERPT_BYTES].decode("utf-8", errors="replace"))
        return cls(
            _storable(topic[:1024]),
            excerpt,
            len(payload),
            reason,
            _storable(detail[:1024]),
            received_at,
            organization_id,
        )


def _storable(text: str) -> str:
    """`text` as any database stores it: NUL bytes and lone surrogates (which PostgreSQL refuses) replaced."""
    return text.encode("utf-8", errors="replace").decode("utf-8").replace("\x00", "\ufffd")
