"""Critical alerts pushed to connected dashboards: the bus (in-process and Redis) and `WS /iot/stream`."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
import uvicorn
import websockets

from koprogo_iot.api.app import create_app
from koprogo_iot.bootstrap import build_services
from koprogo_iot.domain.alerts import AlertSeverity
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.live.bus import LiveAlert, LiveBus
from koprogo_iot.live.memory import MemoryBus
from koprogo_iot.live.redis_streams import RedisStreamBus
from koprogo_iot.storage.ports import Storage
from tests.conftest import PASSWORD, RedisServer, Tenant, eventually, free_port, make_tenant
from tests.notify.conftest import insert_alert, later, make_notifier, repeat


class Listener:
    """Collects the alerts a bus delivers to one organization, from a background task."""

    def __init__(self, bus: LiveBus, tenant: Tenant) -> None:
        self.received: list[LiveAlert] = []
        self._task = asyncio.create_task(self._listen(bus, tenant))

    async def _listen(self, bus: LiveBus, tenant: Tenant) -> None:
        async for alert in bus.subscribe_alerts(tenant.organization.id):
            self.received.append(alert)

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def heard(listener: Listener, count: int = 1) -> bool:
    return len(listener.received) >= count


async def test_the_notifier_publishes_a_critical_alert_once_and_its_escalation(storage: Storage) -> None:
    a, b = await make_tenant(storage, "A"), await make_tenant(storage, "B")
    bus = MemoryBus()
    by_a, by_b = Listener(bus, a), Listener(bus, b)
    await asyncio.sleep(0)  # a yield, not a wait: the listeners' tasks start and subscribe
    notifier = make_notifier(storage, bus=bus)
    start = utcnow()
    critical = await insert_alert(storage, a.common_sensor, start)
    warning = await insert_alert(storage, a.unit_sensor, start, AlertSeverity.WARNING)
    b_critical = await insert_alert(storage, b.common_sensor, start)  # B hears its own: proof that it listens
    await notifier.run_once(start)
    await eventually(lambda: heard(by_a))
    await eventually(lambda: heard(by_b))
    assert [(x.id, x.severity, x.purpose) for x in by_a.received] == [(critical, "critical", "opened")]
    assert by_a.received[0].reading_value == 75.0 and by_a.received[0].sensor_id == a.common_sensor.id

    await repeat(storage, a.common_sensor, critical, later(start, minutes=1))
    await notifier.run_once(later(start, hours=5))  # a reminder: not published again
    await repeat(storage, a.unit_sensor, warning, later(start, hours=5, minutes=1), AlertSeverity.CRITICAL)
    await notifier.run_once(later(start, hours=5, minutes=2))
    await eventually(lambda: heard(by_a, 2))
    assert [(x.id, x.purpose) for x in by_a.received[1:]] == [(warning, "escalated")]
    await by_a.stop()
    await by_b.stop()
    assert [x.id for x in by_b.received] == [b_critical]  # and nothing of A's


async def test_redis_stream_bus_carries_alerts(storage: Storage, redis_server: RedisServer) -> None:
    t = await make_tenant(storage)
    bus = RedisStreamBus(redis_server.url)
    listener = Listener(bus, t)
    alert_id = await insert_alert(storage, t.common_sensor, utcnow())
    alert = await storage.alerts.get(t.organization.id, alert_id)

    async def published_and_heard() -> bool:
        if not listener.received:  # a subscription only sees what follows it: publish until heard
            await bus.publish_alert(t.organization.id, LiveAlert.of(alert, "opened"))
        return bool(listener.received)

    try:
        await eventually(published_and_heard, timeout=10)
    finally:
        await listener.stop()
        await bus.close()
    assert listener.received[0] == LiveAlert.of(alert, "opened")
    assert listener.received[0].triggered_at.tzinfo is not None


@pytest.fixture
async def served(storage: Storage) -> AsyncIterator[tuple[str, MemoryBus]]:
    """The API on a free port (WebSockets need a real server), with an in-process bus the test publishes on."""
    bus = MemoryBus()
    port = free_port()
    config = uvicorn.Config(
        create_app(build_services(storage, "test-secret-" + "x" * 40, bus=bus)),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await eventually(lambda: _started(server), timeout=10)
    yield f"127.0.0.1:{port}", bus
    server.should_exit = True
    await asyncio.wait_for(task, timeout=10)


async def _started(server: uvicorn.Server) -> bool:
    return server.started


async def test_the_stream_forwards_critical_alerts_of_subscribed_sensors(
    storage: Storage, served: tuple[str, MemoryBus]
) -> None:
    address, bus = served
    t = await make_tenant(storage, "Stream")
    async with httpx.AsyncClient(base_url=f"http://{address}") as client:
        login = await client.post("/api/v1/auth/login", json={"email": t.owner.email, "password": PASSWORD})
        token = login.json()["access_token"]
    async with websockets.connect(f"ws://{address}/api/v1/iot/stream?access_token={token}") as ws:
        await ws.send(json.dumps({"action": "subscribe", "sensor_ids": [str(t.unit_sensor.id)]}))
        assert json.loads(await ws.recv())["type"] == "subscribed"
        notifier = make_notifier(storage, bus=bus)
        start = utcnow()
        await insert_alert(storage, t.other_unit_sensor, start)  # a neighbour's: not visible to this owner
        await insert_alert(storage, t.common_sensor, start)  # visible, but not subscribed
        await notifier.run_once(start)
        mine = await insert_alert(storage, t.unit_sensor, start + timedelta(seconds=1))
        await notifier.run_once(start + timedelta(seconds=2))
        async with asyncio.timeout(10):
            message = json.loads(await ws.recv())
    assert message["type"] == "alert"
    assert (message["alert"]["id"], message["alert"]["severity"]) == (str(mine), "critical")
    assert message["alert"]["sensor_id"] == str(t.unit_sensor.id) and message["alert"]["reading_value"] == 75.0
