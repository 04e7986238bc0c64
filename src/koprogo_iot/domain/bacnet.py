"""BACnet points: which property of which object of which building controller feeds which native sensor.

Siemens Desigo (PXC, DXR) and Climatix controllers speak BACnet/IP. The poller (`koprogo_iot.bacnet`) reads each
point's property at its interval and publishes the value, times `scale`, as the native reading of the point's
sensor. This module only describes and validates the configuration: no BACnet library, no I/O.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TypeVar
from uuid import UUID

from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.errors import InvalidValue
from koprogo_iot.domain.sensors import MAX_SAMPLING_INTERVAL, MIN_SAMPLING_INTERVAL

BACNET_IP_PORT = 47808  # 0xBAC0, the BACnet/IP default
# Object and device instances are 22-bit numbers; 4194303 is the wildcard ("any device"), never a real instance.
MAX_INSTANCE = 4_194_302
_E = TypeVar("_E", bound=StrEnum)


class ObjectType(StrEnum):
    """The object types a point may read, named as BACnet names them (and as the BMS integrator's lists do)."""

    ANALOG_INPUT = "analog-input"  # a measured value: temperature, flow, power
    ANALOG_OUTPUT = "analog-output"  # a commanded value: valve position, set point sent to a drive
    ANALOG_VALUE = "analog-value"  # a computed or configured value: a meter total kept by the controller
    ACCUMULATOR = "accumulator"  # a pulse count (Unsigned): an energy or water index
    PULSE_CONVERTER = "pulse-converter"  # a pulse count already scaled by the controller (Real)


class PropertyIdentifier(StrEnum):
    PRESENT_VALUE = "present-value"
    PULSE_RATE = "pulse-rate"  # accumulator: pulses counted over its limit-monitoring interval
    COUNT = "count"  # pulse-converter: the raw pulse count behind its present value


# Properties that hold a number for each object type: anything else would be a point that can never publish.
_PROPERTIES: dict[ObjectType, frozenset[PropertyIdentifier]] = {
    ObjectType.ACCUMULATOR: frozenset({PropertyIdentifier.PRESENT_VALUE, PropertyIdentifier.PULSE_RATE}),
    ObjectType.PULSE_CONVERTER: frozenset({PropertyIdentifier.PRESENT_VALUE, PropertyIdentifier.COUNT}),
}


def controller_address(text: str) -> str:
    """`IP[:port]` normalized to `IP:port` (port 47808 when absent); an error names what is wrong."""
    host, colon, port_text = text.strip().partition(":")
    try:
        ip = ipaddress.IPv4Address(host)
    except ValueError:
        raise InvalidValue(f"address must be a controller's IPv4 address with an optional port, not {text!r}") from None
    if ip.is_unspecified or ip.is_multicast or ip == ipaddress.IPv4Address("255.255.255.255"):
        raise InvalidValue(f"address must be one controller's address, not {ip}")
    port = BACNET_IP_PORT
    if colon:
        if not port_text.isdecimal() or not 1 <= int(port_text) <= 65535:
            raise InvalidValue(f"address port must be a number from 1 to 65535, not {port_text!r}")
        port = int(port_text)
    return f"{ip}:{port}"


def _instance(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INSTANCE:
        raise InvalidValue(f"{name} must be a whole number from 0 to {MAX_INSTANCE}")
    return value


@dataclass(frozen=True, slots=True)
class BacnetPoint:
    """One BACnet object property of one controller, published as the readings of one native sensor.

    `device_instance`, when given, is checked on every poll: a controller replaced or readdressed by mistake is
    reported instead of feeding another controller's values to the sensor. `scale` multiplies the raw value (an
    accumulator's pulse count times the meter's units per pulse, Wh to kWh, ...) before the sensor's own calibration.
    """

    organization_id: UUID
    building_id: UUID
    sensor_id: UUID
    address: str
    object_type: ObjectType
    object_instance: int
    polling_interval: int
    property_identifier: PropertyIdentifier = PropertyIdentifier.PRESENT_VALUE
    device_instance: int | None = None
    scale: float = 1.0
    id: UUID = field(default_factory=uuid.uuid4)
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", controller_address(self.address))
        object_type = _member(ObjectType, self.object_type, "object type")
        object.__setattr__(self, "object_type", object_type)
        prop = _member(PropertyIdentifier, self.property_identifier, "property identifier")
        allowed = _PROPERTIES.get(object_type, frozenset({PropertyIdentifier.PRESENT_VALUE}))
        if prop not in allowed:
            names = ", ".join(sorted(p.value for p in allowed))
            raise InvalidValue(f"property identifier of {object_type.value} objects must be one of {names}, not {prop}")
        object.__setattr__(self, "property_identifier", prop)
        _instance(self.object_instance, "object instance")
        if self.device_instance is not None:
            _instance(self.device_instance, "device instance")
        if not MIN_SAMPLING_INTERVAL <= self.polling_interval <= MAX_SAMPLING_INTERVAL:
            raise InvalidValue(
                f"polling interval must be between {MIN_SAMPLING_INTERVAL} s and {MAX_SAMPLING_INTERVAL} s (24 h)"
            )
        if not math.isfinite(self.scale) or self.scale == 0:
            raise InvalidValue("scale must be a finite number other than zero")

    @property
    def object_identifier(self) -> str:
        """As BACnet tools write it: `analog-input,3`."""
        return f"{self.object_type.value},{self.object_instance}"

    def changed(self, **changes: object) -> BacnetPoint:
        """A copy with `changes` applied, validated again, and `updated_at` set to now."""
        return dataclasses.replace(self, **changes, updated_at=utcnow())  # type: ignore[arg-type]

    def value(self, raw: float) -> float:
        """The value published for a raw value the controller answered."""
        return raw * self.scale


def _member(enum: type[_E], value: object, name: str) -> _E:
    try:
        return enum(str(value))
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        raise InvalidValue(f"{name} must be one of {allowed}, not {value!r}") from None
