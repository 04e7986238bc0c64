"""Units of measure: the spellings devices use, and conversion between units of one dimension."""

from __future__ import annotations

# Spelling variants devices and people use -> our canonical symbol.
_ALIASES = {
    "m3": "m³",
    "m^3": "m³",
    "l": "L",
    "litre": "L",
    "liter": "L",
    "l/h": "L/h",
    "m3/h": "m³/h",
    "m3h": "m³/h",
    "c": "°C",
    "degc": "°C",
    "celsius": "°C",
    "wh": "Wh",
    "kwh": "kWh",
    "mwh": "MWh",
    "gj": "GJ",
    "mj": "MJ",
    "w": "W",
    "kw": "kW",
    "v": "V",
    "a": "A",
    "hz": "Hz",
    "rh": "%",
    "percent": "%",
}

# canonical unit -> (dimension, factor to the dimension's base unit)
_SCALE = {
    "Wh": ("energy", 1.0),
    "kWh": ("energy", 1e3),
    "MWh": ("energy", 1e6),
    "MJ": ("energy", 1e6 / 3600),  # heat meters (wM-Bus) count in joules: 1 MJ = 277.8 Wh
    "GJ": ("energy", 1e9 / 3600),
    "W": ("power", 1.0),
    "kW": ("power", 1e3),
    "L": ("volume", 1.0),
    "m³": ("volume", 1e3),
    "L/h": ("flow", 1.0),
    "m³/h": ("flow", 1e3),
}


def canonical(unit: str) -> str:
    """`unit` in our spelling: "m3" -> "m³", "C" -> "°C"; unknown units come back trimmed."""
    stripped = unit.strip()
    return _ALIASES.get(stripped.lower(), stripped)


def conversion_factor(source: str, target: str) -> float | None:
    """What to multiply a value in `source` by to get `target`; None when they measure different things.

    An empty source unit (a LoRaWAN codec that does not say) is taken to be the target unit.
    """
    if not source:
        return 1.0
    source, target = canonical(source), canonical(target)
    if source == target:
        return 1.0
    if source in _SCALE and target in _SCALE and _SCALE[source][0] == _SCALE[target][0]:
        return _SCALE[source][1] / _SCALE[target][1]
    return None
