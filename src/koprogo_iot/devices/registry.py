"""Every device format's decoder, by format name.

The native KoproGo format is not among them: its topic names a registered sensor
(`koprogo/<org>/<building>/<sensor id>/readings`) rather than `<format>/<device topic>`, it carries one value without
a device key or quantity, and it has a third rejection reason (a non-finite value) that `DecodeError` does not
express. The ingest pipeline calls `native.decode` directly.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from koprogo_iot.devices.base import Decoder
from koprogo_iot.devices.chirpstack import ChirpStackDecoder
from koprogo_iot.devices.shelly import ShellyDecoder
from koprogo_iot.devices.tasmota import TasmotaDecoder
from koprogo_iot.devices.ttn import TtnDecoder
from koprogo_iot.devices.wmbus import WmbusDecoder


def decoders(tasmota_tz: ZoneInfo | None = None) -> dict[str, Decoder]:
    """A fresh instance of each decoder (Shelly's keeps per-device state), keyed by its `format`."""
    built: list[Decoder] = [
        ShellyDecoder(),
        ChirpStackDecoder(),
        TtnDecoder(),
        WmbusDecoder(),
        TasmotaDecoder(tasmota_tz),
    ]
    return {decoder.format: decoder for decoder in built}
