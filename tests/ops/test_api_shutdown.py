"""SIGTERM to the API process: WebSocket clients are told the service restarts (close 1012), the process exits 0."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time

import httpx
import pytest
import websockets

from koprogo_iot.bootstrap import open_storage
from tests.conftest import ENCRYPTION_KEY, PASSWORD, eventually, free_port, make_tenant
from tests.support.processes import answers, production_env

pytestmark = pytest.mark.postgres


@pytest.mark.postgres
async def test_sigterm_closes_websocket_clients_and_exits(postgres_url: str) -> None:
    storage = await open_storage(postgres_url, ENCRYPTION_KEY)
    tenant = await make_tenant(storage, "Shutdown")
    await storage.close()
    port = free_port()
    env = production_env(postgres_url, KOPROGO_HTTP_PORT=str(port), KOPROGO_NOTIFY_ENABLED="false")
    api = subprocess.Popen([sys.executable, "-m", "koprogo_iot.cli", "api"], env=env, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            await eventually(lambda: answers(client), timeout=60)
            login = {"email": tenant.syndic.email, "password": PASSWORD}
            token = (await client.post("/api/v1/auth/login", json=login)).json()["access_token"]
        async with websockets.connect(f"ws://127.0.0.1:{port}/api/v1/iot/stream?access_token={token}") as ws:
            await ws.send('{"action": "subscribe", "sensor_ids": []}')
            assert "subscribed" in await asyncio.wait_for(ws.recv(), 10)
            signalled = time.monotonic()
            api.send_signal(signal.SIGTERM)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012  # service restart: reconnect
        code = await asyncio.to_thread(api.wait, 10)
        assert code == 0 and time.monotonic() - signalled < 10
    finally:
        api.kill()
        _, err = api.communicate()
    assert b"Traceback" not in err, err.decode()
