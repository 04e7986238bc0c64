"""BACnet point validation: what a point may read, and the errors naming what is wrong."""

import uuid

import pytest

from koprogo_iot.domain.bacnet import BacnetPoint, ObjectType, PropertyIdentifier, controller_address
from koprogo_iot.domain.errors import InvalidValue


def make(**changes: object) -> BacnetPoint:
    fields: dict[str, object] = {
        "organization_id": uuid.uuid4(),
        "building_id": uuid.uuid4(),
        "sensor_id": uuid.uuid4(),
        "address": "192.168.10.21",
        "object_type": "accumulator",
        "object_instance": 3,
        "polling_interval": 60,
    }
    return BacnetPoint(**(fields | changes))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "normalized"),
    [("192.168.10.21", "192.168.10.21:47808"), (" 10.0.0.5:47809 ", "10.0.0.5:47809"), ("127.0.0.1:1", "127.0.0.1:1")],
)
def test_address_is_ip_and_port_with_the_bacnet_ip_default(given: str, normalized: str) -> None:
    assert controller_address(given) == normalized


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("pxc.local", "IPv4 address"),
        ("192.168.10", "IPv4 address"),
        ("fe80::1", "IPv4 address"),
        ("192.168.10.21:0", "port must be a number from 1 to 65535"),
        ("192.168.10.21:70000", "port must be a number from 1 to 65535"),
        ("192.168.10.21:bac0", "port must be"),
        ("0.0.0.0", "one controller's address"),
        ("255.255.255.255", "one controller's address"),
        ("239.1.2.3", "one controller's address"),
    ],
)
def test_an_address_that_is_not_one_controller_is_refused(address: str, message: str) -> None:
    with pytest.raises(InvalidValue, match=message):
        make(address=address)


def test_defaults_and_the_published_value() -> None:
    point = make(object_type="analog-input", scale=0.5)
    assert point.object_type is ObjectType.ANALOG_INPUT
    assert point.property_identifier is PropertyIdentifier.PRESENT_VALUE
    assert point.object_identifier == "analog-input,3"
    assert point.address == "192.168.10.21:47808" and point.device_instance is None
    assert point.value(21.5) == 10.75


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"object_type": "multi-state-input"}, "object type must be one of analog-input, "),
        ({"property_identifier": "status-flags"}, "property identifier must be one of present-value"),
        (
            {"object_type": "analog-input", "property_identifier": "pulse-rate"},
            "analog-input objects must be one of present-value,? not",
        ),
        ({"object_type": "accumulator", "property_identifier": "count"}, "present-value, pulse-rate, not count"),
        ({"object_instance": -1}, "object instance must be a whole number from 0 to 4194302"),
        ({"object_instance": 4_194_303}, "object instance"),
        ({"object_instance": True}, "object instance"),
        ({"device_instance": 4_194_303}, "device instance must be a whole number from 0 to 4194302"),
        ({"polling_interval": 9}, "polling interval must be between 10 s and 86400 s"),
        ({"polling_interval": 86_401}, "polling interval"),
        ({"scale": 0.0}, "scale must be a finite number other than zero"),
        ({"scale": float("nan")}, "scale"),
    ],
)
def test_invalid_points_are_refused_with_the_field_named(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidValue, match=message):
        make(**changes)


def test_the_properties_each_object_type_may_read() -> None:
    assert make(property_identifier="pulse-rate").property_identifier is PropertyIdentifier.PULSE_RATE
    converter = make(object_type="pulse-converter", property_identifier="count")
    assert converter.property_identifier is PropertyIdentifier.COUNT


def test_a_change_is_validated_again() -> None:
    point = make()
    moved = point.changed(address="10.1.1.1:47809", scale=-1.0)
    assert (moved.id, moved.address, moved.scale) == (point.id, "10.1.1.1:47809", -1.0)
    assert moved.updated_at >= point.updated_at
    with pytest.raises(InvalidValue, match="polling interval"):
        point.changed(polling_interval=1)
