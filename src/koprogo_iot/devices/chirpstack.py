"""ChirpStack v4 MQTT integration (JSON marshaler): readings from the codec output of `up` events.

Topic `application/<application UUID>/device/<devEui>/event/<up|status|join|ack|txack|log|location>`; only `up`
carries measurements. The payload is the protobuf JSON mapping of `integration.UplinkEvent`, which omits default
values: an empty `rxInfo`, a zero `fCnt` or a missing `object` (no codec configured) are simply absent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from koprogo_iot.devices import lorawan
from koprogo_iot.devices.base import DecodeError, DeviceReading, TimeSource
from koprogo_iot.devices.parsing import message_time, parse_json, parse_timestamp


class _DeviceInfo(msgspec.Struct, rename="camel"):
    dev_eui: str | None = None


class _RxInfo(msgspec.Struct, rename="camel"):
    rssi: float | None = None  # int32 in the proto; absent when 0


class _UplinkEvent(msgspec.Struct, rename="camel"):
    time: str | None = None  # network server reception time, RFC 3339 with nanoseconds
    device_info: _DeviceInfo | None = None
    rx_info: list[_RxInfo] = []
    object: dict[str, Any] | None = None  # only present when the device profile has a codec


class ChirpStackDecoder:
    """Decodes ChirpStack v4 uplink events."""

    format: str = "chirpstack"

    def decode(self, topic: str, payload: bytes, received_at: datetime) -> list[DeviceReading]:
        """Readings of an `up` event's codec output; other events carry none."""
        parts = topic.split("/")
        if len(parts) != 6 or parts[0] != "application" or parts[2] != "device" or parts[4] != "event":
            raise DecodeError("schema_violation", f"not a ChirpStack event topic: {topic!r}")
        if parts[5] != "up":
            return []
        event = parse_json(payload, _UplinkEvent)
        dev_eui = (event.device_info.dev_eui if event.device_info else None) or parts[3]
        if not dev_eui:
            raise DecodeError("schema_violation", "no devEui in deviceInfo nor in the topic")
        if event.object is None:
            return []
        timestamp, source = message_time(parse_timestamp(event.time), TimeSource.NETWORK, received_at)
        rssi = lorawan.best_rssi(rx.rssi for rx in event.rx_info)
        return lorawan.readings(dev_eui.lower(), event.object, timestamp, source, rssi)
