"""Arbitrary bytes and topics, fed to every device decoder and through the ingest pipeline: each message is decoded
or refused with a reason, stored or dead-lettered, and nothing raises (issue 12's fuzzing, kept in the suite).

Bounded and seeded (`derandomize`): the same examples every run. Payloads are raw bytes, arbitrary JSON, and each
family's own message shape with arbitrary values in it (what reaches the decoders' deeper branches).
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from koprogo_iot.devices import native
from koprogo_iot.devices.base import DecodeError
from koprogo_iot.devices.parsing import MAX_DEPTH, MAX_JSON_BYTES, check_bounds
from koprogo_iot.devices.registry import decoders
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.sensors import DeviceFormat, IoTSensor, SensorType
from koprogo_iot.ingest.pipeline import IngestLimits, Message, Pipeline
from koprogo_iot.ingest.rejections import Reason
from koprogo_iot.storage.ports import Storage
from tests.conftest import make_tenant

DECODER_EXAMPLES = 400  # per family
PIPELINE_EXAMPLES = 150  # per database
NESTING_EXAMPLES = 300
FIELD_NAMES = [
    "value",
    "timestamp",
    "time",
    "ts",
    "battery",
    "battery_level",
    "rssi",
    "id",
    "src",
    "method",
    "params",
    "total_m3",
    "status",
    "ENERGY",
    "Total",
    "Time",
    "object",
    "deviceInfo",
    "devEui",
    "rxInfo",
    "aenergy",
    "total",
    "emdata:0",
    "total_act",
    "switch:0",
    "tC",
    "errors",
    "decoded_payload",
    "uplink_message",
    "end_device_ids",
    "dev_eui",
    "received_at",
    "rx_metadata",
    "media",
    "meter",
    "flow_temperature_c",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["2026-11-29T10:00:00Z", "2026-11-29T10:00:00", "1970-01-01T00:00:00Z", "LEAK", "DRY", ""])
)
keys = st.sampled_from(FIELD_NAMES) | st.text(max_size=12)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5), max_leaves=25
)
DEVICE = "0011aabbccddeeff"
SHELLY = f"shellypro3em-{DEVICE[:12]}"


# Where each family puts its values, so that shaped messages reach the decoders' reading branches.
VALUE_NAMES = {
    "shelly": ["total_act_power", "a_act_power", "total_act", "aenergy", "total", "tC", "errors", "id"],
    "chirpstack": ["water", "total_m3", "flow_m3h", "battery", "energy_kwh", "temperature_degc", "status"],
    "ttn": ["index_m3", "total_m3", "battery_pct", "volume_l", "power_w", "counter"],
    "wmbus": ["total_m3", "target_m3", "flow_temperature_c", "current_status", "status"],
    "tasmota": ["Total", "Power", "Today", "Voltage", "Temperature"],
}
numbers = st.floats(min_value=-1e6, max_value=1e10) | st.integers(min_value=-1000, max_value=10**10)
times = st.builds(lambda: utcnow().isoformat()) | st.builds(lambda: utcnow().timestamp()) | scalars


def readings_of(fmt: str) -> st.SearchStrategy[Any]:
    names = st.sampled_from(VALUE_NAMES[fmt]) | keys
    return st.recursive(numbers | scalars, lambda inner: st.dictionaries(names, inner, max_size=4), max_leaves=8)


def _shaped(fmt: str, inside: Any, time: Any) -> Any:
    """`fmt`'s own message shape, with arbitrary values where the family puts its readings."""
    return {
        "shelly": {"src": SHELLY, "method": "NotifyStatus", "params": {"ts": time, "em:0": inside}},
        "chirpstack": {"time": time, "deviceInfo": {"devEui": DEVICE}, "object": inside, "rxInfo": [{"rssi": -80}]},
        "ttn": {
            "end_device_ids": {"dev_eui": DEVICE.upper()},
            "received_at": time,
            "uplink_message": {"decoded_payload": inside, "rx_metadata": [{"rssi": -80}]},
        },
        "wmbus": {
            "id": DEVICE[:8],
            "media": "water",
            "timestamp": time,
            **(inside if isinstance(inside, dict) else {}),
        },
        "tasmota": {"Time": time, "ENERGY": inside},
    }[fmt]


def payloads(fmt: str) -> st.SearchStrategy[bytes]:
    raw = st.binary(max_size=200)
    arbitrary = json_values.map(lambda v: json.dumps(v).encode())
    shaped = st.builds(_shaped, st.just(fmt), readings_of(fmt), times).map(lambda v: json.dumps(v).encode())
    return st.one_of(raw, arbitrary, shaped, shaped, shaped)


