"""The ingest pipeline, fed arbitrary messages: each is stored or dead-lettered with a named reason, nothing is
raised, and no message ends as an `internal_error` (a bug the pipeline caught). On SQLite and PostgreSQL.

Topics are a tenant's real ones (native, and each device family's prefix) with anything after them, or anything;
payloads are near-valid native readings, JSON of the families' vocabulary, or raw bytes. Seeded and bounded.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from koprogo_iot.bootstrap import build_pipeline
from koprogo_iot.config import Settings
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.sensors import DeviceFormat
from koprogo_iot.ingest.pipeline import Message, Pipeline
from koprogo_iot.ingest.rejections import Reason
from koprogo_iot.storage.ports import Storage
from tests.conftest import Tenant, make_tenant
from tests.devices.test_properties import JSON, PAYLOADS, SCALARS, TOPICS

BATCHES = 100  # batches of up to 8 messages, per database


@pytest.fixture
async def world(storage: Storage) -> tuple[Pipeline, Tenant]:
    tenant = await make_tenant(storage, "Fuzz")
    return build_pipeline(Settings(), storage, None), tenant


def _topics(t: Tenant) -> st.SearchStrategy[str]:
    prefix = f"koprogo/{t.organization.id}/{t.building.id}"
    native = st.sampled_from([s.mqtt_topic for s in (t.common_sensor, t.unit_sensor, t.other_unit_sensor)])
    formats = st.sampled_from([f.value for f in DeviceFormat if f is not DeviceFormat.NATIVE])
    return (
        native
        | st.builds(lambda f, rest: f"{prefix}/{f}/{rest}", formats, TOPICS)
        | st.builds(lambda rest: f"{prefix}/{rest}", st.text(max_size=40))
        | st.text(max_size=80)
    )


READINGS = st.fixed_dictionaries(
    {"timestamp": SCALARS, "value": SCALARS},
    optional={"battery_level": SCALARS, "signal_strength": SCALARS, "extra": JSON},
).map(lambda d: json.dumps(d).encode())


@settings(
    max_examples=BATCHES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_every_message_is_stored_or_dead_lettered_with_a_reason(
    world: tuple[Pipeline, Tenant], data: st.DataObject
) -> None:
    """The examples share one tenant per database (and the pipeline's caches and dead-letter caps)."""
    pipeline, tenant = world
    batch = data.draw(
        st.lists(st.tuples(_topics(tenant), READINGS | PAYLOADS), min_size=1, max_size=8), label="messages"
    )
    messages = [Message(topic, payload, utcnow()) for topic, payload in batch]
    rejected_before = sum(pipeline.stats.rejected.values())
    outcomes = await pipeline.handle(messages)
    assert len(outcomes) == len(messages)
    assert all(o is None or isinstance(o, Reason) for o in outcomes)
    assert Reason.INTERNAL_ERROR not in outcomes
    refused = [o for o in outcomes if o is not None]
    assert sum(pipeline.stats.rejected.values()) - rejected_before >= len(refused)


async def test_a_nul_in_a_topic_is_dead_lettered(world: tuple[Pipeline, Tenant], storage: Storage) -> None:
    """What the property found: PostgreSQL refused the dead letter's topic, and the batch failed for good."""
    pipeline, tenant = world
    topic = f"koprogo/{tenant.organization.id}/\x00"
    assert await pipeline.handle([Message(topic, b"{}", utcnow())]) == [Reason.INVALID_TOPIC]
    [letter] = await storage.dead_letters.recent(None, "invalid_topic")
    assert letter.topic == f"koprogo/{tenant.organization.id}/\ufffd"
