"""An MQTT 5 client for tests that ask what the broker answered: CONNACK, PUBACK and SUBACK reason codes, and
being disconnected. MQTT 5 because a 3.1.1 broker acknowledges a refused publish like an accepted one."""

from __future__ import annotations

import queue
import ssl
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from koprogo_iot.mqtt_url import MqttEndpoint

TIMEOUT = 10.0


class Client:
    def __init__(self, endpoint: MqttEndpoint, tls: ssl.SSLContext | None = None, version: int = mqtt.MQTTv5) -> None:
        """`version`: mqtt.MQTTv311 for a broker without MQTT 5 (amqtt); its refused publishes look accepted."""
        self.endpoint = endpoint
        self._events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:10]}", protocol=version
        )
        if endpoint.username:
            self._client.username_pw_set(endpoint.username, endpoint.password)
        if tls is not None:
            self._client.tls_set_context(tls)
        self._client.on_connect = lambda _c, _u, _f, reason, _p: self._events.put(("connack", reason))
        self._client.on_disconnect = lambda _c, _u, _f, reason, _p: self._events.put(("disconnect", reason))
        self._client.on_publish = lambda _c, _u, _m, reason, _p: self._events.put(("puback", reason))
        self._client.on_subscribe = lambda _c, _u, _m, reasons, _p: self._events.put(("suback", reasons[0]))
        self._client.on_message = lambda _c, _u, message: self._events.put(("message", message.topic))

    def _next(self, kind: str) -> Any:
        """The next event of `kind` (others before it are dropped), or AssertionError after TIMEOUT."""
        while True:
            try:
                got, value = self._events.get(timeout=TIMEOUT)
            except queue.Empty:
                raise AssertionError(f"no {kind} within {TIMEOUT:g} s") from None
            if got == kind:
                return value

    def connect(self) -> ReasonCode:
        """The broker's CONNACK reason ("Success", "Not authorized", "Bad user name or password")."""
        self._client.reconnect_delay_set(60, 60)  # a refused client must not retry behind the test's back
        self._client.connect(self.endpoint.host, self.endpoint.port, keepalive=30)
        self._client.loop_start()
        return self._next("connack")

    def publish(self, topic: str, payload: str = "{}") -> ReasonCode:
        self._client.publish(topic, payload, qos=1)
        return self._next("puback")

    def subscribe(self, topic_filter: str) -> ReasonCode:
        self._client.subscribe(topic_filter, qos=1)
        return self._next("suback")

    def disconnected(self) -> ReasonCode:
        """Wait until the broker closes the connection; its reason."""
        return self._next("disconnect")

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
