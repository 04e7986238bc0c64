"""Each rejection reason, sent through a real broker, ends up listed as a dead letter; ingestion goes on."""

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from koprogo_iot.devices.base import DeviceReading
from koprogo_iot.devices.registry import decoders
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.sensors import DeviceFormat, IoTSensor, SensorType
from koprogo_iot.ingest import metrics
from koprogo_iot.ingest.mqtt_worker import MqttIngestWorker
from koprogo_iot.ingest.pipeline import IngestLimits, Message, Pipeline
from koprogo_iot.loadgen.publisher import run_load
from koprogo_iot.storage.ports import Storage
from tests.conftest import Mosquitto, Tenant, eventually, make_tenant, mosquitto_pub, running

pytestmark = pytest.mark.mosquitto


def native(value: object = 1.0, timestamp: datetime | str | None = None) -> str:
    stamp = timestamp.isoformat() if isinstance(timestamp, datetime) else timestamp or utcnow().isoformat()
    return f'{{"timestamp": "{stamp}", "value": {value}}}'


class _Broken:
    """A decoder with a bug: the worker must survive it."""

    format = "tasmota"

    def decode(self, topic: str, payload: bytes, received_at: datetime) -> list[DeviceReading]:
        raise RuntimeError("bug in a decoder")


@dataclass
class Setup:
    storage: Storage
    tenant: Tenant
    shelly: IoTSensor  # records m³: the Shelly's Wh cannot be converted


Case = Callable[[Setup], list[tuple[str, str | bytes]]]


def _base(s: Setup) -> str:
    return f"koprogo/{s.tenant.organization.id}/{s.tenant.building.id}"


def _shelly_message(s: Setup) -> str:
    return json.dumps(
        {
            "src": s.shelly.sensor_id,
            "method": "NotifyStatus",
            "params": {"ts": utcnow().timestamp(), "switch:0": {"aenergy": {"total": 1234.5}}},
        }
    )


CASES: dict[str, Case] = {
    "payload_too_large": lambda s: [(s.tenant.unit_sensor.mqtt_topic, b"x" * 20_000)],
    "invalid_topic": lambda s: [(f"koprogo/{s.tenant.organization.id}/not-a-building/x/readings", native())],
    "invalid_json": lambda s: [(s.tenant.unit_sensor.mqtt_topic, "{oops")],
    "schema_violation": lambda s: [(s.tenant.unit_sensor.mqtt_topic, '{"value": 1}')],
    "nested_too_deeply": lambda s: [(s.tenant.unit_sensor.mqtt_topic, "[" * 15_000)],  # was a RecursionError
    "unknown_organization": lambda s: [(f"koprogo/{uuid.uuid4()}/{s.tenant.building.id}/x/readings", native())],
    "unknown_sensor": lambda s: [(f"{_base(s)}/nobody/readings", native())],
    "tenant_mismatch": lambda s: [(f"koprogo/{s.tenant.organization.id}/{uuid.uuid4()}/x/readings", native())],
    "value_not_finite": lambda s: [(s.tenant.unit_sensor.mqtt_topic, native("NaN"))],
    "value_out_of_range": lambda s: [(s.tenant.unit_sensor.mqtt_topic, native(-5))],
    "timestamp_in_future": lambda s: [(s.tenant.unit_sensor.mqtt_topic, native(1, utcnow() + timedelta(days=1)))],
    "timestamp_too_old": lambda s: [(s.tenant.unit_sensor.mqtt_topic, native(1, "1970-01-01T00:00:00Z"))],
    "unit_mismatch": lambda s: [(f"{_base(s)}/shelly/{s.shelly.sensor_id}/events/rpc", _shelly_message(s))],
    "rate_limited": lambda s: [
        (s.tenant.common_sensor.mqtt_topic, native(1, utcnow() - timedelta(seconds=2))),
        (s.tenant.common_sensor.mqtt_topic, native(2, utcnow() - timedelta(seconds=1))),
    ],
    "internal_error": lambda s: [(f"{_base(s)}/tasmota/tele/plug/SENSOR", '{"ENERGY": {"Total": 1}}')],
}


def worker(storage: Storage, mosquitto: Mosquitto) -> MqttIngestWorker:
    formats = {DeviceFormat(k): v for k, v in decoders().items()} | {DeviceFormat.TASMOTA: _Broken()}
    # A token every 100 s and no burst: the second message of the rate case is refused.
    limits = IngestLimits(rate_per_sensor=0.01, burst_per_sensor=1)
    return MqttIngestWorker(
        Pipeline(storage, limits, decoders=formats), mosquitto.endpoint, f"dl-{uuid.uuid4().hex[:8]}"
    )


