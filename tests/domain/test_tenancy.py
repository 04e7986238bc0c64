"""People and their rights: owners read their units and their building's common meters."""

import uuid

import pytest

from koprogo_iot.domain.access import Principal
from koprogo_iot.domain.errors import Forbidden, InvalidValue
from koprogo_iot.domain.sensors import IoTSensor, SensorType
from koprogo_iot.domain.tenancy import Role, User

ORG, BUILDING, OTHER_BUILDING = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
MY_UNIT, NEIGHBOUR_UNIT = uuid.uuid4(), uuid.uuid4()


def sensor(building: uuid.UUID = BUILDING, unit: uuid.UUID | None = None, org: uuid.UUID = ORG) -> IoTSensor:
    return IoTSensor(
        organization_id=org,
        building_id=building,
        unit_id=unit,
        sensor_id=uuid.uuid4().hex,
        sensor_type=SensorType.GAS,
        manufacturer="Elster",
        model="BK-G4",
        location="x",
        unit_of_measure="m³",
    )


def test_owner_must_have_units_and_others_must_not() -> None:
    with pytest.raises(InvalidValue, match="owner must be linked"):
        User(ORG, "o@example.org", "O", Role.OWNER, "hash")
    with pytest.raises(InvalidValue, match="only owners"):
        User(ORG, "s@example.org", "S", Role.SYNDIC, "hash", frozenset({MY_UNIT}))


def test_email_is_normalized_and_checked() -> None:
    assert User(ORG, "  Syndic@Example.ORG ", "S", Role.SYNDIC, "h").email == "syndic@example.org"
    with pytest.raises(InvalidValue, match="not an email"):
        User(ORG, "nobody", "S", Role.SYNDIC, "h")


def test_owner_reads_own_units_and_common_meters_of_their_building_only() -> None:
    owner = Principal(uuid.uuid4(), ORG, Role.OWNER, frozenset({MY_UNIT}), frozenset({BUILDING}))
    assert owner.can_read(sensor(unit=MY_UNIT))
    assert owner.can_read(sensor())  # common meter of my building
    assert not owner.can_read(sensor(unit=NEIGHBOUR_UNIT))
    assert not owner.can_read(sensor(building=OTHER_BUILDING))
    assert not owner.can_read(sensor(unit=MY_UNIT, org=uuid.uuid4()))
    with pytest.raises(Forbidden):
        owner.require_manager()


def test_syndic_reads_everything_of_their_organization_only() -> None:
    syndic = Principal(uuid.uuid4(), ORG, Role.SYNDIC, frozenset(), frozenset())
    assert syndic.can_read(sensor(unit=NEIGHBOUR_UNIT))
    assert not syndic.can_read(sensor(org=uuid.uuid4()))
    syndic.require_manager()
    with pytest.raises(Forbidden):
        syndic.require_superadmin()
