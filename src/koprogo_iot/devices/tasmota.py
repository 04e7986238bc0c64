"""Tasmota telemetry: readings from `tele/<topic>/SENSOR` (the `LWT`, `STATE` and other topics carry none).

Quantities are `ENERGY.<field>` for the energy monitor and `<sensor>.<field>` for the other sensors of the message
(`AM2301.Temperature`, `DS18B20.Temperature`, `COUNTER.C1`); multi-channel devices send arrays, numbered from 0
(`ENERGY.Total.1`). `ENERGY.Today`, `.Yesterday` and `.Period` are skipped: they are slices of `Total` that reset at
local midnight or every TelePeriod, and storing them next to the index would count the energy twice.

`Time` is the device's local time without an offset, unless `SetOption52 1` appends one: the decoder reads it in the
zone it was built with. In the hour repeated when summer time ends the first (summer) occurrence is assumed — set
SetOption52 to remove the ambiguity.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from koprogo_iot.devices.base import DecodeError, DeviceReading, TimeSource, ValueKind
from koprogo_iot.devices.parsing import is_number, message_time, parse_json, parse_timestamp

_I, _C = ValueKind.INSTANTANEOUS, ValueKind.CUMULATIVE
ENERGY_FIELDS = {
    "Total": ("kWh", _C),  # saved to flash only at midnight or on a settings save: can step back after a power cut
    "ExportActive": ("kWh", _C),
    "Power": ("W", _I),
    "ApparentPower": ("VA", _I),
    "ReactivePower": ("var", _I),
    "Factor": ("", _I),
    "Voltage": ("V", _I),
    "Current": ("A", _I),
    "Frequency": ("Hz", _I),
}
_FIXED_UNITS = {"Humidity": "%"}
# Units of the other sensors' values when the message does not say (TempUnit, PressureUnit change the first four).
_DEFAULT_UNITS = {"Temperature": "C", "DewPoint": "C", "Pressure": "hPa", "SeaPressure": "hPa"} | _FIXED_UNITS


def default_unit(field: str) -> str:
    """The unit of a non-energy value named `field` under Tasmota's default settings; "" when it states none."""
    return _DEFAULT_UNITS.get(field, "")


class TasmotaDecoder:
    """Decodes Tasmota SENSOR telemetry; `tz` is the zone of the devices' clocks."""

    format: str = "tasmota"

    def __init__(self, tz: ZoneInfo | None = None) -> None:
        self.tz = tz or ZoneInfo("Europe/Brussels")

    def decode(self, topic: str, payload: bytes, received_at: datetime) -> list[DeviceReading]:
        """The energy monitor's and the other sensors' readings of one SENSOR message."""
        if not (topic.startswith("tele/") and topic.endswith("/SENSOR")) or len(topic) <= len("tele//SENSOR"):
            return []
        device = topic[len("tele/") : -len("/SENSOR")]
        message = parse_json(payload, dict[str, Any])
        timestamp, source = message_time(self._device_time(message.get("Time")), TimeSource.DEVICE, received_at)
        units = {
            "Temperature": _text(message.get("TempUnit"), "C"),
            "DewPoint": _text(message.get("TempUnit"), "C"),
            "Pressure": _text(message.get("PressureUnit"), "hPa"),
            "SeaPressure": _text(message.get("PressureUnit"), "hPa"),
        } | _FIXED_UNITS
        values: list[tuple[str, Any, str, ValueKind]] = []
        for sensor, fields in message.items():
            if not isinstance(fields, dict):
                continue  # Time, TempUnit, PressureUnit
            for field, value in fields.items():
                if sensor == "ENERGY":
                    if field in ENERGY_FIELDS:
                        values.append((f"ENERGY.{field}", value, *ENERGY_FIELDS[field]))
                else:  # COUNTER.C1... are pulse counters; other sensors report gauges
                    kind = _C if sensor == "COUNTER" else _I
                    values.append((f"{sensor}.{field}", value, units.get(field, ""), kind))
        return [
            DeviceReading(device, name, float(number), unit, kind, timestamp, source)
            for quantity, value, unit, kind in values
            for name, number in _channels(quantity, value)
        ]

    def _device_time(self, value: object) -> datetime | None:
        claimed = parse_timestamp(value)
        if claimed is None or claimed.tzinfo is not None:  # SetOption52 1: the offset is in the message
            return claimed
        return claimed.replace(tzinfo=self.tz)


def _channels(quantity: str, value: object) -> list[tuple[str, Any]]:
    """A scalar as itself, an array as one value per channel; anything else (text, objects) as nothing."""
    if is_number(value):
        return [(quantity, value)]
    if isinstance(value, list):
        return [(f"{quantity}.{index}", item) for index, item in enumerate(value) if is_number(item)]
    return []


def _text(value: object, default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str):
        raise DecodeError("schema_violation", "unit fields must be strings")
    return value
