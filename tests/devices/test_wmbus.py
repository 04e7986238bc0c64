"""wmbusmeters JSON telegrams: Kamstrup multical21 water meters and kamheat heat meters."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from koprogo_iot.devices.base import DecodeError, DeviceReading, TimeSource, ValueKind
from koprogo_iot.devices.wmbus import WmbusDecoder

RECEIVED = datetime(2024, 5, 19, 18, 53, 0, tzinfo=UTC)
TOPIC = "wmbusmeters/apt-3b-cold"


def multical21(**overrides: Any) -> dict[str, Any]:
    # A multical21 telegram as wmbusmeters 1.x prints it (its driver test vector, with a leak and a live timestamp).
    telegram: dict[str, Any] = {
        "_": "telegram",
        "media": "cold water",
        "meter": "multical21",
        "name": "apt-3b-cold",
        "id": "00348799",
        "status": "LEAK",
        "total_m3": 6.408,
        "target_m3": 6.377,
        "flow_temperature_c": 127,
        "external_temperature_c": 19,
        "current_status": "LEAK",
        "time_dry": "",
        "time_reversed": "",
        "time_leaking": "1-8 hours",
        "time_bursting": "",
        "timestamp": "2024-05-19T18:52:58Z",
        "device": "im871a[00102759]",
        "rssi_dbm": -76,
    }
    telegram.update(overrides)
    return telegram


def kamheat(**overrides: Any) -> dict[str, Any]:
    telegram: dict[str, Any] = {
        "_": "telegram",
        "media": "heat",
        "meter": "kamheat",
        "name": "apt-3b-heat",
        "id": "36363636",
        "status": "OK",
        "total_energy_consumption_kwh": 165,
        "total_volume_m3": 5.45,
        "volume_flow_m3h": 0.018,
        "power_kw": 1.2,
        "t1_temperature_c": 53.28,
        "t2_temperature_c": 23.04,
        "forward_energy_m3c": 299,
        "return_energy_m3c": 156,
        "on_time_h": 2729,
        "target_energy_kwh": 120,
        "target_date": "2024-04-30",
        "timestamp": "2024-05-19T18:52:58Z",
    }
    telegram.update(overrides)
    return telegram


def decode(telegram: dict[str, Any]) -> dict[str, DeviceReading]:
    return {r.quantity: r for r in WmbusDecoder().decode(TOPIC, json.dumps(telegram).encode(), RECEIVED)}


def test_multical21_with_a_leak() -> None:
    readings = decode(multical21())

    assert {q: (r.value, r.unit, r.kind) for q, r in readings.items()} == {
        "total_m3": (6.408, "m3", ValueKind.CUMULATIVE),
        "target_m3": (6.377, "m3", ValueKind.SNAPSHOT),
        "external_temperature_c": (19.0, "C", ValueKind.INSTANTANEOUS),
    }  # flow_temperature_c 127 is the "no reading" sentinel
    total = readings["total_m3"]
    assert total.device == "00348799"
    assert all(r.status_flags == frozenset({"LEAK"}) for r in readings.values())
    assert total.signal_strength == -76
    assert (total.timestamp, total.time_source) == (datetime(2024, 5, 19, 18, 52, 58, tzinfo=UTC), TimeSource.NETWORK)


def test_a_real_flow_temperature_is_kept() -> None:
    assert decode(multical21(flow_temperature_c=8))["flow_temperature_c"].value == 8


@pytest.mark.parametrize(
    "status, flags",
    [
        ("OK", set()),
        ("", set()),
        ("LEAK BURST", {"LEAK", "BURST"}),
        ("DRY,REVERSE", {"DRY", "REVERSE"}),
        ("LOW_BATTERY_LEVEL V1_V2_BURST_WATER_LOSS", {"LOW_BATTERY_LEVEL", "V1_V2_BURST_WATER_LOSS"}),
    ],
)
def test_status_flags(status: str, flags: set[str]) -> None:
    assert decode(multical21(status=status))["total_m3"].status_flags == flags


def test_older_releases_only_send_current_status() -> None:
    telegram = multical21(current_status="BURST")
    del telegram["status"]

    assert decode(telegram)["total_m3"].status_flags == {"BURST"}


def test_kamheat_heat_meter() -> None:
    readings = decode(kamheat())

    assert {q: (r.unit, r.kind) for q, r in readings.items()} == {
        "total_energy_consumption_kwh": ("kWh", ValueKind.CUMULATIVE),
        "total_volume_m3": ("m3", ValueKind.CUMULATIVE),
        "volume_flow_m3h": ("m3/h", ValueKind.INSTANTANEOUS),
        "power_kw": ("kW", ValueKind.INSTANTANEOUS),
        "t1_temperature_c": ("C", ValueKind.INSTANTANEOUS),
        "t2_temperature_c": ("C", ValueKind.INSTANTANEOUS),
        "on_time_h": ("h", ValueKind.CUMULATIVE),
        "target_energy_kwh": ("kWh", ValueKind.SNAPSHOT),
    }
    assert readings["total_energy_consumption_kwh"].status_flags == frozenset()
    assert readings["power_kw"].signal_strength is None


def test_kamheat_targets_before_the_first_billing_date_are_dropped() -> None:
    readings = decode(kamheat(target_date="2000-00-00", target_energy_kwh=0, target_volume_m3=0))

    assert not any(quantity.startswith("target_") for quantity in readings)


@pytest.mark.parametrize("timestamp", ["1111-11-11T11:11:11Z", "2024-05-19T19:30:00Z", None, 1716144778, "2024-05-19"])
def test_implausible_or_missing_timestamp_falls_back_to_the_receive_time(timestamp: object) -> None:
    reading = decode(multical21(timestamp=timestamp))["total_m3"]

    assert (reading.timestamp, reading.time_source) == (RECEIVED, TimeSource.RECEIVER)


def test_non_numeric_and_unknown_fields_are_skipped() -> None:
    readings = decode(multical21(current_kw="0.000", total_m3=True, max_flow_m3h=None, flow_count=3, volume_l=5))

    assert set(readings) == {"target_m3", "external_temperature_c"}


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b'{"id": "00348799", "total_m3": 6.4', "invalid_json"),
        (b"id=00348799;total_m3=6.4", "invalid_json"),
        (b'{"id": 348799, "total_m3": 6.4}', "schema_violation"),  # leading zeros lost
        (b'{"total_m3": 6.4}', "schema_violation"),
        (b'{"id": "", "total_m3": 6.4}', "schema_violation"),
        (b'{"id": null}', "schema_violation"),
        (b'[{"id": "00348799"}]', "schema_violation"),
        (b'{"id": "00348799", "status": ["LEAK"]}', "schema_violation"),
        (b'{"id": "00348799", "total_m3": 1e999}', "schema_violation"),
        (b'{"id": "00348799", "total_m3": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested_too_deeply"),
    ],
)
def test_bad_telegrams_are_refused_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as refused:
        WmbusDecoder().decode(TOPIC, payload, RECEIVED)

    assert refused.value.reason == reason


@pytest.mark.parametrize("rssi", ["-76", True, 1e300, None])
def test_odd_rssi_is_ignored(rssi: object) -> None:
    assert decode(multical21(rssi_dbm=rssi))["total_m3"].signal_strength is None
