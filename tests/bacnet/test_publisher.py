"""Readings published while the broker is away wait for it (up to a limit, the rest counted as dropped)."""

from __future__ import annotations

import ssl
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from koprogo_iot.bacnet.publisher import ReadingPublisher, rfc3339
from koprogo_iot.bench.services import MosquittoServer
from koprogo_iot.domain.clock import utcnow
from tests.conftest import eventually
from tests.support.network_server import NetworkServerBroker, make_authority

pytestmark = pytest.mark.mosquitto


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_readings_wait_for_the_broker_and_the_overflow_is_counted(tmp_path: Path) -> None:
    broker = MosquittoServer(tmp_path / "mosquitto")
    organization = uuid.uuid4()
    with broker:  # a device login first, then the broker goes
        device = await broker.device(organization)
    publisher = ReadingPublisher(device, queue_limit=3)
    published, dropped = (
        metric("koprogo_bacnet_readings_published_total"),
        metric("koprogo_bacnet_readings_dropped_total"),
    )
    publisher.start()
    try:
        now = utcnow()
        for second in range(4):
            topic = f"koprogo/{organization}/building/PXC-1/readings"
            publisher.publish(topic, now + timedelta(seconds=second), 20.0 + second)
        assert metric("koprogo_bacnet_readings_dropped_total") - dropped == 1
        assert publisher.unacknowledged == 3

        async def acknowledged() -> bool:
            return publisher.unacknowledged == 0

        with broker:
            assert await eventually(acknowledged, timeout=15)
        assert metric("koprogo_bacnet_readings_published_total") - published == 3
    finally:
        await publisher.close(timeout=0)


async def test_readings_reach_a_broker_requiring_tls_and_credentials(tmp_path: Path) -> None:
    authority = make_authority(tmp_path / "tls")
    with NetworkServerBroker(tmp_path / "broker", authority) as broker:
        trusting = ssl.create_default_context(cafile=str(authority.ca_file))
        publisher = ReadingPublisher(broker.endpoint, tls=trusting)
        publisher.start()
        try:
            publisher.publish("koprogo/org/building/PXC-1/readings", utcnow(), 21.5)

            async def acknowledged() -> bool:
                return publisher.unacknowledged == 0

            assert await eventually(acknowledged)
        finally:
            await publisher.close(timeout=0)


def test_timestamps_are_rfc3339_utc_to_the_millisecond() -> None:
    from datetime import UTC, datetime, timezone

    brussels = timezone(timedelta(hours=1))
    assert rfc3339(datetime(2026, 11, 28, 11, 0, 0, 123456, tzinfo=brussels)) == "2026-11-28T10:00:00.123Z"
    assert rfc3339(datetime(2026, 11, 28, 10, 0, tzinfo=UTC)) == "2026-11-28T10:00:00.000Z"
