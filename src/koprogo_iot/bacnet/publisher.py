"""Native readings to the broker with QoS 1, as a device would send them (paho-mqtt, its network thread).

While the broker is unreachable paho keeps the readings in memory (up to `QUEUE_LIMIT`) and sends them once it is
back: the ingest workers store each (sensor, timestamp) once, so a reading sent twice after a reconnect is harmless.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from koprogo_iot.bacnet import metrics
from koprogo_iot.mqtt_url import MqttEndpoint

log = logging.getLogger(__name__)

QUEUE_LIMIT = 100_000  # readings kept while the broker is away: a day of 1,000 points at 15 minutes


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
    def __init__(self, endpoint: MqttEndpoint) -> None:
        self.endpoint = endpoint
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"koprogo-bacnet-{uuid.uuid4().hex[:8]}")
        if endpoint.username:
            self._client.username_pw_set(endpoint.username, endpoint.password)
        self._client.max_queued_messages_set(QUEUE_LIMIT)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        # Published, not yet known to be acknowledged: paho's thread marks each one published on its PUBACK.
        self._pending: deque[mqtt.MQTTMessageInfo] = deque()
        self._encoder = msgspec.json.Encoder()

    def start(self) -> None:
        """Connect in the background (and reconnect whenever the broker goes away)."""
        self._client.connect_async(self.endpoint.host, self.endpoint.port)
        self._client.loop_start()

    def publish(self, topic: str, at: datetime, value: float) -> None:
        info = self._client.publish(topic, self._encoder.encode(NativeReading(rfc3339(at), value)), qos=1)
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            metrics.DROPPED.inc()
            log.warning("%d readings wait for broker %s: dropped one for %s", QUEUE_LIMIT, self.endpoint, topic)
            return
        self._pending.append(info)
        while self._pending and self._pending[0].is_published():  # acknowledged in order, mostly
            self._pending.popleft()

    @property
    def unacknowledged(self) -> int:
        return sum(1 for info in self._pending if not info.is_published())

    async def close(self, timeout: float = 5.0) -> None:
        """Give the broker `timeout` seconds to acknowledge what was published, then disconnect."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self.unacknowledged and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        if self.unacknowledged:
            log.warning("stopping with %d reading(s) the broker has not acknowledged", self.unacknowledged)
        self._client.disconnect()
        self._client.loop_stop()

    # --- paho's network thread

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            log.warning("broker %s refused the connection: %s", self.endpoint, reason)
        else:
            log.info("connected to %s", self.endpoint)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:  # not our own disconnect at the end
            log.warning("disconnected from %s (%s): readings wait for the reconnection", self.endpoint, reason)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        metrics.PUBLISHED.inc()
