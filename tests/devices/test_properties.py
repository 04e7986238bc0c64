"""Every device decoder, fed arbitrary bytes and topics: it returns readings or raises DecodeError, nothing else.

Payloads are raw bytes, or JSON whose keys come from the device families' own vocabulary (so that the decoders go
past their first check) with any values (NaN, huge integers, wrong types, nesting). Seeded: the same cases every run.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from koprogo_iot.devices import native, registry
from koprogo_iot.devices.base import DecodeError, DeviceReading

EXAMPLES = 300  # per decoder and per test: the decoders are pure, a case costs microseconds
RECEIVED = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)

# Keys the families' payloads use (Shelly RPC, ChirpStack v4, TTS v3, wmbusmeters, Tasmota, native).
KEYS = [
    "method",
    "params",
    "src",
    "ts",
    "id",
    "result",
    "em:0",
    "emdata:0",
    "switch:0",
    "temperature:0",
    "aenergy",
    "total",
    "total_act",
    "total_act_power",
    "tC",
    "wifi",
    "rssi",
    "sys",
    "unixtime",
    "errors",
    "object",
    "deviceInfo",
    "devEui",
    "rxInfo",
    "time",
    "batteryLevel",
    "uplink_message",
    "decoded_payload",
    "end_device_ids",
    "dev_eui",
    "received_at",
    "rx_metadata",
    "settings",
    "meter",
    "total_m3",
    "target_m3",
    "current_status",
    "timestamp",
    "rssi_dbm",
    "media",
    "Time",
    "ENERGY",
    "Total",
    "Power",
    "AM2301",
    "Temperature",
    "value",
    "battery_level",
    "signal_strength",
    "battery",
    "water",
    "flow_temperature_c",
    "status",
]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["2026-11-28T10:00:00Z", "2026-11-28 10:00:00", "1970-01-01T00:00:00Z", "9999-12-31T23:59:59Z"])
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=8)
    ),
    max_leaves=30,
)
PAYLOADS = st.binary(max_size=300) | JSON.map(lambda v: json.dumps(v).encode())
# Each family's own topic shapes, filled with anything, and any text at all.
PART = st.text(max_size=20)
TOPICS = (
    st.text(max_size=60)
    | st.builds(lambda d, c: f"{d}/{c}", PART, st.sampled_from(["events/rpc", "status/em:0", "status/switch:0"]))
    | st.builds(lambda a, d: f"application/{a}/device/{d}/event/up", PART, PART)
    | st.builds(lambda a, t, d: f"v3/{a}@{t}/devices/{d}/up", PART, PART, PART)
    | st.builds(lambda t: f"tele/{t}/SENSOR", PART)
)


def _valid(readings: list[DeviceReading]) -> None:
    for reading in readings:
        assert isinstance(reading, DeviceReading)
        assert reading.timestamp.tzinfo is not None  # the pipeline compares it with aware times
        assert isinstance(reading.value, float | int) and isinstance(reading.device, str)


@pytest.mark.parametrize("name", sorted(registry.decoders()))
@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None)
@given(topic=TOPICS, payload=PAYLOADS)
def test_a_decoder_returns_readings_or_raises_decode_error(name: str, topic: str, payload: bytes) -> None:
    decoder = registry.decoders()[name]
    try:
        readings = decoder.decode(topic, payload, RECEIVED)
    except DecodeError as exc:
        assert exc.reason in ("invalid_json", "schema_violation")
        return
    _valid(readings)


@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None)
@given(payload=PAYLOADS | JSON.map(lambda v: json.dumps({"timestamp": "2026-11-28T10:00:00Z", "value": v}).encode()))
def test_the_native_decoder_returns_a_reading_or_a_named_refusal(payload: bytes) -> None:
    try:
        decoded = native.decode(payload)
    except (native.InvalidJson, native.SchemaViolation, native.NonFiniteValue):
        return
    assert math.isfinite(decoded.value)
