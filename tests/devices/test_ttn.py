"""The Things Stack v3 uplink messages."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from koprogo_iot.devices.base import DecodeError, TimeSource, ValueKind
from koprogo_iot.devices.ttn import TtnDecoder

RECEIVED = datetime(2024, 5, 19, 18, 53, 0, tzinfo=UTC)
TOPIC = "v3/koprogo-water@ttn/devices/eui-70b3d57ed005a1b2/up"


def uplink(**message: Any) -> dict[str, Any]:
    # Shaped like the "Uplink Messages" example of the TTS "Data Formats" page; empty fields are omitted.
    uplink_message: dict[str, Any] = {
        "session_key_id": "AXA50...",
        "f_port": 1,
        "f_cnt": 231,
        "frm_payload": "gQDNAQ==",
        "decoded_payload": {
            "index_m3": 812.345,
            "battery_pct": 87,
            "leak": False,
            "temperature": {"water": 11.5},
        },
        "rx_metadata": [
            {
                "gateway_ids": {"gateway_id": "gw-roof", "eui": "B827EBFFFE8B01DD"},
                "time": "2024-05-19T18:52:58.431Z",
                "rssi": -105,
                "channel_rssi": -105,
                "snr": -4.2,
            },
            {"gateway_ids": {"gateway_id": "gw-basement"}, "rssi": -96.4, "channel_rssi": -96.4, "snr": 7.5},
        ],
        "settings": {"data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 9}}, "frequency": "868100000"},
        "received_at": "2024-05-19T18:52:58.912345678Z",
        "consumed_airtime": "0.205824s",
        "network_ids": {"net_id": "000013", "tenant_id": "ttn", "cluster_id": "eu1"},
    }
    uplink_message.update(message)
    return {
        "end_device_ids": {
            "device_id": "eui-70b3d57ed005a1b2",
            "application_ids": {"application_id": "koprogo-water"},
            "dev_eui": "70B3D57ED005A1B2",
            "join_eui": "0000000000000000",
            "dev_addr": "260B1234",
        },
        "correlation_ids": ["as:up:01HY...", "gs:uplink:01HY..."],
        "received_at": "2024-05-19T18:52:58.987654321Z",
        "uplink_message": uplink_message,
    }


def decode(event: dict[str, Any], topic: str = TOPIC) -> list[Any]:
    return TtnDecoder().decode(topic, json.dumps(event).encode(), RECEIVED)


def test_uplink_gives_one_reading_per_numeric_decoded_value() -> None:
    readings = {r.quantity: r for r in decode(uplink())}

    assert {q: (r.value, r.unit, r.kind) for q, r in readings.items()} == {
        "index_m3": (812.345, "m3", ValueKind.CUMULATIVE),
        "battery_pct": (87.0, "%", ValueKind.INSTANTANEOUS),
        "temperature.water": (11.5, "", ValueKind.INSTANTANEOUS),
    }
    index = readings["index_m3"]
    assert index.device == "70b3d57ed005a1b2"
    assert index.signal_strength == -96
    assert index.time_source is TimeSource.NETWORK
    assert index.timestamp == datetime(2024, 5, 19, 18, 52, 58, 987654, tzinfo=UTC)  # nanoseconds truncated


def test_without_dev_eui_the_device_id_is_the_key() -> None:
    event = uplink()
    del event["end_device_ids"]["dev_eui"]

    assert {r.device for r in decode(event, "v3/koprogo-water/devices/eui-70b3d57ed005a1b2/up")} == {
        "eui-70b3d57ed005a1b2"
    }


def test_omitted_fields_fall_back() -> None:
    event = uplink(rx_metadata=[{"gateway_ids": {"gateway_id": "packetbroker"}}])
    del event["received_at"]

    [reading, *_] = decode(event)

    assert reading.signal_strength is None
    assert reading.timestamp == datetime(2024, 5, 19, 18, 52, 58, 912345, tzinfo=UTC)  # uplink_message.received_at


def test_without_a_payload_formatter_there_is_no_reading() -> None:
    event = uplink()
    del event["uplink_message"]["decoded_payload"]

    assert decode(event) == []


@pytest.mark.parametrize("suffix", ["join", "down/queued", "down/sent", "service/data", "location/solved", "up/extra"])
def test_other_messages_give_nothing(suffix: str) -> None:
    assert decode(uplink(), f"v3/koprogo-water@ttn/devices/eui-70b3d57ed005a1b2/{suffix}") == []


@pytest.mark.parametrize("received_at", ["2019-06-01T00:00:00Z", "2024-05-19T20:00:00Z", "2024-05-19T18:52:58"])
def test_implausible_or_naive_time_falls_back_to_the_receive_time(received_at: str) -> None:
    event = uplink()
    event["received_at"] = received_at

    [reading, *_] = decode(event)

    assert (reading.timestamp, reading.time_source) == (RECEIVED, TimeSource.RECEIVER)


@pytest.mark.parametrize(
    "topic, payload, reason",
    [
        (TOPIC, b'{"end_device_ids": ', "invalid_json"),
        (TOPIC, b"", "invalid_json"),
        (TOPIC, b'{"end_device_ids": {"device_id": "d"}}', "schema_violation"),
        (TOPIC, b'{"end_device_ids": [], "uplink_message": {}}', "schema_violation"),
        (TOPIC, b'{"end_device_ids": {}, "uplink_message": {"decoded_payload": 3}}', "schema_violation"),
        (TOPIC, b'{"end_device_ids": {}, "uplink_message": {"rx_metadata": [{"rssi": null}, 5]}}', "schema_violation"),
        ("v2/app/devices/d/up", b"{}", "schema_violation"),
        ("v3/app/devices//up", b"{}", "schema_violation"),
        ("v3/app/up", b"{}", "schema_violation"),
    ],
)
def test_bad_messages_are_refused_with_a_reason(topic: str, payload: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as refused:
        TtnDecoder().decode(topic, payload, RECEIVED)

    assert refused.value.reason == reason