def device_topics(fmt: str) -> st.SearchStrategy[str]:
    own = {
        "shelly": f"shellypro3em-{DEVICE[:12]}/events/rpc",
        "chirpstack": f"application/app/device/{DEVICE}/event/up",
        "ttn": "v3/app@ttn/devices/meter-1/up",
        "wmbus": "App1Water",
        "tasmota": "tele/plug_1/SENSOR",
    }[fmt]
    return st.one_of(st.just(own), st.just(own), st.just(own), st.text(max_size=40))


@pytest.mark.parametrize("fmt", sorted(decoders()))
def test_every_decoder_decodes_or_refuses_with_a_reason(fmt: str) -> None:
    decoder = decoders()[fmt]

    @settings(max_examples=DECODER_EXAMPLES, derandomize=True, deadline=None)
    @given(topic=device_topics(fmt), payload=payloads(fmt))
    def decode(topic: str, payload: bytes) -> None:
        now = utcnow()
        try:
            readings = decoder.decode(topic, payload, now)
        except DecodeError as refused:
            assert refused.reason in ("invalid_json", "schema_violation") and str(refused)
            return
        for reading in readings:
            assert math.isfinite(reading.value) and reading.timestamp.utcoffset() is not None, reading

    decode()


@pytest.fixture
async def registered(storage: Storage) -> tuple[Storage, list[str]]:
    """A tenant with a native sensor and one sensor of each device family; the topics that reach them."""
    tenant = await make_tenant(storage)
    base = f"koprogo/{tenant.organization.id}/{tenant.building.id}"
    fields = {
        "shelly": (f"shellypro3em-{DEVICE[:12]}", "em:0.total_act_power", "W"),
        "chirpstack": (DEVICE, "water.total_m3", "m³"),
        "ttn": (DEVICE, "index_m3", "m³"),
        "wmbus": (DEVICE[:8], "total_m3", "m³"),
        "tasmota": ("plug_1", "ENERGY.Total", "kWh"),
    }
    topics = [tenant.unit_sensor.mqtt_topic, tenant.common_sensor.mqtt_topic]
    for fmt, (device, field, unit) in fields.items():
        sensor = IoTSensor(
            organization_id=tenant.organization.id,
            building_id=tenant.building.id,
            sensor_id=device,
            device_format=DeviceFormat(fmt),
            device_field=field,
            sensor_type=SensorType.ELECTRICITY if unit in ("W", "kWh") else SensorType.COLD_WATER,
            manufacturer="m",
            model="m",
            location=fmt,
            unit_of_measure=unit,
        )
        await storage.sensors.add(sensor)
        topics.append(sensor.mqtt_topic)
    topics += [f"{base}/nobody/readings", f"koprogo/{uuid.uuid4()}/{tenant.building.id}/x/readings", "koprogo/x"]
    return storage, topics


