"""The MQTT side of ingestion: receive with paho, store in batches, acknowledge only what is stored."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.errors import StorageUnavailable
from koprogo_iot.ingest import metrics
from koprogo_iot.ingest.pipeline import Message, Pipeline
from koprogo_iot.ingest.topics import SUBSCRIPTION
from koprogo_iot.mqtt_url import MqttEndpoint

log = logging.getLogger(__name__)

MAX_BATCH = 500
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)  # seconds between attempts to store a batch the database refused


@dataclass(frozen=True, slots=True)
class _Delivery:
    mid: int
    qos: int
    generation: int  # which connection delivered it: a packet id means nothing on another connection
    message: Message


class MqttIngestWorker:
    """Subscribes to every native reading topic; a QoS 1 message is acknowledged after its batch commits.

    paho runs its network loop in its own thread and hands messages to the asyncio loop through a queue.
    The session is persistent (clean_session=False), so what was not acknowledged before a crash or a
    disconnection is delivered again by the broker, and stored once thanks to the (sensor, timestamp) key.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        endpoint: MqttEndpoint,
        client_id: str = "koprogo-ingest",
        share_group: str | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.endpoint = endpoint
        self.client_id = client_id
        # With a shared subscription the broker spreads messages over the workers of the group.
        self.subscription = f"$share/{share_group}/{SUBSCRIPTION}" if share_group else SUBSCRIPTION
        self.subscribed = asyncio.Event()
        self._queue: asyncio.Queue[_Delivery] = asyncio.Queue()
        self._generation = 0
        self._stopping = False

    async def run(self) -> None:
        """Ingest until cancelled."""
        loop = asyncio.get_running_loop()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
        if self.endpoint.username:
            client.username_pw_set(self.endpoint.username, self.endpoint.password)

        # paho calls these on its own thread: hand everything over to the event loop.
        def on_connect(c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
            loop.call_soon_threadsafe(self._connected, c, rc)

        def on_subscribe(_c: mqtt.Client, _u: Any, _m: Any, _rc: Any, _p: Any) -> None:
            loop.call_soon_threadsafe(self._subscribed)

        def on_disconnect(_c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
            loop.call_soon_threadsafe(self._disconnected, rc)

        def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
            loop.call_soon_threadsafe(self._received, msg)

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_disconnect = on_disconnect
        client.on_message = on_message
        # Reconnect fast: after a broker restart, Mosquitto 2.0 forgets shared subscriptions until the workers
        # subscribe again, and drops what arrives for them meanwhile (see tests/faults).
        client.reconnect_delay_set(min_delay=0.1, max_delay=5)  # type: ignore[arg-type]  # paho sleeps floats fine
        client.connect_async(self.endpoint.host, self.endpoint.port, keepalive=30)
        client.loop_start()
        log.info("ingest worker %s connecting to %s", self.client_id, self.endpoint)
        try:
            while True:
                batch = [await self._queue.get()]
                while len(batch) < MAX_BATCH and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                metrics.QUEUE_DEPTH.set(self._queue.qsize())
                metrics.IN_FLIGHT.set(len(batch))
                await self._store(batch)
                for delivery in batch:
                    if delivery.generation == self._generation:
                        client.ack(delivery.mid, delivery.qos)
                metrics.IN_FLIGHT.set(0)
        finally:
            self._stopping = True
            client.disconnect()
            client.loop_stop()

    def _connected(self, client: mqtt.Client, reason: Any) -> None:
        if reason.is_failure:
            log.error("MQTT broker %s refused the connection: %s", self.endpoint, reason)
            return
        self._generation += 1
        log.info("connected to %s, subscribing to %s", self.endpoint, self.subscription)
        client.subscribe(self.subscription, qos=1)

    def _subscribed(self) -> None:
        self.subscribed.set()
        metrics.SUBSCRIBED.set(1)

    def _disconnected(self, reason: Any) -> None:
        self.subscribed.clear()
        metrics.SUBSCRIBED.set(0)
        if not self._stopping:
            log.warning("disconnected from %s (%s); reconnecting", self.endpoint, reason)

    def _received(self, msg: mqtt.MQTTMessage) -> None:
        message = Message(msg.topic, bytes(msg.payload), utcnow())
        self._queue.put_nowait(_Delivery(msg.mid, msg.qos, self._generation, message))

    async def _store(self, batch: list[_Delivery]) -> None:
        """Store the batch, waiting for the database as long as it takes: unstored means unacknowledged."""
        attempt = 0
        while True:
            try:
                await self.pipeline.handle([d.message for d in batch])
                return
            except StorageUnavailable as exc:
                delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
                log.warning("storage unavailable (%s); retrying %d messages in %.1f s", exc, len(batch), delay)
                attempt += 1
                await asyncio.sleep(delay)
