"""Tasmota SENSOR telemetry: energy monitors (single and multi-channel) and other sensors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from koprogo_iot.devices.base import DecodeError, DeviceReading, TimeSource, ValueKind
from koprogo_iot.devices.tasmota import TasmotaDecoder

RECEIVED = datetime(2024, 5, 19, 18, 53, 0, tzinfo=UTC)
TOPIC = "tele/tasmota_5A2B3C/SENSOR"


def decode(message: dict[str, Any], topic: str = TOPIC, tz: ZoneInfo | None = None) -> dict[str, DeviceReading]:
    readings = TasmotaDecoder(tz).decode(topic, json.dumps(message).encode(), RECEIVED)
    return {r.quantity: r for r in readings}


def test_single_channel_energy_monitor() -> None:
    message = {
        "Time": "2024-05-19T20:52:56",
        "ENERGY": {
            "TotalStartTime": "2023-01-07T10:49:09",
            "Total": 2.813,
            "Yesterday": 0.123,
            "Today": 0.045,
            "Period": 1,
            "Power": 12,
            "ApparentPower": 25,
            "ReactivePower": 22,
            "Factor": 0.48,
            "Voltage": 231,
            "Current": 0.108,
        },
    }

    readings = decode(message)

    assert {q: (r.value, r.unit, r.kind) for q, r in readings.items()} == {
        "ENERGY.Total": (2.813, "kWh", ValueKind.CUMULATIVE),
        "ENERGY.Power": (12.0, "W", ValueKind.INSTANTANEOUS),
        "ENERGY.ApparentPower": (25.0, "VA", ValueKind.INSTANTANEOUS),
        "ENERGY.ReactivePower": (22.0, "var", ValueKind.INSTANTANEOUS),
        "ENERGY.Factor": (0.48, "", ValueKind.INSTANTANEOUS),
        "ENERGY.Voltage": (231.0, "V", ValueKind.INSTANTANEOUS),
        "ENERGY.Current": (0.108, "A", ValueKind.INSTANTANEOUS),
    }
    total = readings["ENERGY.Total"]
    assert total.device == "tasmota_5A2B3C"
    # Brussels is on summer time (UTC+2) in May.
    assert (total.timestamp, total.time_source) == (datetime(2024, 5, 19, 18, 52, 56, tzinfo=UTC), TimeSource.DEVICE)


def test_multi_channel_energy_monitor_numbers_the_channels() -> None:
    message = {
        "Time": "2024-05-19T20:52:56",
        "ENERGY": {
            "TotalStartTime": "2023-01-07T10:49:09",
            "Total": [2.813, 0.254],
            "Yesterday": [0.1, 0.0],
            "Today": [0.045, 0.0],
            "Power": [12, 0],
            "Voltage": 230,
            "Current": [0.108, 0.0],
        },
    }

    readings = decode(message)

    assert set(readings) == {
        "ENERGY.Total.0",
        "ENERGY.Total.1",
        "ENERGY.Power.0",
        "ENERGY.Power.1",
        "ENERGY.Voltage",
        "ENERGY.Current.0",
        "ENERGY.Current.1",
    }
    assert (readings["ENERGY.Total.1"].value, readings["ENERGY.Total.1"].kind) == (0.254, ValueKind.CUMULATIVE)


def test_other_sensors_become_readings() -> None:
    message = {
        "Time": "2024-01-15T08:00:00",
        "AM2301": {"Temperature": 21.3, "Humidity": 45.2, "DewPoint": 8.9},
        "DS18B20": {"Id": "01131B8C7FAA", "Temperature": 19.5},
        "BMP280": {"Temperature": 20.1, "Pressure": 1013.2},
        "COUNTER": {"C1": 12345},
        "TempUnit": "C",
        "PressureUnit": "hPa",
    }

    readings = decode(message)

    assert {q: (r.unit, r.kind) for q, r in readings.items()} == {
        "AM2301.Temperature": ("C", ValueKind.INSTANTANEOUS),
        "AM2301.Humidity": ("%", ValueKind.INSTANTANEOUS),
        "AM2301.DewPoint": ("C", ValueKind.INSTANTANEOUS),
        "DS18B20.Temperature": ("C", ValueKind.INSTANTANEOUS),
        "BMP280.Temperature": ("C", ValueKind.INSTANTANEOUS),
        "BMP280.Pressure": ("hPa", ValueKind.INSTANTANEOUS),
        "COUNTER.C1": ("", ValueKind.CUMULATIVE),
    }
    # Brussels is on winter time (UTC+1) in January; the message is from the past, still plausible.
    assert readings["COUNTER.C1"].timestamp == datetime(2024, 1, 15, 7, 0, tzinfo=UTC)


def test_fahrenheit_devices_say_so() -> None:
    assert decode({"SI7021": {"Temperature": 70.2}, "TempUnit": "F"})["SI7021.Temperature"].unit == "F"


def test_an_offset_in_the_time_wins_over_the_configured_zone() -> None:
    # SetOption52 1 appends the offset; this is the second 02:30 of the night summer time ended.
    reading = decode({"Time": "2023-10-29T02:30:00+01:00", "ENERGY": {"Total": 1.0}})["ENERGY.Total"]

    assert reading.timestamp == datetime(2023, 10, 29, 1, 30, tzinfo=UTC)


def test_the_zone_is_configurable() -> None:
    reading = decode({"Time": "2024-05-19T18:52:56", "ENERGY": {"Total": 1.0}}, tz=ZoneInfo("UTC"))["ENERGY.Total"]

    assert (reading.timestamp, reading.time_source) == (
        datetime(2024, 5, 19, 18, 52, 56, tzinfo=UTC),
        TimeSource.DEVICE,
    )


@pytest.mark.parametrize(
    "time",
    [
        "1970-01-01T00:05:12",  # no NTP sync yet
        "2024-05-19T21:00:00",  # 19:00 UTC: seven minutes ahead of the broker
        "not a time",
        1716144776,
        None,
    ],
)
def test_implausible_or_missing_time_falls_back_to_the_receive_time(time: object) -> None:
    message: dict[str, Any] = {"ENERGY": {"Total": 1.0}}
    if time is not None:
        message["Time"] = time

    reading = decode(message)["ENERGY.Total"]

    assert (reading.timestamp, reading.time_source) == (RECEIVED, TimeSource.RECEIVER)


@pytest.mark.parametrize(
    "topic, payload",
    [
        ("tele/tasmota_5A2B3C/LWT", b"Online"),
        ("tele/tasmota_5A2B3C/STATE", b'{"Time": "2024-05-19T20:52:56", "POWER": "ON"}'),
        ("stat/tasmota_5A2B3C/RESULT", b'{"POWER": "ON"}'),
        ("tele//SENSOR", b'{"ENERGY": {"Total": 1}}'),
        ("tele/SENSOR", b'{"ENERGY": {"Total": 1}}'),
    ],
)
def test_other_topics_give_nothing(topic: str, payload: bytes) -> None:
    assert TasmotaDecoder().decode(topic, payload, RECEIVED) == []


def test_nested_topics_keep_their_slashes() -> None:
    assert {r.device for r in decode({"ENERGY": {"Total": 1.0}}, "tele/building-a/kitchen/SENSOR").values()} == {
        "building-a/kitchen"
    }


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b'{"Time": "2024-05-19T20:52:56", "ENERGY": {', "invalid_json"),
        (b"Online", "invalid_json"),
        (b'["ENERGY"]', "schema_violation"),
        (b'{"ENERGY": {"Total": 1e999}}', "schema_violation"),
        (b'{"SI7021": {"Temperature": 20}, "TempUnit": 1}', "schema_violation"),
    ],
)
def test_bad_messages_are_refused_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as refused:
        TasmotaDecoder().decode(TOPIC, payload, RECEIVED)

    assert refused.value.reason == reason


def test_odd_shapes_are_skipped() -> None:
    message = {
        "ENERGY": {"Total": "2.8", "Power": [1, "x", None, [2]], "Voltage": {"L1": 230}},
        "ANALOG": [1, 2],
        "X": {"Y": {"Z": 1}},
    }

    assert set(decode(message)) == {"ENERGY.Power.0"}