@settings(
    max_examples=PIPELINE_EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_every_message_is_stored_or_dead_lettered_with_a_reason(
    registered: tuple[Storage, list[str]], data: st.DataObject
) -> None:
    storage, topics = registered
    pipeline = Pipeline(storage, IngestLimits(rate_per_sensor=1000, burst_per_sensor=1000), decoders=_formats())
    topic = data.draw(st.sampled_from(topics) | st.text(max_size=60), label="topic")
    fmt = next((f for f in _formats() if f"/{f.value}/" in topic), None)
    payload = data.draw(payloads(fmt.value) if fmt else payloads("wmbus"), label="payload")
    [outcome] = await pipeline.handle([Message(topic, payload, utcnow())])
    assert outcome is None or isinstance(outcome, Reason)
    assert outcome is not Reason.INTERNAL_ERROR, (topic, payload)
    assert sum(pipeline.stats.rejected.values()) >= (outcome is not None)


def _formats() -> dict[DeviceFormat, Any]:
    return {DeviceFormat(name): decoder for name, decoder in decoders().items()}


@pytest.mark.parametrize(
    "device",
    ["shellypro3em-\x00abc", "shelly\udcffpro", "x" * 5000],
    ids=["nul", "lone-surrogate", "huge"],
)
async def test_a_device_id_no_database_can_store_is_refused_not_fatal(storage: Storage, device: str) -> None:
    """Found by the property test: a NUL in a device id (a JSON "\\u0000") broke the PostgreSQL transaction."""
    tenant = await make_tenant(storage)
    pipeline = Pipeline(storage, decoders=_formats())
    body = {
        "src": device,
        "method": "NotifyStatus",
        "params": {"ts": utcnow().timestamp(), "em:0": {"total_act_power": 5}},
    }
    topic = f"koprogo/{tenant.organization.id}/{tenant.building.id}/shelly/{SHELLY}/events/rpc"
    payload = json.dumps(body).encode("utf-8", errors="surrogatepass")
    [outcome] = await pipeline.handle([Message(topic, payload, utcnow())])
    assert outcome in (Reason.SCHEMA_VIOLATION, Reason.INVALID_JSON)
    assert await storage.devices.sightings(tenant.organization.id) == []


@pytest.mark.parametrize("status", ["LEAK\x00X", "DRY\udcff", "ODD " * 300])
async def test_a_device_status_no_database_can_store_is_not_fatal(
    registered: tuple[Storage, list[str]], status: str
) -> None:
    storage, topics = registered
    pipeline = Pipeline(storage, decoders=_formats())
    [topic] = [t for t in topics if "/wmbus/" in t]
    body = {"id": DEVICE[:8], "media": "water", "total_m3": 1.5, "timestamp": utcnow().isoformat(), "status": status}
    [outcome] = await pipeline.handle([Message(topic, json.dumps(body).encode("utf-8", "surrogatepass"), utcnow())])
    assert outcome in (None, Reason.INVALID_JSON)  # stored (its alert too), or not UTF-8 at all


# --- nesting and size, bounded before any JSON decoder recurses (issue 14: `[` x 15,000 was a RecursionError)

DEEP = {
    "lists": b"[" * 15_000,
    "objects": b'{"value": ' * 1_600,
    "closed": b"[" * 40 + b"]" * 40,
    "in-a-message": b'{"timestamp": "2026-11-29T10:00:00Z", "value": ' + b"[" * 100 + b"1" + b"]" * 100 + b"}",
}


@pytest.mark.parametrize("payload", DEEP.values(), ids=DEEP.keys())
@pytest.mark.parametrize("fmt", ["native", *sorted(decoders())])
def test_every_format_refuses_deep_nesting_by_name(fmt: str, payload: bytes) -> None:
    with pytest.raises(DecodeError) as refused:
        if fmt == "native":
            native.decode(payload)
        else:
            decoders()[fmt].decode(_own_topic(fmt), payload, utcnow())
    assert refused.value.reason == "nested_too_deeply"


def test_every_format_refuses_a_payload_beyond_the_json_bound() -> None:
    payload = b'{"value": "' + b"x" * MAX_JSON_BYTES + b'"}'
    for fmt, decoder in decoders().items():
        with pytest.raises(DecodeError) as refused:
            decoder.decode(_own_topic(fmt), payload, utcnow())
        assert refused.value.reason == "payload_too_large", fmt


def _own_topic(fmt: str) -> str:
    return {
        "shelly": f"{SHELLY}/events/rpc",
        "chirpstack": f"application/app/device/{DEVICE}/event/up",
        "ttn": "v3/app@ttn/devices/meter-1/up",
        "wmbus": "App1Water",
        "tasmota": "tele/plug_1/SENSOR",
    }[fmt]


@settings(max_examples=NESTING_EXAMPLES, derandomize=True, deadline=None)
@given(levels=st.lists(st.booleans(), max_size=MAX_DEPTH + 8), filler=st.text(alphabet='[]{}"\\ab', max_size=6))
def test_the_nesting_bound_counts_levels_not_brackets_in_strings(levels: list[bool], filler: str) -> None:
    """Real JSON `len(levels)` deep, its strings full of brackets, quotes and backslashes: refused exactly when
    deeper than MAX_DEPTH, and what is accepted decodes without recursing too far."""
    value: Any = filler
    for is_list in reversed(levels):
        value = [filler, value] if is_list else {filler: value}
    payload = json.dumps(value).encode()
    if len(levels) > MAX_DEPTH:
        with pytest.raises(DecodeError, match="nested more than"):
            check_bounds(payload)
    else:
        check_bounds(payload)
        assert json.loads(payload) == value


async def test_deep_nesting_is_a_named_dead_letter_for_every_format_without_a_traceback(
    registered: tuple[Storage, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    storage, topics = registered
    pipeline = Pipeline(storage, decoders=_formats())
    # The native sensors and one of each device family (a Shelly's topic is the prefix of its event topics).
    known = [f"{t}/events/rpc" if "/shelly/" in t else t for t in topics[:7]]
    with caplog.at_level(logging.INFO):
        outcomes = await pipeline.handle([Message(topic, DEEP["lists"], utcnow()) for topic in known])
    assert outcomes == [Reason.NESTED_TOO_DEEPLY] * len(known)
    assert pipeline.stats.rejected == {"nested_too_deeply": len(known)}
    assert not [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
