"""Two ingesting transactions cannot deadlock on the sensors' last readings: each locks its sensors in id order.

Shown deterministically rather than by chance: a third transaction holds the middle sensor, so a batch of
(C, A, B) that locks in id order holds A and waits for B; it has not touched C, which another batch then
updates at once. Had it locked C first (batch order), the other batch would wait on it: the deadlock of two
workers, one side of it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from koprogo_iot.bootstrap import open_storage
from koprogo_iot.domain.detection import reading_decisions
from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.domain.rules import effective_rules
from koprogo_iot.domain.sensors import IoTSensor
from koprogo_iot.storage.ports import Ingested
from tests.conftest import ENCRYPTION_KEY, POSTGRES_ADMIN_URL, eventually, make_tenant

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def reading(sensor: IoTSensor, minutes: int) -> Ingested:
    r = IoTReading.measured(sensor, T0 + timedelta(minutes=minutes), 1.0)
    return Ingested(r, reading_decisions(sensor, effective_rules(sensor), r, None))


async def test_a_batch_locks_its_sensors_in_id_order(postgres_url: str) -> None:
    storage = await open_storage(postgres_url, ENCRYPTION_KEY)
    tenant = await make_tenant(storage)
    first, middle, last = sorted(
        (tenant.common_sensor, tenant.unit_sensor, tenant.other_unit_sensor), key=lambda s: s.id
    )
    holder = await asyncpg.connect(postgres_url)
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        holding = holder.transaction()
        await holding.start()
        await holder.execute("SELECT 1 FROM iot_sensors WHERE id = $1 FOR NO KEY UPDATE", middle.id)
        blocked = asyncio.create_task(
            storage.readings.ingest([reading(last, 1), reading(first, 1), reading(middle, 1)])
        )

        async def waiting_for_a_lock() -> bool:
            database = postgres_url.rsplit("/", 1)[1]
            return bool(
                await admin.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'", database
                )
            )

        await eventually(waiting_for_a_lock, timeout=10)
        # The last sensor is free: the blocked batch took its locks in id order and stopped at the middle one.
        assert await asyncio.wait_for(storage.readings.ingest([reading(last, 2)]), timeout=5)
        await holding.rollback()
        assert len(await asyncio.wait_for(blocked, timeout=10)) == 3
        assert (await storage.sensors.get(tenant.organization.id, last.id)).last_reading_at == T0 + timedelta(minutes=2)
    finally:
        await holder.close()
        await admin.close()
        await storage.close()
