"""Every rejection reason, named; and what valid messages become."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from koprogo_iot.domain.clock import utcnow
from koprogo_iot.ingest.pipeline import IngestLimits, Message, Pipeline
from koprogo_iot.ingest.rejections import Reason
from koprogo_iot.storage.ports import Storage
from tests.conftest import Tenant, make_tenant


def payload(value: object = 12.5, timestamp: str | None = None, **extra: object) -> bytes:
    import json

    body = {"timestamp": timestamp or utcnow().isoformat(), "value": value} | extra
    return json.dumps(body).encode()


@pytest.fixture
async def tenant(storage: Storage) -> Tenant:
    return await make_tenant(storage)


async def handle(pipeline: Pipeline, topic: str, body: bytes) -> Reason | None:
    [outcome] = await pipeline.handle([Message(topic, body, utcnow())])
    return outcome


async def test_valid_message_is_stored_calibrated_with_quality(storage: Storage, tenant: Tenant) -> None:
    sensor = tenant.unit_sensor.calibrated(2.0)
    await storage.sensors.update(sensor)
    pipeline = Pipeline(storage)
    body = payload(12.5, "2026-01-31T12:00:00+01:00", battery_level=80, signal_strength=-85)
    assert await handle(pipeline, sensor.mqtt_topic, body) is None
    [stored] = await storage.readings.recent(tenant.organization.id, sensor.id)
    assert stored.value == 25.0
    assert stored.timestamp == datetime(2026, 1, 31, 11, 0, tzinfo=UTC)
    assert stored.quality == "warning" and stored.signal_strength == -85 and stored.battery_level == 80
    assert pipeline.stats.stored == 1 and pipeline.stats.received == 1


async def test_a_repeated_message_is_stored_once(storage: Storage, tenant: Tenant) -> None:
    pipeline = Pipeline(storage)
    body = payload(3.0, "2026-01-31T12:00:00Z")
    for _ in range(3):
        assert await handle(pipeline, tenant.unit_sensor.mqtt_topic, body) is None
    assert await storage.readings.count(tenant.organization.id, tenant.unit_sensor.id) == 1
    assert pipeline.stats.stored == 1 and pipeline.stats.duplicates == 2


def _topic(t: Tenant, org: object = None, building: object = None, device: str | None = None) -> str:
    org, building = org or t.organization.id, building or t.building.id
    return f"koprogo/{org}/{building}/{device or t.unit_sensor.sensor_id}/readings"


CASES = {
    "payload_too_large": (lambda t: _topic(t), b" " * 20_000),
    "invalid_topic": (lambda t: "koprogo/not-a-uuid/x/y/readings", payload()),
    "invalid_json": (lambda t: _topic(t), b"{not json"),
    "schema_violation": (lambda t: _topic(t), b'{"value": 1}'),
    "schema_violation_battery": (lambda t: _topic(t), payload(battery_level=140)),
    "schema_violation_naive_time": (lambda t: _topic(t), payload(timestamp="2026-01-31T12:00:00")),
    "schema_violation_string_value": (lambda t: _topic(t), payload(value="12")),
    "nested_too_deeply": (lambda t: _topic(t), b"[" * 15_000),  # was a RecursionError and a traceback
    "nested_too_deeply_objects": (lambda t: _topic(t), b'{"value": ' * 1_600),
    "unknown_organization": (lambda t: _topic(t, org=uuid.uuid4()), payload()),
    "unknown_sensor": (lambda t: _topic(t, device="nobody-knows-me"), payload()),
    "tenant_mismatch_building": (lambda t: _topic(t, building=uuid.uuid4()), payload()),
    "value_not_finite_overflow": (lambda t: _topic(t), b'{"timestamp": "2026-01-31T12:00:00Z", "value": 1e999}'),
    "value_not_finite_nan": (lambda t: _topic(t), b'{"timestamp": "2026-01-31T12:00:00Z", "value": NaN}'),
    "value_not_finite_infinity": (lambda t: _topic(t), b'{"timestamp": "2026-01-31T12:00:00Z", "value": -Infinity}'),
    "value_out_of_range": (lambda t: _topic(t), payload(-4.0)),
    "timestamp_in_future": (lambda t: _topic(t), payload(timestamp=(utcnow() + timedelta(hours=1)).isoformat())),
    "timestamp_too_old": (lambda t: _topic(t), payload(timestamp="1970-01-01T00:00:00Z")),
}


@pytest.mark.parametrize("case", CASES)
async def test_bad_messages_are_rejected_with_a_named_reason(storage: Storage, tenant: Tenant, case: str) -> None:
    topic, body = CASES[case]
    pipeline = Pipeline(storage, IngestLimits(max_payload_bytes=16_384))
    reason = await handle(pipeline, topic(tenant), body)
    expected = next(r for r in Reason if case.startswith(r.value))
    assert reason is expected
    assert pipeline.stats.rejected == {expected.value: 1}
    for sensor in (tenant.unit_sensor, tenant.common_sensor, tenant.other_unit_sensor):
        assert await storage.readings.count(tenant.organization.id, sensor.id) == 0
    # The pipeline still works after the rejection.
    assert await handle(pipeline, tenant.unit_sensor.mqtt_topic, payload(1.0)) is None


async def test_another_organizations_building_in_the_topic_is_a_tenant_mismatch(storage: Storage) -> None:
    a, b = await make_tenant(storage, "A"), await make_tenant(storage, "B")
    pipeline = Pipeline(storage)
    # Org B's topic naming org A's building and sensor: nothing of A's may be written through B's topic.
    topic = f"koprogo/{b.organization.id}/{a.building.id}/{a.unit_sensor.sensor_id}/readings"
    assert await handle(pipeline, topic, payload()) is Reason.TENANT_MISMATCH
    topic = f"koprogo/{b.organization.id}/{b.building.id}/{a.unit_sensor.sensor_id}/readings"
    assert await handle(pipeline, topic, payload()) is Reason.UNKNOWN_SENSOR
    assert await storage.readings.count(a.organization.id, a.unit_sensor.id) == 0


async def test_inactive_sensor_is_refused(storage: Storage, tenant: Tenant) -> None:
    await storage.sensors.update(tenant.unit_sensor.changed(status="inactive"))
    assert await handle(Pipeline(storage), tenant.unit_sensor.mqtt_topic, payload()) is Reason.SENSOR_INACTIVE


async def test_batch_mixes_rejections_and_readings(storage: Storage, tenant: Tenant) -> None:
    pipeline = Pipeline(storage)
    now = utcnow()
    messages = [
        Message(tenant.unit_sensor.mqtt_topic, payload(1.0, (now - timedelta(seconds=2)).isoformat()), now),
        Message(tenant.unit_sensor.mqtt_topic, b"garbage", now),
        Message(tenant.unit_sensor.mqtt_topic, payload(2.0, now.isoformat()), now),
    ]
    assert await pipeline.handle(messages) == [None, Reason.INVALID_JSON, None]
    assert await storage.readings.count(tenant.organization.id, tenant.unit_sensor.id) == 2
