"""Topics ingestion listens to, all under `koprogo/{organization_id}/{building_id}/`.

- native readings: `koprogo/{org}/{building}/{sensor_id}/readings`
- a device format:  `koprogo/{org}/{building}/{format}/<the format's own topic>`, e.g.
  `koprogo/{org}/{building}/shelly/shellypro3em-a8032abe54dc/events/rpc` (bridged or configured as the prefix)

The organization always comes from the topic (the broker's ACLs tie it to the device's credentials), never
from the payload. Messages of an organization's own network server (an integration) come on that server's topics:
their organization and format are the integration's (`Origin`), their building the sensor's.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from koprogo_iot.domain.credentials import ALL_TOPICS
from koprogo_iot.domain.sensors import DeviceFormat
from koprogo_iot.ingest.rejections import Reason, Rejected

SUBSCRIPTION = ALL_TOPICS
_FORMATS = {f.value: f for f in DeviceFormat if f is not DeviceFormat.NATIVE}


@dataclass(frozen=True, slots=True)
class Origin:
    """One organization's network server: every message of it is of this organization and device format."""

    organization_id: UUID
    device_format: DeviceFormat

    def topic(self, name: str) -> ParsedTopic:
        return ParsedTopic(self.organization_id, None, self.device_format, name)


@dataclass(frozen=True, slots=True)
class ParsedTopic:
    organization_id: UUID
    building_id: UUID | None  # None: a network server's message, whose sensor says where it is
    device_format: DeviceFormat
    rest: str  # native: the sensor id; a device format: the format's own topic

    @classmethod
    def parse(cls, topic: str) -> ParsedTopic:
        parts = topic.split("/")
        if len(parts) < 5 or parts[0] != "koprogo" or not all(parts[1:]):
            raise Rejected(Reason.INVALID_TOPIC, f"expected koprogo/<org>/<building>/<sensor>/readings, got {topic!r}")
        try:
            organization_id, building_id = UUID(parts[1]), UUID(parts[2])
        except ValueError:
            raise Rejected(Reason.INVALID_TOPIC, f"organization and building must be UUIDs in {topic!r}") from None
        if len(parts) == 5 and parts[4] == "readings":
            return cls(organization_id, building_id, DeviceFormat.NATIVE, parts[3])
        if parts[3] in _FORMATS:
            return cls(organization_id, building_id, _FORMATS[parts[3]], "/".join(parts[4:]))
        raise Rejected(
            Reason.INVALID_TOPIC,
            f"{topic!r} is neither koprogo/<org>/<building>/<sensor>/readings nor a device format "
            f"({', '.join(_FORMATS)}) under koprogo/<org>/<building>/",
        )
