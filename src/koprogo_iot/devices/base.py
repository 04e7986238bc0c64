"""What every device decoder produces, and how it fails.

A decoder turns one MQTT message into zero or more `DeviceReading`s. The device key plus the quantity name
identify which registered sensor a reading belongs to (a Shelly Pro 3EM reports energy and power: two sensors).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class ValueKind(StrEnum):
    CUMULATIVE = "cumulative"  # a counter (index): may reset or roll over
    INSTANTANEOUS = "instantaneous"  # a gauge: power, temperature, flow
    SNAPSHOT = "snapshot"  # a counter value frozen at a date (wM-Bus target_m3): not a live index


class TimeSource(StrEnum):
    DEVICE = "device"  # the device's own clock
    NETWORK = "network"  # the network server's reception time (LoRaWAN)
    RECEIVER = "receiver"  # our broker's receive time: the device sent none, or an implausible one


@dataclass(frozen=True, slots=True)
class DeviceReading:
    device: str  # device key: Shelly id, DevEUI, wM-Bus meter id, Tasmota topic
    quantity: str  # which value of the device, e.g. "switch:0.aenergy.total", "total_m3", "ENERGY.Total"
    value: float
    unit: str  # as the device states it: "Wh", "W", "m3", "kWh", "C", "%"
    kind: ValueKind
    timestamp: datetime  # aware, UTC
    time_source: TimeSource
    battery_level: float | None = None  # percent
    signal_strength: int | None = None  # dBm
    # Device-reported conditions, e.g. {"LEAK"} from a wM-Bus meter; None: the device reports no status at all.
    status_flags: frozenset[str] | None = None


class DecodeError(ValueError):
    """The message cannot be decoded; `reason` is "invalid_json" or "schema_violation"."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class Decoder(Protocol):
    """One device format. Stateful decoders (Shelly's partial NotifyStatus) keep their state per instance."""

    format: str  # "shelly", "chirpstack", "ttn", "wmbus", "tasmota"

    def decode(self, topic: str, payload: bytes, received_at: datetime) -> list[DeviceReading]:
        """Readings in the message. `topic` is the part after `koprogo/<org>/<building>/<format>/`
        (for example `shellypro3em-a8032abe54dc/events/rpc`); `received_at` is the broker receive time."""
        ...
