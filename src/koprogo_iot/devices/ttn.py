"""The Things Stack v3 MQTT integration: readings from the payload formatter output of uplink messages.

Topic `v3/<application id>[@<tenant id>]/devices/<device id>/up` (`@ttn` on The Things Network, no tenant on
open-source installs); the other topics (`join`, `down/...`, `service/data`, `location/solved`) carry no
measurements. Empty fields are omitted from the JSON, like ChirpStack's protobuf mapping.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from koprogo_iot.devices import lorawan
from koprogo_iot.devices.base import DecodeError, DeviceReading, TimeSource
from koprogo_iot.devices.parsing import message_time, parse_json, parse_timestamp


class _EndDeviceIds(msgspec.Struct):
    device_id: str | None = None
    dev_eui: str | None = None  # upper-case hex in TTS output


class _RxMetadata(msgspec.Struct):
    rssi: float | None = None  # a float in the TTS proto


class _UplinkMessage(msgspec.Struct):
    decoded_payload: dict[str, Any] | None = None  # only present when a payload formatter is set
    rx_metadata: list[_RxMetadata] = []
    received_at: str | None = None  # network server reception time


class _Uplink(msgspec.Struct):
    end_device_ids: _EndDeviceIds
    uplink_message: _UplinkMessage
    received_at: str | None = None  # application server reception time, up to 9 fractional digits


class TtnDecoder:
    """Decodes The Things Stack v3 uplink messages."""

    format: str = "ttn"

    def decode(self, topic: str, payload: bytes, received_at: datetime) -> list[DeviceReading]:
        """Readings of an uplink's decoded payload; other messages carry none."""
        parts = topic.split("/")
        if len(parts) < 5 or parts[0] != "v3" or parts[2] != "devices" or not parts[3]:
            raise DecodeError("schema_violation", f"not a The Things Stack topic: {topic!r}")
        if parts[4:] != ["up"]:
            return []
        uplink = parse_json(payload, _Uplink)
        device = uplink.end_device_ids.dev_eui or uplink.end_device_ids.device_id or parts[3]
        message = uplink.uplink_message
        if message.decoded_payload is None:
            return []
        claimed = parse_timestamp(uplink.received_at or message.received_at)
        timestamp, source = message_time(claimed, TimeSource.NETWORK, received_at)
        rssi = lorawan.best_rssi(rx.rssi for rx in message.rx_metadata)
        return lorawan.readings(device.lower(), message.decoded_payload, timestamp, source, rssi)
