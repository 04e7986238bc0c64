"""`WS /iot/stream`: stored readings pushed live to dashboards.

Authenticate with `?access_token=<token>` (browsers cannot set headers on a WebSocket), then send
`{"action": "subscribe", "sensor_ids": [...]}` and/or `"building_ids": [...]`; an empty subscription means
every sensor the caller may read (listed again at each subscribe message). Messages out are
`{"type": "readings", "readings": [...]}`, and `{"type": "alert", "alert": {...}}` when people are told of a
critical alert on a subscribed sensor.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from uuid import UUID

import msgspec
from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status

from koprogo_iot.domain.errors import AuthenticationFailed
from koprogo_iot.live.bus import LiveAlert, LiveReading
from koprogo_iot.services.container import Services

router = APIRouter(prefix="/iot", tags=["live"])


class _Subscribe(msgspec.Struct, forbid_unknown_fields=True):
    action: str
    sensor_ids: list[UUID] = []
    building_ids: list[UUID] = []


_decoder = msgspec.json.Decoder(_Subscribe)
_encoder = msgspec.json.Encoder()


@router.websocket("/stream")
async def stream(websocket: WebSocket, access_token: str = "") -> None:
    services: Services = websocket.app.state.services
    try:
        principal = await services.accounts.principal(access_token)
    except AuthenticationFailed as exc:
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason=str(exc))
        return
    await websocket.accept()
    visible = {s.id: s for s in await services.provisioning.list_sensors(principal)}
    wanted: set[UUID] = set(visible)
    subscription = services.bus.subscribe(principal.organization_id)
    forward = asyncio.create_task(_forward(websocket, subscription, wanted))
    alert_subscription = services.bus.subscribe_alerts(principal.organization_id)
    alerts = asyncio.create_task(_forward_alerts(websocket, alert_subscription, wanted))
    try:
        while True:
            try:
                request = _decoder.decode(await websocket.receive_text())
            except msgspec.DecodeError as exc:
                await websocket.send_json({"type": "error", "message": f"expected a subscribe message: {exc}"})
                continue
            if request.action != "subscribe":
                await websocket.send_json({"type": "error", "message": f"unknown action {request.action!r}"})
                continue
            # Only what the caller may read: ids of other units or organizations are silently dropped. Listed
            # again at each subscription, so that a dashboard sees the sensors registered since it connected.
            visible = {s.id: s for s in await services.provisioning.list_sensors(principal)}
            chosen = {i for i in request.sensor_ids if i in visible}
            chosen |= {i for i, s in visible.items() if s.building_id in set(request.building_ids)}
            wanted.clear()
            wanted.update(chosen if (request.sensor_ids or request.building_ids) else visible)
            await websocket.send_json({"type": "subscribed", "sensor_ids": sorted(str(i) for i in wanted)})
    except WebSocketDisconnect:
        pass
    finally:
        for task in (forward, alerts):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _forward(websocket: WebSocket, subscription: AsyncIterator[list[LiveReading]], wanted: set[UUID]) -> None:
    async for batch in subscription:
        chosen = [r for r in batch if r.sensor_id in wanted]
        if chosen:  # text frames: what a browser's WebSocket hands over as a string
            await websocket.send_text(_encoder.encode({"type": "readings", "readings": chosen}).decode())


async def _forward_alerts(websocket: WebSocket, subscription: AsyncIterator[LiveAlert], wanted: set[UUID]) -> None:
    async for alert in subscription:
        if alert.sensor_id in wanted:
            await websocket.send_text(_encoder.encode({"type": "alert", "alert": alert}).decode())
