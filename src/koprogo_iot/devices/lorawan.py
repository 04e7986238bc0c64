"""What the LoRaWAN network servers share: codec output flattened into named quantities, with a kind and unit rule.

The codec (ChirpStack `object`, The Things Stack `decoded_payload`) is written per device model, so names are free.
Nested objects and arrays are flattened with dots (`{"water": {"total_m3": 1.2}}` -> `water.total_m3`,
`{"temp": [20.5, 21]}` -> `temp.0`, `temp.1`); only numbers become readings (booleans and strings are skipped).

Rule on the last name segment (array indices ignored), lowercased:
- unit from a suffix: `_m3h` m3/h, `_m3` m3, `_l` L, `_kwh` kWh, `_wh` Wh, `_kw` kW, `_w` W, `_v` V, `_degc` C,
  `_pct`/`_percent` %, `_dbm` dBm; otherwise "" (a wrong unit is worse than none: `_c` and `_a` are not read as
  Celsius and ampere because codecs also use them for phase C / phase A);
- CUMULATIVE when the name without its unit suffix starts or ends with `total`, or ends with `index`, `energy` or
  `counter`, or the unit is an energy (kWh, Wh); INSTANTANEOUS otherwise.
  So `total_m3`, `volume_total`, `meterIndex`, `activeEnergy`, `pulse_counter`, `consumption_kwh` are counters;
  `flow_m3h`, `power_w`, `temperature` are gauges.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from koprogo_iot.devices.base import DeviceReading, TimeSource, ValueKind
from koprogo_iot.devices.parsing import is_number

MAX_DEPTH = 8  # codec output is shallow; the bound keeps a hostile payload from exhausting the stack

UNIT_SUFFIXES = (
    ("_m3h", "m3/h"),
    ("_m3", "m3"),
    ("_l", "L"),
    ("_kwh", "kWh"),
    ("_wh", "Wh"),
    ("_kw", "kW"),
    ("_w", "W"),
    ("_v", "V"),
    ("_degc", "C"),
    ("_pct", "%"),
    ("_percent", "%"),
    ("_dbm", "dBm"),
)
_COUNTER_ENDINGS = ("total", "index", "energy", "counter")
# Codec fields holding the device's battery in percent (the last name segment, lower case): this level becomes
# every reading's battery, so the low-battery rule watches every sensor the device feeds. Volts are not a level.
BATTERY_FIELDS = frozenset({"battery", "battery_pct", "battery_percent", "batterylevel", "battery_level", "bat_pct"})


def flatten(value: Any, prefix: str = "", depth: int = 0) -> Iterator[tuple[str, float]]:
    """The numeric leaves of a decoded payload with their dotted names."""
    if is_number(value):
        if prefix:
            yield prefix, float(value)
        return
    if depth >= MAX_DEPTH:
        return
    if isinstance(value, dict):
        items: Iterator[tuple[Any, Any]] = iter(value.items())
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for key, child in items:
        yield from flatten(child, f"{prefix}.{key}" if prefix else str(key), depth + 1)


def kind_and_unit(quantity: str) -> tuple[ValueKind, str]:
    """The kind and unit the naming rule (module docstring) gives a flattened quantity name."""
    segments = [segment for segment in quantity.split(".") if not segment.isdigit()]
    name = segments[-1].lower() if segments else ""
    base, unit = name, ""
    for suffix, suffix_unit in UNIT_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            base, unit = name[: -len(suffix)], suffix_unit
            break
    counter = base.startswith("total") or base.endswith(_COUNTER_ENDINGS) or unit in ("kWh", "Wh")
    return (ValueKind.CUMULATIVE if counter else ValueKind.INSTANTANEOUS), unit


def readings(
    device: str,
    decoded: dict[str, Any],
    timestamp: datetime,
    time_source: TimeSource,
    signal_strength: int | None,
) -> list[DeviceReading]:
    """One reading per numeric value of the codec output, each with the device's battery level if it sends one."""
    values = list(flatten(decoded))
    battery = next((v for q, v in values if q.rsplit(".", 1)[-1].lower() in BATTERY_FIELDS and 0 <= v <= 100), None)
    result = []
    for quantity, value in values:
        kind, unit = kind_and_unit(quantity)
        result.append(
            DeviceReading(
                device=device,
                quantity=quantity,
                value=value,
                unit=unit,
                kind=kind,
                timestamp=timestamp,
                time_source=time_source,
                battery_level=battery,
                signal_strength=signal_strength,
            )
        )
    return result


def best_rssi(values: Iterator[float | None]) -> int | None:
    """The strongest signal among the receiving gateways (dBm), rounded; None if none reported one."""
    present = [value for value in values if value is not None]
    return round(max(present)) if present else None
