"""Shelly Gen2+ devices (Plus, Pro, Gen3, Gen4) over MQTT: RPC status notifications and component status topics.

Topics after our prefix: `<device prefix>/events/rpc` carries JSON-RPC notifications (NotifyStatus,
NotifyFullStatus; NotifyEvent is ignored), `<device prefix>/status/<component>:<id>` one component's whole status
without an envelope; `<device prefix>/online` and any other topic carry no readings.

NotifyStatus sends only the changed keys, a removed key being null: the decoder keeps each device's last known status
and overlays updates on it, as the Shelly "Notifications" page prescribes. Readings are emitted only for quantities
present in the incoming message; the battery level comes from the overlaid status, so a partial update from a battery
device still carries the level reported at its last full status.

Quantity = `<component key>.<field path>`, e.g. `switch:0.aenergy.total`, `emdata:0.total_act`, `temperature:0.tC`.
Every reading carries the device's Wi-Fi signal (`wifi.rssi`, dBm) and, when its components report them, their
`errors` (`overtemp`, `overpower`...) as status flags: an empty set when a reporting component has none.
Gen1 devices (`shellies/...` topics, plain-text values in watt-minutes) are not handled here.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import msgspec

from koprogo_iot.devices.base import DecodeError, DeviceReading, TimeSource, ValueKind
from koprogo_iot.devices.parsing import from_epoch, is_number, message_time, parse_json

_I, _C = ValueKind.INSTANTANEOUS, ValueKind.CUMULATIVE
_SWITCH = (
    ("apower", "W", _I),
    ("voltage", "V", _I),
    ("current", "A", _I),
    ("freq", "Hz", _I),
    ("aenergy.total", "Wh", _C),
    ("ret_aenergy.total", "Wh", _C),
    ("temperature.tC", "C", _I),
)
FIELDS: dict[str, tuple[tuple[str, str, ValueKind], ...]] = {
    "switch": _SWITCH,
    "pm1": _SWITCH,
    "em": tuple((f"{phase}_act_power", "W", _I) for phase in ("a", "b", "c", "total")),
    "emdata": tuple((f"{p}_total_act{ret}_energy", "Wh", _C) for p in "abc" for ret in ("", "_ret"))
    + (("total_act", "Wh", _C), ("total_act_ret", "Wh", _C)),
    "em1": (("act_power", "W", _I),),
    "em1data": (("total_act_energy", "Wh", _C), ("total_act_ret_energy", "Wh", _C)),
    "temperature": (("tC", "C", _I),),
    "humidity": (("rh", "%", _I),),
}
_COMPONENT_KEY = re.compile(r"[a-z][a-z0-9_]*:\d+")  # `switch:0`; `sys`, `wifi`... have no instances and no readings
_KEPT = ("wifi",)  # components without readings whose status is kept for what they say of the device
_MAX_DEVICES = 10_000  # least recently heard devices are forgotten beyond this: a bound on memory, not a limit in use
_MAX_DEPTH = 4  # component statuses nest two levels (aenergy.by_minute); deeper values are stored whole


class _Rpc(msgspec.Struct):
    method: str | None = None  # absent in replies to our own RPC calls
    src: str | None = None
    params: dict[str, Any] = {}


def _overlay(base: dict[str, Any], update: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    """`base` with `update` applied: nested objects merged, null values removing their key."""
    for key, value in update.items():
        if value is None:
            base.pop(key, None)
        elif isinstance(value, dict) and depth < _MAX_DEPTH:
            current = base.get(key)
            base[key] = _overlay(current if isinstance(current, dict) else {}, value, depth + 1)
        else:
            base[key] = value
    return base


def _lookup(status: dict[str, Any], path: str) -> object:
    value: object = status
    for key in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _signal(status: dict[str, Any]) -> int | None:
    rssi = _lookup(status, "wifi.rssi")
    return round(rssi) if is_number(rssi) and -150 < rssi < 0 else None


def _errors(components: dict[str, Any]) -> frozenset[str] | None:
    """The errors the message's components report; None when none of them has an `errors` list."""
    found: set[str] | None = None
    for component in components.values():
        errors = component.get("errors") if isinstance(component, dict) else None
        if isinstance(errors, list):
            found = (found or set()) | {str(error).upper() for error in errors}
    return None if found is None else frozenset(found)


def _battery(status: dict[str, Any]) -> float | None:
    for key, component in status.items():
        if key.startswith("devicepower:") and isinstance(component, dict):
            percent = _lookup(component, "battery.percent")
            if is_number(percent) and 0 <= percent <= 100:
                return float(percent)
    return None


class ShellyDecoder:
    """Decodes Shelly Gen2+ MQTT messages, keeping each device's last known status."""

    format: str = "shelly"

    def __init__(self) -> None:
        self._status: dict[str, dict[str, Any]] = {}  # device key -> component key -> status

    def decode(self, topic: str, payload: bytes, received_at: datetime) -> list[DeviceReading]:
        """Readings of the quantities present in one notification or component status."""
        if topic.endswith("/events/rpc"):
            rpc = parse_json(payload, _Rpc)
            if rpc.method not in ("NotifyStatus", "NotifyFullStatus"):
                return []
            device = rpc.src or topic.removesuffix("/events/rpc")
            ts = rpc.params.get("ts")
            if ts is not None and not is_number(ts):
                raise DecodeError("schema_violation", "params.ts must be a number")
            claimed = from_epoch(ts)
            components = {
                key: value for key, value in rpc.params.items() if _COMPONENT_KEY.fullmatch(key) or key in _KEPT
            }
            replaced: set[str] = set()
            if rpc.method == "NotifyFullStatus":  # everything the device has: what it no longer reports is gone
                self._status.pop(device, None)
        elif "/status/" in topic:
            device, _, key = topic.rpartition("/status/")
            if not (_COMPONENT_KEY.fullmatch(key) or key in _KEPT):
                return []  # `status/sys`...: nothing we read
            components, claimed, replaced = {key: parse_json(payload, dict[str, Any])}, None, {key}
        else:
            return []
        if not device:
            raise DecodeError("schema_violation", f"no device in src nor in the topic {topic!r}")
        state = self._device_state(device)
        for key in replaced:
            state.pop(key, None)
        _overlay(state, components)
        battery, signal, flags = _battery(state), _signal(state), _errors(components)
        timestamp, source = message_time(claimed, TimeSource.DEVICE, received_at)
        readings = []
        for key, incoming in components.items():
            if not isinstance(incoming, dict):
                continue
            for path, unit, kind in FIELDS.get(key.partition(":")[0], ()):
                value = _lookup(incoming, path)
                if is_number(value):
                    quantity = f"{key}.{path}"
                    number = float(value)
                    readings.append(
                        DeviceReading(device, quantity, number, unit, kind, timestamp, source, battery, signal, flags)
                    )
        return readings

    def _device_state(self, device: str) -> dict[str, Any]:
        # Re-inserted on every message, so the dict's order runs from least to most recently heard.
        state = self._status.pop(device, None) or {}
        if len(self._status) >= _MAX_DEVICES:
            del self._status[next(iter(self._status))]
        self._status[device] = state
        return state
