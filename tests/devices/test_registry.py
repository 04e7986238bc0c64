"""The decoder registry, and the promise every decoder keeps: bad input raises DecodeError and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from koprogo_iot.devices.base import DecodeError
from koprogo_iot.devices.registry import decoders

RECEIVED = datetime(2024, 5, 19, 18, 53, 0, tzinfo=UTC)

TOPICS = {
    "shelly": ["shellypro3em-a8032abe54dc/events/rpc", "shellyplus1pm-a8032abe54dc/status/switch:0"],
    "chirpstack": ["application/17c82e96/device/0101010101010101/event/up"],
    "ttn": ["v3/app@ttn/devices/dev1/up"],
    "wmbus": ["wmbusmeters/meter"],
    "tasmota": ["tele/plug/SENSOR"],
}

HOSTILE = [
    b"",
    b"null",
    b"true",
    b"0",
    b'"text"',
    b"[]",
    b"{}",
    b"\xff\xfe\x00",
    b"NaN",
    b'{"a": Infinity}',
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    b'{"method": "NotifyStatus", "params": {"switch:0": {"aenergy": {"total": 99999999999999999999999999}}}}',
    b'{"method": "NotifyFullStatus", "src": "", "params": {"ts": -1e308, "em:0": null}}',
    b'{"object": {"": 1, "a": {"": 2}}, "rxInfo": [{}], "deviceInfo": {}}',
    b'{"end_device_ids": {}, "uplink_message": {"decoded_payload": {"x": [[[[[[[[[[[[1]]]]]]]]]]]]}}}',
    b'{"id": "1", "timestamp": "9999-12-31T23:59:59.999999999+14:00", "total_m3": -0.0, "status": ""}',
    b'{"Time": "0001-01-01T00:00:00", "ENERGY": {"Total": [1e308, -1e308]}, "TempUnit": null}',
    b'{"Time": "9999-12-31T23:59:59", "ENERGY": []}',
]


def test_one_decoder_per_field_format() -> None:
    built = decoders()

    assert set(built) == set(TOPICS)
    assert all(decoder.format == name for name, decoder in built.items())
    assert decoders()["shelly"] is not built["shelly"]  # fresh state for each caller


@pytest.mark.parametrize("payload", HOSTILE, ids=range(len(HOSTILE)))
@pytest.mark.parametrize("name", sorted(TOPICS))
def test_hostile_payloads_raise_decode_error_or_give_readings(name: str, payload: bytes) -> None:
    decoder = decoders()[name]
    for topic in TOPICS[name]:
        try:
            readings = decoder.decode(topic, payload, RECEIVED)
        except DecodeError as refused:
            assert refused.reason in ("invalid_json", "schema_violation", "nested_too_deeply", "payload_too_large")
        else:
            assert all(reading.timestamp.tzinfo is UTC for reading in readings)