@pytest.mark.parametrize("reason", CASES)
async def test_rejected_message_is_listed_with_its_reason(storage: Storage, mosquitto: Mosquitto, reason: str) -> None:
    tenant = await make_tenant(storage)
    shelly = IoTSensor(
        organization_id=tenant.organization.id,
        building_id=tenant.building.id,
        sensor_id=f"shellyplus1pm-{reason}",
        device_format="shelly",
        device_field="switch:0.aenergy.total",
        sensor_type=SensorType.ELECTRICITY,
        manufacturer="Shelly",
        model="Plus 1PM",
        location="board",
        unit_of_measure="m³",
    )
    await storage.sensors.add(shelly)
    setup = Setup(storage, tenant, shelly)
    async with running(worker(storage, mosquitto)) as w:
        sent = CASES[reason](setup)
        for topic, body in sent:
            await mosquitto_pub(mosquitto, topic, body)
        letters = await eventually(lambda: storage.dead_letters.recent(None, reason))
        # Still ingesting afterwards.
        await mosquitto_pub(mosquitto, tenant.unit_sensor.mqtt_topic, native(42.0))
        await eventually(lambda: storage.readings.recent(tenant.organization.id, tenant.unit_sensor.id))
    [letter] = letters
    assert letter.reason == reason and letter.detail
    assert letter.topic == sent[-1][0]
    assert letter.payload_size > 0 and letter.payload_excerpt
    assert w.pipeline.stats.rejected[reason] == 1
    if reason not in ("invalid_topic", "unknown_organization"):
        assert letter.organization_id == tenant.organization.id
        assert reason in await storage.dead_letters.counts(tenant.organization.id)


async def test_a_flooding_topic_keeps_a_bounded_number_of_dead_letters(storage: Storage) -> None:
    tenant = await make_tenant(storage)
    pipeline = Pipeline(storage, IngestLimits(dead_letters_per_minute=3))
    messages = [Message(tenant.unit_sensor.mqtt_topic, b"garbage", utcnow()) for _ in range(10)]
    assert await pipeline.handle(messages) == ["invalid_json"] * 10
    assert len(await storage.dead_letters.recent(tenant.organization.id)) == 3
    assert pipeline.stats.rejected["invalid_json"] == 10


def suppressed(cap: str) -> float:
    return metrics.DEAD_LETTERS_SUPPRESSED.labels(cap)._value.get()  # type: ignore[no-any-return]


async def test_a_thousand_random_topics_through_the_broker_keep_the_organizations_cap(
    storage: Storage, mosquitto: Mosquitto
) -> None:
    """The attack of issue 12: a topic per message, so the per-topic cap never applies; the organization's does."""
    tenant = await make_tenant(storage)
    base = f"koprogo/{tenant.organization.id}/{tenant.building.id}"
    topics = [f"{base}/junk-{uuid.uuid4().hex}/readings" for _ in range(1000)]
    limits = IngestLimits(dead_letters_per_minute=10, dead_letters_per_organization_minute=100)
    ingest = MqttIngestWorker(Pipeline(storage, limits), mosquitto.endpoint, f"flood-{uuid.uuid4().hex[:8]}")
    before = suppressed("organization")
    async with running(ingest) as w:
        device = await mosquitto.server.device(tenant.organization.id)
        sent = await run_load(device, topics, rate=2000, duration=0.5)
        assert sent.acknowledged == 1000

        async def all_refused() -> bool:
            return w.pipeline.stats.rejected.get("unknown_sensor", 0) == 1000

        await eventually(all_refused, timeout=30)
    assert await storage.dead_letters.counts(tenant.organization.id) == {"unknown_sensor": 100}
    assert suppressed("organization") - before == 900


async def test_unknown_organizations_share_one_cap(storage: Storage) -> None:
    """Messages naming organizations that do not exist (from a broker without our access rules) count together."""
    pipeline = Pipeline(storage, IngestLimits(dead_letters_per_organization_minute=5))
    messages = [
        Message(f"koprogo/{uuid.uuid4()}/{uuid.uuid4()}/m/readings", native().encode(), utcnow()) for _ in range(20)
    ]
    assert await pipeline.handle(messages) == ["unknown_organization"] * 20
    assert (await storage.dead_letters.counts(None)).get("unknown_organization") == 5
