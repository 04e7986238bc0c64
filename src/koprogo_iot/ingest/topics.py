"""The native topic `koprogo/{organization_id}/{building_id}/{sensor_id}/readings`."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from koprogo_iot.ingest.rejections import Reason, Rejected

SUBSCRIPTION = "koprogo/+/+/+/readings"


@dataclass(frozen=True, slots=True)
class ReadingTopic:
    organization_id: UUID
    building_id: UUID
    device_id: str  # the manufacturer's sensor id

    @classmethod
    def parse(cls, topic: str) -> ReadingTopic:
        parts = topic.split("/")
        if len(parts) != 5 or parts[0] != "koprogo" or parts[4] != "readings" or not parts[3]:
            raise Rejected(Reason.INVALID_TOPIC, f"expected koprogo/<org>/<building>/<sensor>/readings, got {topic!r}")
        try:
            return cls(UUID(parts[1]), UUID(parts[2]), parts[3])
        except ValueError:
            raise Rejected(Reason.INVALID_TOPIC, f"organization and building must be UUIDs in {topic!r}") from None

    def __str__(self) -> str:
        return f"koprogo/{self.organization_id}/{self.building_id}/{self.device_id}/readings"
