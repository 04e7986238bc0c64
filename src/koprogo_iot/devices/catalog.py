"""What each device format offers a sensor: what its device id is, which fields it reads, in which unit.

Registration checks a sensor's `device_field` here, so that a typo is a 422 naming what the format offers rather
than a sensor that never receives anything. Closed formats (Shelly, and Tasmota's energy monitor) read a known list
of fields; the others name fields by a rule (LoRaWAN codecs flatten their own output, wmbusmeters suffixes units),
which `describe` applies to give the field's unit and kind, exactly as the decoders do.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from koprogo_iot.devices import lorawan, shelly, tasmota, wmbus
from koprogo_iot.devices.base import ValueKind
from koprogo_iot.domain.errors import InvalidValue
from koprogo_iot.domain.sensors import DeviceFormat


@dataclass(frozen=True, slots=True)
class FieldInfo:
    field: str
    unit: str  # as the device states it ("Wh", "m3", "C"); "" when the format does not say
    kind: ValueKind
    description: str = ""


@dataclass(frozen=True, slots=True)
class FormatInfo:
    format: DeviceFormat
    label: str
    device_id: str  # what the sensor id must be for this format
    field_rule: str  # how the format names its fields
    fields: tuple[FieldInfo, ...]  # every field of a closed format; the usual ones of an open format
    closed: bool  # only the listed fields exist
    _describe: Callable[[str], FieldInfo | None]

    def describe(self, field: str) -> FieldInfo:
        """The field's unit and kind, or InvalidValue naming the rule and what this format offers."""
        found = self._describe(field.strip())
        if found is None:
            offered = ", ".join(f.field for f in self.fields)
            listing = "one of" if self.closed else "e.g."
            raise InvalidValue(
                f"device_field: {field!r} is not a {self.label} field: {self.field_rule}; {listing} {offered}"
            )
        return found


# --- Shelly: components and the values the decoder reads of each

_SHELLY_FIELD = re.compile(r"([a-z][a-z0-9_]*):(\d+)\.(.+)")


def _shelly(field: str) -> FieldInfo | None:
    match = _SHELLY_FIELD.fullmatch(field)
    if match is None:
        return None
    component, _, path = match.groups()
    for known, unit, kind in shelly.FIELDS.get(component, ()):
        if known == path:
            return FieldInfo(field, unit, kind)
    return None


_SHELLY_FIELDS = tuple(
    FieldInfo(f"{component}:0.{path}", unit, kind)
    for component, paths in shelly.FIELDS.items()
    for path, unit, kind in paths
)

# --- LoRaWAN network servers: the device profile's codec output, flattened

_CODEC_FIELD = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
_CODEC_EXAMPLES = ("total_m3", "water.total_m3", "flow_m3h", "energy_kwh", "power_w", "temperature_degc", "battery")


def _codec(field: str) -> FieldInfo | None:
    if not _CODEC_FIELD.fullmatch(field):
        return None
    kind, unit = lorawan.kind_and_unit(field)
    return FieldInfo(field, unit, kind)


def _examples(describe: Callable[[str], FieldInfo | None], names: tuple[str, ...]) -> tuple[FieldInfo, ...]:
    """The fields of `names` as the format's rule reads them (each a valid name of that format)."""
    found = [describe(name) for name in names]
    return tuple(field for field in found if field is not None)


_CODEC_RULE = (
    "the codec's output flattened with dots ({'water': {'total_m3': 1.2}} gives water.total_m3); the unit comes "
    f"from the name's suffix ({', '.join(suffix for suffix, _ in lorawan.UNIT_SUFFIXES)})"
)

# --- wmbusmeters: fields whose name ends with a unit


def _wmbus(field: str) -> FieldInfo | None:
    unit = wmbus.unit_of(field)
    return None if unit is None else FieldInfo(field, unit, wmbus.kind_of(field, unit))


_WMBUS_EXAMPLES = (
    "total_m3",
    "target_m3",
    "flow_m3h",
    "flow_temperature_c",
    "external_temperature_c",
    "total_energy_consumption_kwh",
    "volume_flow_m3h",
    "power_kw",
)

# --- Tasmota: <sensor>.<value>, the energy monitor's values known


_TASMOTA_FIELD = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_]+)(\.\d+)?")


def _tasmota(field: str) -> FieldInfo | None:
    match = _TASMOTA_FIELD.fullmatch(field)
    if match is None:
        return None
    sensor, name, _ = match.groups()
    if sensor == "ENERGY":
        known = tasmota.ENERGY_FIELDS.get(name)
        return None if known is None else FieldInfo(field, known[0], known[1])
    kind = ValueKind.CUMULATIVE if sensor == "COUNTER" else ValueKind.INSTANTANEOUS
    return FieldInfo(field, tasmota.default_unit(name), kind)


FORMATS: dict[DeviceFormat, FormatInfo] = {
    info.format: info
    for info in (
        FormatInfo(
            DeviceFormat.SHELLY,
            "Shelly (Gen2+)",
            "the device id, e.g. shellypro3em-a8032abe54dc",
            "<component>:<instance>.<value>",
            _SHELLY_FIELDS,
            True,
            _shelly,
        ),
        FormatInfo(
            DeviceFormat.CHIRPSTACK,
            "ChirpStack v4",
            "the DevEUI (16 hexadecimal digits, any case)",
            _CODEC_RULE,
            _examples(_codec, _CODEC_EXAMPLES),
            False,
            _codec,
        ),
        FormatInfo(
            DeviceFormat.TTN,
            "The Things Stack v3",
            "the DevEUI (16 hexadecimal digits, any case)",
            _CODEC_RULE,
            _examples(_codec, _CODEC_EXAMPLES),
            False,
            _codec,
        ),
        FormatInfo(
            DeviceFormat.WMBUS,
            "wmbusmeters",
            "the meter id of the telegram (`id`, e.g. 00112233)",
            f"a field of the telegram ending with its unit ({', '.join(s for s, _ in wmbus.UNITS)})",
            _examples(_wmbus, _WMBUS_EXAMPLES),
            False,
            _wmbus,
        ),
        FormatInfo(
            DeviceFormat.TASMOTA,
            "Tasmota",
            "the device's Topic (e.g. tasmota_8A3F1C)",
            "<sensor>.<value>[.<channel>] of the SENSOR message; for the energy monitor ENERGY.<value>, "
            "not Today, Yesterday or Period (slices of Total)",
            tuple(FieldInfo(f"ENERGY.{name}", unit, kind) for name, (unit, kind) in tasmota.ENERGY_FIELDS.items())
            + (FieldInfo("AM2301.Temperature", "C", ValueKind.INSTANTANEOUS),),
            False,
            _tasmota,
        ),
    )
}


def describe(device_format: DeviceFormat, field: str) -> FieldInfo:
    """What `field` of a device of `device_format` is (InvalidValue when the format has no such field)."""
    return FORMATS[device_format].describe(field)
