"""An in-process MQTT broker (amqtt) for the embedded mode.

amqtt measured ~800-2,000 QoS 1 messages/s here: plenty for a building, not for load (use Mosquitto).
It does not redeliver unacknowledged messages after a reconnect and waits at most 5 s for an ack;
the production guarantees (nothing lost across a broker restart) need Mosquitto.
"""

from __future__ import annotations

import logging
from types import TracebackType

from amqtt.broker import Broker

from koprogo_iot.mqtt_url import MqttEndpoint


class EmbeddedBroker:
    """`async with EmbeddedBroker(host, port):` serves MQTT on host:port inside the running event loop."""

    def __init__(self, host: str, port: int) -> None:
        self.endpoint = MqttEndpoint(host, port)
        # Listing the plugins replaces amqtt's defaults ($SYS topics, packet loggers, psutil warnings).
        self._config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        self._broker: Broker | None = None

    async def __aenter__(self) -> EmbeddedBroker:
        for name in ("amqtt", "transitions"):  # both log every packet at INFO
            logging.getLogger(name).setLevel(logging.WARNING)
        self._broker = Broker(self._config)
        try:
            await self._broker.start()
        except Exception as exc:
            raise OSError(f"cannot start the MQTT broker on {self.endpoint}: {exc}") from exc
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._broker is not None:
            await self._broker.shutdown()
