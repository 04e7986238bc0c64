"""ChirpStack v4 uplink events, and the LoRaWAN naming rule shared with The Things Stack."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from koprogo_iot.devices.base import DecodeError, TimeSource, ValueKind
from koprogo_iot.devices.chirpstack import ChirpStackDecoder
from koprogo_iot.devices.lorawan import kind_and_unit

RECEIVED = datetime(2024, 5, 19, 18, 53, 0, tzinfo=UTC)
APP = "17c82e96-be03-4f38-aef3-f83d48582d97"
TOPIC = f"application/{APP}/device/0101aabbccddeeff/event/up"


def uplink(**overrides: Any) -> dict[str, Any]:
    # Shaped like the ChirpStack v4 docs' `up` example (protobuf JSON mapping, camelCase, nanosecond times).
    event: dict[str, Any] = {
        "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
        "time": "2024-05-19T18:52:58.775023242+00:00",
        "deviceInfo": {
            "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
            "tenantName": "KoproGo",
            "applicationId": APP,
            "applicationName": "Residence Les Tilleuls",
            "deviceProfileId": "14855bf7-d10d-4aee-b618-ebfcb64dc7ad",
            "deviceProfileName": "Water meter pulse reader",
            "deviceName": "Apt 3B cold water",
            "devEui": "0101AABBCCDDEEFF",
            "tags": {"unit": "3B"},
        },
        "devAddr": "00189440",
        "adr": True,
        "dr": 5,
        "fCnt": 1842,
        "fPort": 2,
        "data": "AQIDBA==",
        "object": {
            "water": {"total_m3": 123.456, "flow_m3h": 0.18},
            "temperature": 12.5,
            "battery_v": 3.61,
            "leak": False,
            "state": "ok",
        },
        "rxInfo": [
            {"gatewayId": "0016c001f153a14c", "uplinkId": 4217106255, "rssi": -112, "snr": -3.5, "context": "E3OWOQ=="},
            {"gatewayId": "0016c001f1500812", "uplinkId": 1911736049, "rssi": -87, "snr": 9.25, "context": "k4dkBA=="},
        ],
        "txInfo": {"frequency": 868100000, "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 7}}},
    }
    event.update(overrides)
    return event


def decode(event: dict[str, Any], topic: str = TOPIC) -> list[Any]:
    return ChirpStackDecoder().decode(topic, json.dumps(event).encode(), RECEIVED)


def test_up_event_gives_one_reading_per_numeric_object_value() -> None:
    readings = {r.quantity: r for r in decode(uplink())}

    assert {q: (r.value, r.unit, r.kind) for q, r in readings.items()} == {
        "water.total_m3": (123.456, "m3", ValueKind.CUMULATIVE),
        "water.flow_m3h": (0.18, "m3/h", ValueKind.INSTANTANEOUS),
        "temperature": (12.5, "", ValueKind.INSTANTANEOUS),
        "battery_v": (3.61, "V", ValueKind.INSTANTANEOUS),
    }
    total = readings["water.total_m3"]
    assert total.device == "0101aabbccddeeff"
    assert total.signal_strength == -87
    assert total.time_source is TimeSource.NETWORK
    assert total.timestamp == datetime(2024, 5, 19, 18, 52, 58, 775023, tzinfo=UTC)  # truncated, not rounded


def test_protobuf_json_omissions_are_not_errors() -> None:
    event = uplink()
    del event["rxInfo"], event["fCnt"], event["deviceInfo"], event["time"]

    [reading, *_] = decode(event, f"application/{APP}/device/0101AABBCCDDEEFF/event/up")

    assert reading.device == "0101aabbccddeeff"  # from the topic, lowercased
    assert reading.signal_strength is None
    assert (reading.timestamp, reading.time_source) == (RECEIVED, TimeSource.RECEIVER)


def test_without_a_codec_there_is_no_object_and_no_reading() -> None:
    event = uplink()
    del event["object"]

    assert decode(event) == []


@pytest.mark.parametrize("kind", ["status", "join", "ack", "txack", "log", "location"])
def test_other_events_give_nothing(kind: str) -> None:
    status = {"deviceInfo": {"devEui": "0101aabbccddeeff"}, "margin": 7, "batteryLevel": 87.5}

    assert decode(status, f"application/{APP}/device/0101aabbccddeeff/event/{kind}") == []


@pytest.mark.parametrize("time", ["1970-01-01T00:00:12Z", "2024-05-19T19:30:00Z", "yesterday", "2024-13-45T00:00:00Z"])
def test_implausible_network_time_falls_back_to_the_receive_time(time: str) -> None:
    [reading, *_] = decode(uplink(time=time))

    assert (reading.timestamp, reading.time_source) == (RECEIVED, TimeSource.RECEIVER)


@pytest.mark.parametrize(
    "topic, payload, reason",
    [
        (TOPIC, b'{"deviceInfo": {"devEui": "0101', "invalid_json"),
        (TOPIC, b"\x0a\x24\x33\x61\x63\x37", "invalid_json"),  # the protobuf marshaler's output
        (TOPIC, b"[]", "schema_violation"),
        (TOPIC, b'{"object": [1, 2]}', "schema_violation"),
        (TOPIC, b'{"rxInfo": {"rssi": -80}, "object": {}}', "schema_violation"),
        (TOPIC, b'{"rxInfo": [{"rssi": "strong"}], "object": {}}', "schema_violation"),
        (TOPIC, b'{"deviceInfo": {"devEui": 1}, "object": {}}', "schema_violation"),
        (TOPIC, b'{"time": 1716144778, "object": {}}', "schema_violation"),
        ("application/x/device//event/up", b'{"object": {"a": 1}}', "schema_violation"),
        ("application/x/device/y/up", b"{}", "schema_violation"),
        ("gateway/0016c001f153a14c/event/up", b"{}", "schema_violation"),
    ],
)
def test_bad_messages_are_refused_with_a_reason(topic: str, payload: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as refused:
        ChirpStackDecoder().decode(topic, payload, RECEIVED)

    assert refused.value.reason == reason


def test_deeply_nested_object_is_refused_before_decoding() -> None:
    nested: Any = 1.0
    for _ in range(500):
        nested = {"a": nested}

    with pytest.raises(DecodeError) as refused:
        decode(uplink(object={"shallow": 2, "deep": nested}))
    assert refused.value.reason == "nested_too_deeply"


def test_arrays_are_numbered() -> None:
    readings = decode(uplink(object={"temp": [20.5, 21, "x", None, True]}))

    assert [(r.quantity, r.value) for r in readings] == [("temp.0", 20.5), ("temp.1", 21.0)]


@pytest.mark.parametrize(
    "quantity, kind, unit",
    [
        ("total_m3", ValueKind.CUMULATIVE, "m3"),
        ("water.total_m3", ValueKind.CUMULATIVE, "m3"),
        ("volume_total", ValueKind.CUMULATIVE, ""),
        ("totalVolume", ValueKind.CUMULATIVE, ""),
        ("meterIndex", ValueKind.CUMULATIVE, ""),
        ("index_l", ValueKind.CUMULATIVE, "L"),
        ("activeEnergy", ValueKind.CUMULATIVE, ""),
        ("consumption_kwh", ValueKind.CUMULATIVE, "kWh"),
        ("import_wh", ValueKind.CUMULATIVE, "Wh"),
        ("pulse_counter", ValueKind.CUMULATIVE, ""),
        ("counters.total.0", ValueKind.CUMULATIVE, ""),
        ("flow_m3h", ValueKind.INSTANTANEOUS, "m3/h"),
        ("power_w", ValueKind.INSTANTANEOUS, "W"),
        ("power_kw", ValueKind.INSTANTANEOUS, "kW"),
        ("temperature", ValueKind.INSTANTANEOUS, ""),
        ("temperature_degc", ValueKind.INSTANTANEOUS, "C"),
        ("voltage_c", ValueKind.INSTANTANEOUS, ""),  # phase C, not Celsius
        ("battery_pct", ValueKind.INSTANTANEOUS, "%"),
        ("energy_today", ValueKind.INSTANTANEOUS, ""),
        ("_m3", ValueKind.INSTANTANEOUS, ""),
    ],
)
def test_kind_and_unit_rule(quantity: str, kind: ValueKind, unit: str) -> None:
    assert kind_and_unit(quantity) == (kind, unit)
