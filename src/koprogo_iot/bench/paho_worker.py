"""The ingest worker on paho-mqtt 2 instead of our own client, for `bench ingest --client paho` only.

Issue 14 asked to decide the MQTT client with one measurement: the same pipeline, batching and acknowledgement after
commit, behind (a) `ingest.mqtt_worker` and (b) paho-mqtt 2 with `manual_ack`, driven from the asyncio loop the way
Home Assistant drives it (the socket's reads and writes on the loop's reader and writer callbacks, no network
thread). This module is (b); `benchmarks/README.md` holds the figures and the decision.

Run as `python -m koprogo_iot.bench.paho_worker` with the `koprogo-iot ingest` settings (broker URL, database,
client id, metrics port).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING

import paho.mqtt.client as mqtt
import prometheus_client
from paho.mqtt.enums import CallbackAPIVersion

from koprogo_iot import bootstrap
from koprogo_iot.config import Settings
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.credentials import INGEST_GROUP
from koprogo_iot.domain.errors import StorageUnavailable
from koprogo_iot.ingest import metrics
from koprogo_iot.ingest.mqtt_worker import MAX_BATCH, RETRY_DELAYS
from koprogo_iot.ingest.pipeline import Message, Pipeline
from koprogo_iot.ingest.topics import SUBSCRIPTION
from koprogo_iot.mqtt_url import MqttEndpoint

if TYPE_CHECKING:
    from paho.mqtt.client import SocketLike  # a protocol paho declares for type checkers only

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Received:
    message: Message
    mid: int
    session: int  # which connection delivered it: a packet id means nothing on the next one


class PahoWorker:
    def __init__(self, pipeline: Pipeline, endpoint: MqttEndpoint, client_id: str) -> None:
        self.pipeline, self.endpoint = pipeline, endpoint
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
        if endpoint.username:
            self.client.username_pw_set(endpoint.username, endpoint.password)
        self.client.max_inflight_messages_set(0)  # the broker decides how many it sends unacknowledged
        self.client.on_connect = self._connected
        self.client.on_subscribe = self._subscribed
        self.client.on_message = self._message
        self.client.on_disconnect = self._disconnected
        self.client.on_socket_open = self._socket_open
        self.client.on_socket_close = self._socket_close
        self.client.on_socket_register_write = self._want_write
        self.client.on_socket_unregister_write = self._written
        self.queue: collections.deque[_Received] = collections.deque()
        self.ready = asyncio.Event()
        self.session = 0
        self.now = utcnow()
        self.loop = asyncio.get_running_loop()
        self.lost = asyncio.Event()

    # --- paho's socket on the asyncio loop

    def _socket_open(self, client: mqtt.Client, _userdata: object, sock: SocketLike) -> None:
        self.loop.add_reader(sock, self._read)

    def _read(self) -> None:
        self.now = utcnow()  # one clock read per socket read, as the own client does
        self.client.loop_read()

    def _socket_close(self, client: mqtt.Client, _userdata: object, sock: SocketLike) -> None:
        self.loop.remove_reader(sock)
        self.loop.remove_writer(sock)

    def _want_write(self, client: mqtt.Client, _userdata: object, sock: SocketLike) -> None:
        self.loop.add_writer(sock, client.loop_write)

    def _written(self, client: mqtt.Client, _userdata: object, sock: SocketLike) -> None:
        self.loop.remove_writer(sock)

    # --- MQTT

    def _connected(self, client: mqtt.Client, _u: object, _flags: object, reason: object, _p: object) -> None:
        self.session += 1
        client.subscribe(f"$share/{INGEST_GROUP}/{SUBSCRIPTION}", qos=1)

    def _subscribed(self, _c: mqtt.Client, _u: object, _mid: int, _reasons: object, _p: object) -> None:
        metrics.SUBSCRIBED.set(1)

    def _message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        self.queue.append(_Received(Message(msg.topic, bytes(msg.payload), self.now), msg.mid, self.session))
        self.ready.set()

    def _disconnected(self, _c: mqtt.Client, _u: object, _flags: object, reason: object, _p: object) -> None:
        metrics.SUBSCRIBED.set(0)
        self.lost.set()

    async def run(self) -> None:
        consumer = asyncio.create_task(self._consume())
        try:
            while True:
                self.lost.clear()
                try:
                    self.client.connect(self.endpoint.host, self.endpoint.port, keepalive=30)
                except OSError as exc:
                    log.warning("cannot reach %s (%s); retrying", self.endpoint, exc)
                    await asyncio.sleep(1)
                    continue
                while not self.lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.lost.wait(), 1)
                    self.client.loop_misc()  # keep-alive
        finally:
            consumer.cancel()
            self.client.disconnect()

    async def _consume(self) -> None:
        while True:
            await self.ready.wait()
            taken = [self.queue.popleft() for _ in range(min(MAX_BATCH, len(self.queue)))]
            if not self.queue:
                self.ready.clear()
            metrics.QUEUE_DEPTH.set(len(self.queue))
            attempt = 0
            while True:
                try:
                    await self.pipeline.handle([r.message for r in taken])
                    break
                except StorageUnavailable as exc:
                    log.warning("storage unavailable (%s); retrying", exc)
                    await asyncio.sleep(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)])
                    attempt += 1
            for received in taken:  # acknowledged once stored, on the connection that delivered them
                if received.session == self.session:
                    self.client.ack(received.mid, 1)


async def main() -> None:
    settings = Settings()
    if settings.ingest.metrics_port:
        prometheus_client.start_http_server(settings.ingest.metrics_port, addr=settings.http.host)
    bus = await bootstrap.checked_bus(settings)
    storage = await bootstrap.open_server_storage(settings, apply_migrations=False)
    try:
        worker = PahoWorker(
            bootstrap.build_pipeline(settings, storage, bus),
            bootstrap.mqtt_endpoint(settings),
            settings.ingest_client_id(),
        )
        task = asyncio.ensure_future(worker.run())
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        await bus.close()
        await storage.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(main())
