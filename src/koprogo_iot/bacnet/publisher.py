"""Native readings to the broker with QoS 1, as a device would send them (paho-mqtt, its network thread).

While the broker is unreachable paho keeps the readings in memory (up to `queue_limit`) and sends them once it is
back: the ingest workers store each (sensor, timestamp) once, so a reading sent twice after a reconnect is harmless.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from koprogo_iot.bacnet import metrics
from koprogo_iot.mqtt_url import MqttEndpoint

log = logging.getLogger(__name__)

# Readings kept while the broker is away: half a day of 1,000 points read every 15 minutes. Below 65,535: paho
# keys its queue by message id.
QUEUE_LIMIT = 50_000


class NativeReading(msgspec.Struct):
    """The native payload; a BMS value has no battery and no radio."""

    timestamp: str
    value: float
    battery_level: None = None
    signal_strength: None = None


def rfc3339(at: datetime) -> str:
    """`2026-11-28T10:00:00.123Z`: UTC, to the millisecond (readings are stored once per sensor and timestamp)."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ReadingPublisher:
    def __init__(
        self, endpoint: MqttEndpoint, queue_limit: int = QUEUE_LIMIT, tls: ssl.SSLContext | None = None
    ) -> None:
        """`tls`: the context of an mqtts endpoint (default: the system's trusted certificate authorities)."""
        self.endpoint = endpoint
        self.queue_limit = queue_limit
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"koprogo-bacnet-{uuid.uuid4().hex[:8]}")
        if endpoint.username:
            self._client.username_pw_set(endpoint.username, endpoint.password)
        if endpoint.tls:
            self._client.tls_set_context(tls or ssl.create_default_context())
        self._client.max_queued_messages_set(queue_limit)
        # Reconnect within 30 s of the broker's return however long it was away (paho's default backoff: 2 min).
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        # Message ids published, and acknowledged (paho's thread adds to the latter, on each PUBACK, maybe before the
        # former has the id): unacknowledged = pending - acknowledged, matched ids removed from both.
        self._pending: set[int] = set()
        self._acknowledged: set[int] = set()
        self._encoder = msgspec.json.Encoder()
        self._closing = False

    def start(self) -> None:
        """Connect in the background (and reconnect whenever the broker goes away)."""
        self._client.connect_async(self.endpoint.host, self.endpoint.port)
        self._client.loop_start()

    def publish(self, topic: str, at: datetime, value: float) -> None:
        info = self._client.publish(topic, self._encoder.encode(NativeReading(rfc3339(at), value)), qos=1)
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            metrics.DROPPED.inc()
            log.warning("%d readings wait for broker %s: dropped one for %s", self.queue_limit, self.endpoint, topic)
            return
        self._pending.add(info.mid)
        self._forget_acknowledged()

    def _forget_acknowledged(self) -> None:
        matched = self._pending & self._acknowledged
        self._pending -= matched
        self._acknowledged -= matched  # in place, in one step: safe beside paho's thread adding

    @property
    def unacknowledged(self) -> int:
        self._forget_acknowledged()
        return len(self._pending)

    async def close(self, timeout: float = 5.0) -> None:
        """Give the broker `timeout` seconds to acknowledge what was published, then disconnect."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self.unacknowledged and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        if self.unacknowledged:
            log.warning("stopping with %d reading(s) the broker has not acknowledged", self.unacknowledged)
        self._closing = True
        self._client.disconnect()
        self._client.loop_stop()

    # --- paho's network thread

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            log.warning("broker %s refused the connection: %s", self.endpoint, reason)
        else:
            log.info("connected to %s", self.endpoint)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if not self._closing:
            log.warning("disconnected from %s (%s): readings wait for the reconnection", self.endpoint, reason)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        metrics.PUBLISHED.inc()
        self._acknowledged.add(mid)
