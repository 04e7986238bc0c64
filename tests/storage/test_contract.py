"""The storage contract: every test runs against SQLite and PostgreSQL and must give the same answers."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from koprogo_iot.domain.alerts import AlertStatus, AlertType, ClearAlert, RaiseAlert
from koprogo_iot.domain.dead_letters import DeadLetter
from koprogo_iot.domain.detection import reading_decisions
from koprogo_iot.domain.devices import DeviceSighting, SeenField
from koprogo_iot.domain.errors import Conflict, NotFound
from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.domain.rules import effective_rules
from koprogo_iot.domain.sensors import DeviceFormat, IoTSensor, SensorStatus
from koprogo_iot.domain.tenancy import Organization
from koprogo_iot.storage.ports import AlertFilter, Ingested, SensorFilter, Storage
from koprogo_iot.storage.sql import devices as devices_sql
from koprogo_iot.storage.sql.database import Database
from koprogo_iot.storage.sql.migrations import available
from tests.conftest import Tenant, make_tenant

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def reading(sensor: IoTSensor, minutes: int, value: float, battery: float | None = None) -> Ingested:
    r = IoTReading.measured(sensor, T0 + timedelta(minutes=minutes), value, battery_level=battery)
    return Ingested(r, reading_decisions(sensor, effective_rules(sensor), r, None))


async def test_migrations_are_recorded_and_not_applied_twice(storage: Storage, db: Database) -> None:
    assert await storage.maintenance.migrate() == []
    rows = await db.fetch("SELECT version FROM schema_migrations ORDER BY version")
    assert [r["version"] for r in rows] == [m.version for m in available(db.dialect)]


async def test_tenancy_round_trip(storage: Storage) -> None:
    t = await make_tenant(storage)
    assert await storage.tenancy.get_organization(t.organization.id) == t.organization
    assert await storage.tenancy.get_building(t.organization.id, t.building.id) == t.building
    assert await storage.tenancy.list_units(t.organization.id, t.building.id) == list(t.units)
    owner = await storage.tenancy.find_user_by_email(t.owner.email.upper())
    assert owner == t.owner and owner.unit_ids == {t.units[0].id}
    assert await storage.tenancy.get_user(t.organization.id, t.syndic.id) == t.syndic


async def test_every_lookup_is_scoped_by_organization(storage: Storage) -> None:
    a, b = await make_tenant(storage, "A"), await make_tenant(storage, "B")
    foreign = b.organization.id
    for lookup in (
        storage.tenancy.get_building(foreign, a.building.id),
        storage.tenancy.get_unit(foreign, a.units[0].id),
        storage.tenancy.get_user(foreign, a.syndic.id),
        storage.sensors.get(foreign, a.unit_sensor.id),
    ):
        with pytest.raises(NotFound):
            await lookup
    assert await storage.sensors.find(foreign, a.unit_sensor.sensor_id) is None
    assert {s.id for s in await storage.sensors.select(foreign)} == {
        b.common_sensor.id,
        b.unit_sensor.id,
        b.other_unit_sensor.id,
    }
    assert await storage.readings.recent(foreign, a.unit_sensor.id) == []


async def test_sensors_found_many_at_once_as_one_by_one_and_within_their_organization(storage: Storage) -> None:
    a, b = await make_tenant(storage), await make_tenant(storage)
    sensors = [a.unit_sensor, a.common_sensor, b.unit_sensor]
    keys = [(s.organization_id, s.sensor_id, s.device_field) for s in sensors]
    foreign = (b.organization.id, a.common_sensor.sensor_id, "")  # another organization's device id: not found
    unknown = (a.organization.id, "NO-SUCH-DEVICE", "")
    found = await storage.sensors.find_many([*keys, foreign, unknown])
    assert found == dict(zip(keys, sensors, strict=True))
    for key, sensor in found.items():
        assert await storage.sensors.find(*key) == sensor
    many = [(a.organization.id, f"DEV-{i}", "") for i in range(700)]  # over SQLite's statement chunk
    assert await storage.sensors.find_many([*many, keys[0]]) == {keys[0]: sensors[0]}


async def test_sensor_round_trip_update_and_delete(storage: Storage) -> None:
    t = await make_tenant(storage)
    org = t.organization.id
    assert await storage.sensors.get(org, t.common_sensor.id) == t.common_sensor
    assert await storage.sensors.find(org, t.unit_sensor.sensor_id) == t.unit_sensor
    changed = t.unit_sensor.changed(location="Kitchen", calibration_factor=1.02, status=SensorStatus.MAINTENANCE)
    await storage.sensors.update(changed)
    assert await storage.sensors.get(org, changed.id) == changed
    await storage.readings.ingest([reading(changed, 0, 1.0)])
    await storage.sensors.delete(org, changed.id)
    with pytest.raises(NotFound):
        await storage.sensors.get(org, changed.id)
    with pytest.raises(NotFound):
        await storage.sensors.delete(org, changed.id)


async def test_sensor_ids_are_unique_per_organization(storage: Storage) -> None:
    a, b = await make_tenant(storage, "A"), await make_tenant(storage, "B")
    duplicate = a.unit_sensor.changed(id=uuid.uuid4())
    with pytest.raises(Conflict):
        await storage.sensors.add(duplicate)
    # The same manufacturer id may exist in another organization.
    elsewhere = IoTSensor(
        organization_id=b.organization.id,
        building_id=b.building.id,
        sensor_id=a.unit_sensor.sensor_id,
        sensor_type=a.unit_sensor.sensor_type,
        manufacturer="x",
        model="y",
        location="z",
        unit_of_measure="m³",
    )
    await storage.sensors.add(elsewhere)


async def test_owner_scope_lists_their_units_and_common_sensors(storage: Storage) -> None:
    t = await make_tenant(storage)
    scope = SensorFilter(visible_units=frozenset({t.units[0].id}), visible_buildings=frozenset({t.building.id}))
    visible = await storage.sensors.select(t.organization.id, scope)
    assert {s.id for s in visible} == {t.unit_sensor.id, t.common_sensor.id}
    in_unit = await storage.sensors.select(t.organization.id, SensorFilter(unit_id=t.units[1].id))
    assert [s.id for s in in_unit] == [t.other_unit_sensor.id]


async def test_a_reading_is_stored_once_per_sensor_and_timestamp(storage: Storage) -> None:
    t = await make_tenant(storage)
    first = reading(t.unit_sensor, 0, 10.0)
    assert len(await storage.readings.ingest([first, reading(t.unit_sensor, 5, 10.5)])) == 2
    assert await storage.readings.ingest([first]) == []  # redelivered
    assert await storage.readings.ingest([first, first]) == []
    later = reading(t.unit_sensor, 10, 11.0)
    # Twice in one batch: stored and counted once.
    assert await storage.readings.ingest([first, later, later]) == [later]
    assert await storage.readings.count(t.organization.id, t.unit_sensor.id) == 3


async def test_readings_come_back_newest_first_within_range(storage: Storage) -> None:
    t = await make_tenant(storage)
    await storage.readings.ingest([reading(t.unit_sensor, m, 100 + m, battery=80.0) for m in range(0, 60, 5)])
    org, sid = t.organization.id, t.unit_sensor.id
    everything = await storage.readings.recent(org, sid)
    assert [r.value for r in everything] == [100 + m for m in range(55, -5, -5)]
    assert everything[0].battery_level == 80.0 and everything[0].timestamp == T0 + timedelta(minutes=55)
    window = await storage.readings.recent(org, sid, T0 + timedelta(minutes=10), T0 + timedelta(minutes=20))
    assert [r.value for r in window] == [115.0, 110.0]  # start included, end excluded
    assert len(await storage.readings.recent(org, sid, limit=3)) == 3


async def test_ingest_updates_the_sensor_last_reading_but_never_rewinds_it(storage: Storage) -> None:
    t = await make_tenant(storage)
    await storage.readings.ingest([reading(t.unit_sensor, 10, 5.0, battery=70.0)])
    await storage.readings.ingest([reading(t.unit_sensor, 5, 4.0, battery=None)])  # late, older reading
    sensor = await storage.sensors.get(t.organization.id, t.unit_sensor.id)
    assert sensor.last_reading_at == T0 + timedelta(minutes=10)
    assert sensor.last_value == 5.0 and sensor.last_battery_level == 70.0


async def test_one_active_alert_per_sensor_and_type_updated_by_repeats(storage: Storage) -> None:
    t = await make_tenant(storage)
    org, flow = t.organization.id, t.common_sensor
    await storage.readings.ingest([reading(flow, 0, 55.0)])  # warning
    await storage.readings.ingest([reading(flow, m, 75.0) for m in range(1, 21)])  # critical, 20 repeats
    alerts = await storage.alerts.select(org)
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.occurrences == 21 and alert.severity == "critical" and alert.status is AlertStatus.ACTIVE
    assert alert.reading_value == 75.0 and alert.threshold_value == 50.0
    assert alert.triggered_at == T0 and alert.last_triggered_at == T0 + timedelta(minutes=20)
    # A redelivered reading does not count again.
    await storage.readings.ingest([reading(flow, 20, 75.0)])
    assert (await storage.alerts.get(org, alert.id)).occurrences == 21


async def test_alert_clears_and_a_later_occurrence_opens_a_new_one(storage: Storage) -> None:
    t = await make_tenant(storage)
    org, flow = t.organization.id, t.common_sensor
    await storage.readings.ingest([reading(flow, 0, 75.0), reading(flow, 1, 20.0)])
    [cleared] = await storage.alerts.select(org)
    assert cleared.cleared_at == T0 + timedelta(minutes=1) and cleared.status is AlertStatus.CLEARED
    await storage.readings.ingest([reading(flow, 2, 80.0)])
    active = await storage.alerts.select(org, AlertFilter(status=AlertStatus.ACTIVE))
    assert len(active) == 1 and active[0].id != cleared.id
    assert [a.id for a in await storage.alerts.select(org, AlertFilter(status=AlertStatus.CLEARED))] == [cleared.id]


async def test_concurrent_raise_decisions_in_one_batch_keep_one_active_alert(storage: Storage) -> None:
    t = await make_tenant(storage)
    flow = t.common_sensor
    batch = [reading(flow, m, 90.0) for m in range(5)]
    assert all(isinstance(d, RaiseAlert) for i in batch for d in i.decisions)
    await storage.readings.ingest(batch)
    assert [a.occurrences for a in await storage.alerts.select(t.organization.id)] == [5]


async def test_clear_without_active_alert_is_harmless(storage: Storage) -> None:
    t = await make_tenant(storage)
    r = IoTReading.measured(t.common_sensor, T0, 10.0)
    await storage.readings.ingest([Ingested(r, (ClearAlert(t.common_sensor.id, AlertType.THRESHOLD_EXCEEDED, T0),))])
    assert await storage.alerts.select(t.organization.id) == []


async def test_acknowledge_records_who_when_and_note_once(storage: Storage) -> None:
    t = await make_tenant(storage)
    org = t.organization.id
    await storage.readings.ingest([reading(t.common_sensor, 0, 75.0)])
    [alert] = await storage.alerts.select(org, AlertFilter(acknowledged=False))
    done = await storage.alerts.acknowledge(org, alert.id, t.syndic.id, "plumber called", T0)
    assert done.acknowledged and done.acknowledged_by == t.syndic.id and done.resolution_note == "plumber called"
    again = await storage.alerts.acknowledge(org, alert.id, t.syndic.id, "second", T0 + timedelta(hours=1))
    assert again.resolution_note == "plumber called" and again.acknowledged_at == T0
    assert await storage.alerts.select(org, AlertFilter(acknowledged=False)) == []
    assert done.status is AlertStatus.ACTIVE  # acknowledging does not clear


async def test_alerts_of_another_organization_are_invisible(storage: Storage) -> None:
    a, b = await make_tenant(storage, "A"), await make_tenant(storage, "B")
    await storage.readings.ingest([reading(a.common_sensor, 0, 75.0)])
    [alert] = await storage.alerts.select(a.organization.id)
    assert await storage.alerts.select(b.organization.id) == []
    with pytest.raises(NotFound):
        await storage.alerts.get(b.organization.id, alert.id)
    with pytest.raises(NotFound):
        await storage.alerts.acknowledge(b.organization.id, alert.id, b.syndic.id, None, T0)
    assert not (await storage.alerts.get(a.organization.id, alert.id)).acknowledged


async def test_duplicate_email_is_a_conflict(storage: Storage) -> None:
    t: Tenant = await make_tenant(storage)
    org = Organization(name="Other")
    await storage.tenancy.add_organization(org)
    with pytest.raises(Conflict):
        await storage.tenancy.add_user(t.syndic.__class__(org.id, t.syndic.email, "Twin", t.syndic.role, "h"))


async def test_dead_letters_are_kept_per_organization_and_counted_by_reason(storage: Storage) -> None:
    a, b = await make_tenant(storage, "A"), await make_tenant(storage, "B")
    letters = [
        DeadLetter.of("koprogo/x/y/z/readings", b"{", "invalid_json", "bad", T0, a.organization.id),
        DeadLetter.of("koprogo/x/y/z/readings", b"{}", "schema_violation", "no value", T0, a.organization.id),
        DeadLetter.of("koprogo/nope", b"\x00" * 2000, "invalid_topic", "no organization", T0, None),
    ]
    await storage.readings.ingest([], letters)
    mine = await storage.dead_letters.recent(a.organization.id)
    assert [letter.reason for letter in mine] == ["schema_violation", "invalid_json"]  # newest first
    assert mine[0].id is not None and mine[0].payload_excerpt == "{}"
    assert await storage.dead_letters.recent(b.organization.id) == []
    assert [letter.reason for letter in await storage.dead_letters.recent(None, "invalid_topic")] == ["invalid_topic"]
    everyone = await storage.dead_letters.recent(None)
    assert everyone[0].payload_size == 2000 and len(everyone[0].payload_excerpt) == 1024  # an excerpt, bounded
    assert await storage.dead_letters.counts(a.organization.id) == {"invalid_json": 1, "schema_violation": 1}
    assert (await storage.dead_letters.counts(None))["invalid_topic"] == 1


def sighting(t: Tenant, device: str, at: datetime, **fields: float) -> DeviceSighting:
    seen = {name: SeenField(value, "m3", "cumulative") for name, value in fields.items()}
    return DeviceSighting(t.organization.id, DeviceFormat.WMBUS, device, t.building.id, f"x/{device}", seen, at)


async def test_device_sightings_are_kept_per_organization_bounded_and_forgotten(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = await make_tenant(storage, "A"), await make_tenant(storage, "B")
    monkeypatch.setattr(devices_sql, "MAX_PER_ORGANIZATION", 2)
    await storage.readings.ingest([], [], [sighting(a, "m1", T0, total_m3=1.0), sighting(a, "m2", T0, total_m3=2.0)])
    later = T0 + timedelta(hours=1)
    await storage.readings.ingest([], [], [sighting(a, "m3", later, total_m3=3.0), sighting(a, "m1", later, x_m3=9.0)])
    found = {s.device_id: s for s in await storage.devices.sightings(a.organization.id)}
    assert set(found) == {"m1", "m2"}  # past the limit, new devices are not kept; known ones are updated
    assert found["m1"].fields == {"x_m3": SeenField(9.0, "m3", "cumulative")} and found["m1"].last_seen_at == later
    assert [s.device_id for s in await storage.devices.sightings(a.organization.id)] == ["m1", "m2"]  # latest first
    assert await storage.devices.sightings(b.organization.id) == []
    assert await storage.devices.sightings(a.organization.id, b.building.id) == []
    assert await storage.devices.forget_before(later) == 1
    assert [s.device_id for s in await storage.devices.sightings(a.organization.id)] == ["m1"]
