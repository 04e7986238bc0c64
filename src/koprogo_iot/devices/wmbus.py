"""wmbusmeters JSON telegrams (Kamstrup multical21, flowIQ 2200, kamheat and other wireless M-Bus meters).

wmbusmeters is not MQTT-native: the installer pipes each telegram to `mosquitto_pub`, so the topic is free and
ignored here. The unit is the field-name suffix; fields with other suffixes (`_m3c`, `_date`...) or non-numeric
values (`time_dry`, older releases' quoted `"current_kw": "0.000"`) are skipped.

Decisions: `id` must be a string — a numeric id has lost its leading zeros and would silently name another meter, so
it is refused as a schema violation. `timestamp` is the wmbusmeters host's clock when it received the radio telegram
(meters send no time), the closest analogue of a LoRaWAN network time: TimeSource.NETWORK.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from koprogo_iot.devices.base import DecodeError, DeviceReading, TimeSource, ValueKind
from koprogo_iot.devices.parsing import is_number, message_time, parse_json, parse_timestamp

UNITS = (("_m3h", "m3/h"), ("_m3", "m3"), ("_kwh", "kWh"), ("_kw", "kW"), ("_gj", "GJ"), ("_c", "C"), ("_h", "h"))

# Kamstrup compact frames carry 127 (0x7F) when the meter has no flow temperature, e.g. while the pipe is dry.
_SENTINELS = {"flow_temperature_c": 127}


def unit_of(field: str) -> str | None:
    for suffix, unit in UNITS:
        if field.endswith(suffix) and len(field) > len(suffix):
            return unit
    return None


def kind_of(field: str, unit: str) -> ValueKind:
    if field.startswith("total_"):  # total_m3, total_volume_m3, total_energy_consumption_kwh, total_energy_backward_kwh
        return ValueKind.CUMULATIVE
    if field.startswith("target_"):  # the index frozen at the billing date (month start for multical21)
        return ValueKind.SNAPSHOT
    if unit == "h":  # operating-hour counters: on_time_h, on_time_at_error_h
        return ValueKind.CUMULATIVE
    return ValueKind.INSTANTANEOUS  # flows, powers, temperatures, max_* of the current period


def _is_date(value: object) -> bool:
    try:
        date.fromisoformat(str(value)[:10])
    except ValueError:
        return False
    return True


def _status_flags(telegram: dict[str, Any]) -> frozenset[str] | None:
    # Newer releases send `status`, older ones only `current_status`; flags are space-separated, "OK" means none.
    status = telegram.get("status", telegram.get("current_status"))
    if status is None:
        return None  # this meter driver reports no status: nothing to raise or clear
    if not isinstance(status, str):
        raise DecodeError("schema_violation", "status must be a string")
    return frozenset(flag for flag in status.replace(",", " ").split() if flag != "OK")


class WmbusDecoder:
    """Decodes wmbusmeters JSON output."""

    format: str = "wmbus"

    def decode(self, topic: str, payload: bytes, received_at: datetime) -> list[DeviceReading]:
        """One reading per numeric field with a known unit suffix."""
        telegram = parse_json(payload, dict[str, Any])
        meter_id = telegram.get("id")
        if not isinstance(meter_id, str) or not meter_id:
            raise DecodeError("schema_violation", "id must be a non-empty string (a number loses leading zeros)")
        flags = _status_flags(telegram)
        claimed = parse_timestamp(telegram.get("timestamp"))
        timestamp, source = message_time(claimed, TimeSource.NETWORK, received_at)
        rssi = telegram.get("rssi_dbm")
        signal = round(rssi) if is_number(rssi) and abs(rssi) < 1000 else None
        # kamheat sends target_date "2000-00-00" before its first billing date: its target values are meaningless.
        no_target = "target_date" in telegram and not _is_date(telegram["target_date"])
        readings = []
        for field, value in telegram.items():
            unit = unit_of(field)
            if unit is None or not is_number(value) or value == _SENTINELS.get(field):
                continue
            kind = kind_of(field, unit)
            if kind is ValueKind.SNAPSHOT and no_target:
                continue
            readings.append(
                DeviceReading(
                    device=meter_id,
                    quantity=field,
                    value=float(value),
                    unit=unit,
                    kind=kind,
                    timestamp=timestamp,
                    time_source=source,
                    signal_strength=signal,
                    status_flags=flags,
                )
            )
        return readings
