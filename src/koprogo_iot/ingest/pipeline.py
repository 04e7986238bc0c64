"""From one MQTT message to a reading ready to store, or a named rejection."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from koprogo_iot.devices import native
from koprogo_iot.domain.alerts import threshold_decision
from koprogo_iot.domain.errors import NotFound, StorageUnavailable
from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.domain.sensors import IoTSensor, SensorStatus
from koprogo_iot.ingest.rejections import Reason, Rejected
from koprogo_iot.ingest.topics import ReadingTopic
from koprogo_iot.storage.ports import Ingested, Store

log = logging.getLogger(__name__)

# Beyond this magnitude a meter value is a decoding error, not a measurement.
MAX_ABS_VALUE = 1e12


@dataclass(frozen=True, slots=True)
class IngestLimits:
    max_payload_bytes: int = 16_384
    max_clock_skew: timedelta = timedelta(minutes=5)  # how far in the future a device clock may run
    oldest: datetime = datetime(2020, 1, 1, tzinfo=UTC)  # unsynchronized device clocks report 1970


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    received_at: datetime


@dataclass
class IngestStats:
    """Counters since start: what came in and what became of it."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)


class Pipeline:
    """Validates and enriches messages, then stores them in batches (one transaction per batch)."""

    def __init__(self, store: Store, limits: IngestLimits | None = None) -> None:
        self.store = store
        self.limits = limits or IngestLimits()
        self.stats = IngestStats()

    async def prepare(self, message: Message) -> Ingested:
        """The reading a message carries, with its alert decision; raises `Rejected` with the reason."""
        if len(message.payload) > self.limits.max_payload_bytes:
            raise Rejected(
                Reason.PAYLOAD_TOO_LARGE,
                f"{len(message.payload)} bytes > {self.limits.max_payload_bytes} allowed",
            )
        topic = ReadingTopic.parse(message.topic)
        try:
            payload = native.decode(message.payload)
        except native.InvalidJson as exc:
            raise Rejected(Reason.INVALID_JSON, str(exc)) from None
        except native.SchemaViolation as exc:
            raise Rejected(Reason.SCHEMA_VIOLATION, str(exc)) from None
        except native.NonFiniteValue as exc:
            raise Rejected(Reason.VALUE_NOT_FINITE, str(exc)) from None
        sensor = await self._sensor(topic)
        self._check_time(payload.timestamp, message.received_at)
        value = sensor.calibrate(payload.value)
        problem = sensor.accepts(value)  # also catches a calibration that overflows to infinity
        if problem or abs(value) > MAX_ABS_VALUE:
            raise Rejected(Reason.VALUE_OUT_OF_RANGE, problem or f"value {value:g} is implausibly large")
        reading = IoTReading.measured(
            sensor,
            payload.timestamp,
            payload.value,
            battery_level=payload.battery_level,
            signal_strength=payload.signal_strength,
            received_at=message.received_at,
        )
        return Ingested(reading, threshold_decision(sensor, reading))

    async def _sensor(self, topic: ReadingTopic) -> IoTSensor:
        sensor = await self.store.find_sensor(topic.organization_id, topic.device_id)
        if sensor is None:
            # Only now pay for the look-ups that tell an operator what is wrong with the topic.
            try:
                await self.store.get_organization(topic.organization_id)
            except NotFound:
                raise Rejected(Reason.UNKNOWN_ORGANIZATION, f"no organization {topic.organization_id}") from None
            try:
                await self.store.get_building(topic.organization_id, topic.building_id)
            except NotFound:
                raise Rejected(
                    Reason.TENANT_MISMATCH,
                    f"building {topic.building_id} does not belong to organization {topic.organization_id}",
                ) from None
            raise Rejected(
                Reason.UNKNOWN_SENSOR,
                f"sensor {topic.device_id!r} is not registered in organization {topic.organization_id}",
            )
        if sensor.building_id != topic.building_id:
            raise Rejected(
                Reason.TENANT_MISMATCH,
                f"sensor {topic.device_id!r} belongs to building {sensor.building_id}, not {topic.building_id}",
            )
        if sensor.status is SensorStatus.INACTIVE:
            raise Rejected(Reason.SENSOR_INACTIVE, f"sensor {topic.device_id!r} is inactive")
        return sensor

    def _check_time(self, timestamp: datetime, received_at: datetime) -> None:
        if timestamp > received_at + self.limits.max_clock_skew:
            raise Rejected(Reason.TIMESTAMP_IN_FUTURE, f"timestamp {timestamp.isoformat()} is in the future")
        if timestamp < self.limits.oldest:
            raise Rejected(
                Reason.TIMESTAMP_TOO_OLD,
                f"timestamp {timestamp.isoformat()} is before {self.limits.oldest:%Y}",
            )

    async def handle(self, messages: Sequence[Message]) -> list[Reason | None]:
        """Store what is valid in one transaction; return, per message, its rejection reason or None.

        Storage errors propagate: the caller must not acknowledge the batch and should retry it.
        """
        outcomes: list[Reason | None] = []
        accepted: list[Ingested] = []
        for message in messages:
            try:
                accepted.append(await self.prepare(message))
                outcomes.append(None)
            except Rejected as rejection:
                outcomes.append(rejection.reason)
                log.warning("rejected message on %s: %s", message.topic, rejection)
            except StorageUnavailable:
                raise
            except Exception:
                # A bug must cost one message, not the worker: the message is counted and logged in full.
                outcomes.append(Reason.INTERNAL_ERROR)
                log.exception("internal error on %s, payload %r", message.topic, message.payload[:200])
        stored = await self.store.ingest(accepted) if accepted else 0
        self.stats.received += len(messages)
        self.stats.stored += stored
        self.stats.duplicates += len(accepted) - stored
        self.stats.rejected.update(r.value for r in outcomes if r is not None)
        return outcomes
