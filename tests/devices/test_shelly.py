"""Shelly Gen2+ decoding: RPC notifications, component status topics, the overlaid status per device."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from koprogo_iot.devices.base import DecodeError, DeviceReading, TimeSource, ValueKind
from koprogo_iot.devices.shelly import ShellyDecoder

RECEIVED = datetime(2024, 5, 19, 18, 53, 0, tzinfo=UTC)
TS = RECEIVED.timestamp() - 0.79  # the device clock, a little before the broker received the message
PRO3EM = "shellypro3em-a8032abe54dc"
HT = "shellyplusht-b8d61a8b17cc"


def rpc(method: str, src: str, **params: Any) -> bytes:
    return json.dumps({"src": src, "dst": f"{src}/events", "method": method, "params": params}).encode()


def by_quantity(readings: list[DeviceReading]) -> dict[str, DeviceReading]:
    return {reading.quantity: reading for reading in readings}


def test_pro3em_emdata_notification_gives_cumulative_energies_stamped_by_the_device() -> None:
    emdata = {
        "id": 0,
        "a_total_act_energy": 1075513.08,
        "a_total_act_ret_energy": 0.0,
        "b_total_act_energy": 1776542.72,
        "b_total_act_ret_energy": 0.0,
        "c_total_act_energy": 0.01,
        "c_total_act_ret_energy": 0.0,
        "total_act": 2852055.81,
        "total_act_ret": 0.0,
    }
    payload = rpc("NotifyStatus", PRO3EM, ts=TS, **{"emdata:0": emdata})

    readings = by_quantity(ShellyDecoder().decode(f"{PRO3EM}/events/rpc", payload, RECEIVED))

    assert len(readings) == 8
    total = readings["emdata:0.total_act"]
    assert total.device == PRO3EM
    assert (total.value, total.unit, total.kind) == (2852055.81, "Wh", ValueKind.CUMULATIVE)
    assert total.time_source is TimeSource.DEVICE
    assert total.timestamp == datetime.fromtimestamp(TS, UTC)
    assert readings["emdata:0.b_total_act_ret_energy"].kind is ValueKind.CUMULATIVE
    assert total.battery_level is None


def test_pro3em_em_notification_gives_instantaneous_powers() -> None:
    em: dict[str, Any] = {
        "id": 0,
        "a_current": 2.829,
        "a_voltage": 121.2,
        "a_act_power": 342.8,
        "a_aprt_power": 457.5,
        "b_act_power": 957.3,
        "c_act_power": 0.2,
        "n_current": None,
        "total_current": 11.896,
        "total_act_power": 1300.252,
        "user_calibrated_phase": [],
    }
    readings = ShellyDecoder().decode(
        f"{PRO3EM}/events/rpc", rpc("NotifyStatus", PRO3EM, ts=TS, **{"em:0": em}), RECEIVED
    )

    assert {(r.quantity, r.value, r.unit, r.kind) for r in readings} == {
        ("em:0.a_act_power", 342.8, "W", ValueKind.INSTANTANEOUS),
        ("em:0.b_act_power", 957.3, "W", ValueKind.INSTANTANEOUS),
        ("em:0.c_act_power", 0.2, "W", ValueKind.INSTANTANEOUS),
        ("em:0.total_act_power", 1300.252, "W", ValueKind.INSTANTANEOUS),
    }


def test_plus1pm_status_topic_uses_the_topic_prefix_and_the_receive_time() -> None:
    status = {
        "id": 0,
        "source": "init",
        "output": True,
        "apower": 41.3,
        "voltage": 229.6,
        "current": 0.254,
        "freq": 50.0,
        "aenergy": {"total": 1234.567, "by_minute": [690.4, 688.1, 689.9], "minute_ts": 1716144720},
        "ret_aenergy": {"total": 0.0, "by_minute": [0, 0, 0], "minute_ts": 1716144720},
        "temperature": {"tC": 44.1, "tF": 111.4},
    }
    topic = "shellyplus1pm-a8032abe54dc/status/switch:0"

    readings = by_quantity(ShellyDecoder().decode(topic, json.dumps(status).encode(), RECEIVED))

    assert set(readings) == {
        "switch:0.apower",
        "switch:0.voltage",
        "switch:0.current",
        "switch:0.freq",
        "switch:0.aenergy.total",
        "switch:0.ret_aenergy.total",
        "switch:0.temperature.tC",
    }
    energy = readings["switch:0.aenergy.total"]
    assert (energy.device, energy.value, energy.unit, energy.kind) == (
        "shellyplus1pm-a8032abe54dc",
        1234.567,
        "Wh",
        ValueKind.CUMULATIVE,
    )
    assert (energy.timestamp, energy.time_source) == (RECEIVED, TimeSource.RECEIVER)
    assert readings["switch:0.temperature.tC"].unit == "C"


def ht_full_status(percent: float) -> bytes:
    # As a Plus H&T sends it on wake-up (NotifyFullStatus carries every component).
    return rpc(
        "NotifyFullStatus",
        HT,
        ts=TS,
        ble={},
        cloud={"connected": False},
        **{
            "devicepower:0": {"id": 0, "battery": {"V": 5.43, "percent": percent}, "external": {"present": False}},
            "humidity:0": {"id": 0, "rh": 42.2},
            "temperature:0": {"id": 0, "tC": 19.8, "tF": 67.6},
        },
        sys={"mac": "B8D61A8B17CC", "time": None, "unixtime": None, "uptime": 3},
    )


def test_ht_full_status_gives_temperature_and_humidity_with_the_battery_level() -> None:
    readings = by_quantity(ShellyDecoder().decode(f"{HT}/events/rpc", ht_full_status(87), RECEIVED))

    assert set(readings) == {"temperature:0.tC", "humidity:0.rh"}
    assert readings["humidity:0.rh"].unit == "%"
    assert all(reading.battery_level == 87 for reading in readings.values())


def test_partial_update_emits_only_what_changed_and_keeps_the_known_battery_level() -> None:
    decoder = ShellyDecoder()
    decoder.decode(f"{HT}/events/rpc", ht_full_status(87), RECEIVED)

    update = rpc("NotifyStatus", HT, ts=TS + 60, **{"temperature:0": {"id": 0, "tC": 20.4}})
    readings = decoder.decode(f"{HT}/events/rpc", update, RECEIVED + timedelta(minutes=1))

    assert [(r.quantity, r.value, r.battery_level) for r in readings] == [("temperature:0.tC", 20.4, 87)]


def test_partial_update_of_a_nested_key_keeps_its_siblings() -> None:
    decoder = ShellyDecoder()
    decoder.decode(f"{HT}/events/rpc", ht_full_status(87), RECEIVED)

    voltage_only = rpc("NotifyStatus", HT, ts=TS, **{"devicepower:0": {"battery": {"V": 5.41}}})
    assert decoder.decode(f"{HT}/events/rpc", voltage_only, RECEIVED) == []
    humidity = rpc("NotifyStatus", HT, ts=TS, **{"humidity:0": {"rh": 45.0}})

    assert [r.battery_level for r in decoder.decode(f"{HT}/events/rpc", humidity, RECEIVED)] == [87]


def test_a_null_key_is_removed_from_the_known_status() -> None:
    decoder = ShellyDecoder()
    decoder.decode(f"{HT}/events/rpc", ht_full_status(87), RECEIVED)

    removal = rpc("NotifyStatus", HT, ts=TS, **{"devicepower:0": {"battery": None}, "temperature:0": {"tC": 20.0}})
    readings = decoder.decode(f"{HT}/events/rpc", removal, RECEIVED)

    assert [(r.quantity, r.battery_level) for r in readings] == [("temperature:0.tC", None)]


def test_a_null_field_in_the_update_gives_no_reading() -> None:
    payload = rpc("NotifyStatus", PRO3EM, ts=TS, **{"em:0": {"a_act_power": None, "b_act_power": 12.0}})

    readings = ShellyDecoder().decode(f"{PRO3EM}/events/rpc", payload, RECEIVED)

    assert [r.quantity for r in readings] == ["em:0.b_act_power"]


def test_status_is_kept_per_device() -> None:
    decoder = ShellyDecoder()
    decoder.decode(f"{HT}/events/rpc", ht_full_status(87), RECEIVED)
    other = "shellyplusht-000000000000"

    readings = decoder.decode(
        f"{other}/events/rpc", rpc("NotifyStatus", other, ts=TS, **{"humidity:0": {"rh": 50}}), RECEIVED
    )

    assert [(r.device, r.battery_level) for r in readings] == [(other, None)]


def test_device_key_falls_back_to_the_topic_prefix_without_src() -> None:
    payload = json.dumps({"method": "NotifyStatus", "params": {"ts": TS, "em1:0": {"act_power": 5080.3}}}).encode()

    readings = ShellyDecoder().decode("site/proem-1/events/rpc", payload, RECEIVED)

    assert [(r.device, r.quantity, r.unit) for r in readings] == [("site/proem-1", "em1:0.act_power", "W")]


def test_em1data_gives_cumulative_energy() -> None:
    payload = rpc(
        "NotifyStatus", "shellyproem50-08f9e0e67204", ts=TS, **{"em1data:1": {"id": 1, "total_act_energy": 6644.9}}
    )

    [reading] = [r for r in ShellyDecoder().decode("x/events/rpc", payload, RECEIVED) if r.quantity.endswith("_energy")]

    assert (reading.quantity, reading.kind, reading.unit) == ("em1data:1.total_act_energy", ValueKind.CUMULATIVE, "Wh")


@pytest.mark.parametrize(
    "topic, payload",
    [
        (
            f"{PRO3EM}/events/rpc",
            rpc("NotifyEvent", PRO3EM, ts=TS, events=[{"component": "input:0", "event": "single_push"}]),
        ),
        (f"{PRO3EM}/online", b"true"),
        (f"{PRO3EM}/online", b"false"),
        (f"{PRO3EM}/events/rpc", b'{"id": 1, "src": "x", "dst": "y", "result": {"was_on": false}}'),
        (f"{PRO3EM}/status/sys", b'{"mac": "A8032ABE54DC", "uptime": 3}'),
        (f"{PRO3EM}/debug/log", b"not json at all"),
    ],
)
def test_messages_without_measurements_give_nothing(topic: str, payload: bytes) -> None:
    assert ShellyDecoder().decode(topic, payload, RECEIVED) == []


@pytest.mark.parametrize(
    "ts",
    [
        None,
        3.2,  # seconds since boot: the clock is not synchronized yet
        datetime(2019, 12, 31, 23, 59, tzinfo=UTC).timestamp(),
        (RECEIVED + timedelta(minutes=6)).timestamp(),
        1e30,
    ],
)
def test_implausible_device_time_falls_back_to_the_receive_time(ts: float | None) -> None:
    payload = rpc("NotifyStatus", PRO3EM, ts=ts, **{"em:0": {"total_act_power": 10.0}})

    [reading] = ShellyDecoder().decode(f"{PRO3EM}/events/rpc", payload, RECEIVED)

    assert (reading.timestamp, reading.time_source) == (RECEIVED, TimeSource.RECEIVER)


def test_device_time_slightly_ahead_of_the_broker_is_kept() -> None:
    ahead = (RECEIVED + timedelta(minutes=4)).timestamp()
    payload = rpc("NotifyStatus", PRO3EM, ts=ahead, **{"em:0": {"total_act_power": 10.0}})

    [reading] = ShellyDecoder().decode(f"{PRO3EM}/events/rpc", payload, RECEIVED)

    assert reading.time_source is TimeSource.DEVICE


@pytest.mark.parametrize(
    "topic, payload, reason",
    [
        (f"{PRO3EM}/events/rpc", b'{"method": "NotifyStatus", "params": {', "invalid_json"),
        (f"{PRO3EM}/status/switch:0", b"{'apower': 1}", "invalid_json"),
        (f"{PRO3EM}/events/rpc", b'{"method": "NotifyStatus", "params": []}', "schema_violation"),
        (f"{PRO3EM}/events/rpc", b'{"method": 5}', "schema_violation"),
        (f"{PRO3EM}/events/rpc", b'{"method": "NotifyStatus", "src": 7, "params": {}}', "schema_violation"),
        (f"{PRO3EM}/events/rpc", b'{"method": "NotifyStatus", "params": {"ts": "now"}}', "schema_violation"),
        (
            f"{PRO3EM}/events/rpc",
            b'{"method": "NotifyStatus", "params": {"em:0": {"a_act_power": 1e400}}}',
            "schema_violation",
        ),
        (f"{PRO3EM}/events/rpc", b"[]", "schema_violation"),
        (f"{PRO3EM}/status/switch:0", b"[1, 2]", "schema_violation"),
        ("/status/switch:0", b'{"apower": 1}', "schema_violation"),
        ("/events/rpc", b'{"method": "NotifyStatus", "params": {"em:0": {}}}', "schema_violation"),
    ],
)
def test_bad_messages_are_refused_with_a_reason(topic: str, payload: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as refused:
        ShellyDecoder().decode(topic, payload, RECEIVED)

    assert refused.value.reason == reason


@pytest.mark.parametrize(
    "params",
    [
        {"switch:0": {"aenergy": 5, "temperature": [1, 2], "apower": True}},
        {"switch:0": [1, 2, 3], "em:0": "on", "emdata:0": 12},
        {"devicepower:0": {"battery": {"percent": "full"}}, "temperature:0": {"tC": {"nested": 1}}},
        {"devicepower:0": {"battery": {"percent": 250}}, "humidity:0": {"rh": 40}},
        {"switch:0": {"a": {"b": {"c": {"d": {"e": {"f": None}}}}}}},
        {":": {}, "switch:": {"apower": 1}, "switch:0:extra": {"apower": 2}},
    ],
)
def test_hostile_shapes_never_escape_as_other_exceptions(params: dict[str, Any]) -> None:
    decoder = ShellyDecoder()
    for method in ("NotifyFullStatus", "NotifyStatus", "NotifyStatus"):
        readings = decoder.decode(f"{PRO3EM}/events/rpc", rpc(method, PRO3EM, ts=TS, **params), RECEIVED)
        assert all(0 <= (r.battery_level or 0) <= 100 for r in readings)
        assert all(r.quantity.split(".")[0] in params for r in readings)


def test_only_instance_component_keys_give_readings() -> None:
    params = {
        "switch:": {"apower": 1},
        "switch:0:x": {"apower": 2},
        "Switch:0": {"apower": 3},
        "switch:1": {"apower": 4},
    }

    readings = ShellyDecoder().decode(f"{PRO3EM}/events/rpc", rpc("NotifyStatus", PRO3EM, ts=TS, **params), RECEIVED)

    assert [r.quantity for r in readings] == ["switch:1.apower"]
