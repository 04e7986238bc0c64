"""From MQTT messages to stored readings: decode, validate, enrich, decide alerts, store in one batch.

Every refusal has a named reason (`rejections.Reason`), a metric, and a dead letter in the store.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

from koprogo_iot.devices import native
from koprogo_iot.devices.base import DecodeError, Decoder, DeviceReading
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.dead_letters import DeadLetter
from koprogo_iot.domain.detection import reading_decisions
from koprogo_iot.domain.devices import MAX_FIELDS, DeviceSighting, SeenField
from koprogo_iot.domain.errors import InvalidValue, NotFound, StorageFault, StorageUnavailable
from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.domain.rules import AlertRules
from koprogo_iot.domain.sensors import DeviceFormat, IoTSensor, MeasurementKind, SensorStatus
from koprogo_iot.domain.units import canonical, conversion_factor
from koprogo_iot.ingest import metrics
from koprogo_iot.ingest.directory import SensorDirectory
from koprogo_iot.ingest.quota import MinuteQuota
from koprogo_iot.ingest.rate_limit import RateLimiter
from koprogo_iot.ingest.rejections import Reason, Rejected
from koprogo_iot.ingest.topics import Origin, ParsedTopic
from koprogo_iot.live.bus import LiveBus
from koprogo_iot.logs import about
from koprogo_iot.storage.ports import Ingested, Storage

log = logging.getLogger(__name__)

# Beyond this magnitude a meter value is a decoding error, not a measurement.
MAX_ABS_VALUE = 1e12
# Device ids and field names come from payloads: bounded, and printable (a NUL or a lone surrogate, which a JSON
# string may hold, is refused by PostgreSQL and would fail the whole batch's transaction).
MAX_DEVICE_ID = 128
MAX_FIELD_NAME = 200


def _usable_name(text: str, limit: int) -> bool:
    return 0 < len(text) <= limit and text.isprintable()


MAX_FLAG = 40


def _printable_flags(reading: DeviceReading) -> DeviceReading:
    """A device's status words go into alert messages: whatever is not printable is shown as U+FFFD, each word
    bounded (a garbled status still raises its alert; it cannot fail the batch's transaction)."""
    flags = reading.status_flags
    if not flags or all(_usable_name(f, MAX_FLAG) for f in flags):
        return reading
    shown = frozenset("".join(c if c.isprintable() else "\ufffd" for c in f[:MAX_FLAG]) for f in flags)
    return dataclasses.replace(reading, status_flags=shown)


@dataclass(frozen=True, slots=True)
class IngestLimits:
    max_payload_bytes: int = 16_384
    max_clock_skew: timedelta = timedelta(minutes=5)  # how far in the future a device clock may run
    oldest: datetime = datetime(2020, 1, 1, tzinfo=UTC)  # unsynchronized device clocks report 1970
    rate_per_sensor: float = 1.0  # messages per second, the specification's limit
    burst_per_sensor: float = 60.0  # a device flushing its backlog after an outage
    dead_letters_per_minute: int = 10  # kept per (topic, reason); the rest are only counted
    # ... and per (organization, reason), unknown organizations counting as one: varying the topic cannot fill the disk
    dead_letters_per_organization_minute: int = 100


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


@dataclass(frozen=True, slots=True)
class _Prepared:
    """One message of a batch, validated: what to store for it."""

    index: int  # in the batch, for its outcome
    message: Message
    readings: list[Ingested]
    letters: list[DeadLetter]


@dataclass(frozen=True, slots=True)
class _Value:
    """One value of a message, before it is checked against its sensor."""

    sensor: IoTSensor
    timestamp: datetime
    value: float
    unit: str  # the device's unit; "" when it states none (native: the sensor's own)
    battery_level: float | None
    signal_strength: int | None
    rules: AlertRules
    flags: frozenset[str] | None = None  # None: the device reports no status flags


def _with_device_flags(values: list[_Value], decoded: Sequence[DeviceReading]) -> list[_Value]:
    """`values` with the device's status flags given to one of them: one device event, one alert.

    The flags go to the device's volume meter (what a leak is about), else its first counter, else its first value;
    the device's other sensors get none (neither raised nor cleared by the flags).
    """
    flags = next((reading.status_flags for reading in decoded if reading.status_flags is not None), None)
    if flags is None or not values:
        return values

    def rank(value: _Value) -> int:
        cumulative = value.sensor.measurement_kind is MeasurementKind.CUMULATIVE
        volume = canonical(value.sensor.unit_of_measure) in ("m³", "L")
        return 0 if cumulative and volume else 1 if cumulative else 2

    chosen = min(range(len(values)), key=lambda i: rank(values[i]))
    return [dataclasses.replace(v, flags=flags) if i == chosen else v for i, v in enumerate(values)]


class Pipeline:
    """Turns batches of messages into stored readings; one instance per worker (it holds per-device state)."""

    def __init__(
        self,
        storage: Storage,
        limits: IngestLimits | None = None,
        bus: LiveBus | None = None,
        decoders: Mapping[DeviceFormat, Decoder] | None = None,
        origin: Origin | None = None,
    ) -> None:
        """`origin`: the messages are an organization's network server's, not our broker's `koprogo/` topics."""
        self.storage = storage
        self.origin = origin
        self.limits = limits or IngestLimits()
        self.bus = bus
        self.decoders = dict(decoders or {})
        self.directory = SensorDirectory(storage.sensors, storage.alert_rules.organization_rules)
        self.stats = IngestStats()
        self._rate = RateLimiter(self.limits.rate_per_sensor, self.limits.burst_per_sensor)
        self._letters_per_topic = MinuteQuota(self.limits.dead_letters_per_minute)
        self._letters_per_organization = MinuteQuota(self.limits.dead_letters_per_organization_minute)
        self._organizations: dict[UUID, bool] = {}
        self._buildings: set[tuple[UUID, UUID]] = set()  # known to exist (a building is never moved or deleted)
        self._topics: dict[str, ParsedTopic] = {}
        # Devices heard that nobody (fully) reads: their fields merged over messages, and this batch's to store.
        self._devices: dict[tuple[UUID, DeviceFormat, str], DeviceSighting] = {}
        self._sighted: dict[tuple[UUID, DeviceFormat, str], DeviceSighting] = {}

    async def handle(self, messages: Sequence[Message]) -> list[Reason | None]:
        """Store what is valid, and dead-letter the rest, in one transaction.

        Returns, per message, None when at least one of its values was accepted, else its first rejection.
        `StorageUnavailable` propagates: the caller must not acknowledge the batch and should retry it. Any other
        storage failure is the data's (a sensor deleted since it was cached, a value the database refuses): the
        batch is stored in halves until the messages at fault are found, and those are dead-lettered
        (`storage_refused`) while the rest is stored (see `_refuse_stored` for the exception).
        """
        outcomes: list[Reason | None] = []
        prepared: list[_Prepared] = []
        self._sighted.clear()
        await self.directory.prefetch(self._native_keys(messages))
        for index, message in enumerate(messages):
            readings, failures = await self._process(message)
            outcomes.append(None if readings or not failures else failures[0].reason)
            letters = []
            for failure in failures:
                letter = await self._rejected(message, failure)
                if letter is not None:
                    letters.append(letter)
            if readings or letters:
                prepared.append(_Prepared(index, message, readings, letters))
        started = time.perf_counter()
        sightings = list(self._sighted.values())
        refused: list[tuple[_Prepared, Exception]] = []
        new = await self._store(prepared, sightings, refused) if prepared or sightings else []
        if refused:
            await self._refuse_stored(prepared, refused, outcomes)
        accepted = sum(len(p.readings) for p in prepared)
        metrics.COMMIT_SECONDS.observe(time.perf_counter() - started)
        metrics.BATCH_SIZE.observe(len(messages))
        metrics.MESSAGES_RECEIVED.inc(len(messages))
        metrics.READINGS_STORED.inc(len(new))
        metrics.READINGS_DUPLICATE.inc(accepted - len(new))
        self.stats.received += len(messages)
        self.stats.stored += len(new)
        self.stats.duplicates += accepted - len(new)
        now = utcnow()
        for item in new:
            metrics.END_TO_END_SECONDS.observe(max(0.0, (now - item.reading.timestamp).total_seconds()))
        if self.bus is not None and new:
            await self._publish_live(new)
        return outcomes

    async def _rejected(self, message: Message, failure: Rejected) -> DeadLetter | None:
        """Log and count a refusal; its dead letter unless the quotas are used up."""
        log.info("rejected a value on %s: %s", message.topic, failure, extra=self._about(message.topic))
        self.stats.rejected[failure.reason.value] += 1
        metrics.MESSAGES_REJECTED.labels(failure.reason.value).inc()
        return await self._dead_letter(message, failure)

    async def _store(
        self, prepared: list[_Prepared], sightings: list[DeviceSighting], refused: list[tuple[_Prepared, Exception]]
    ) -> list[Ingested]:
        """Store `prepared` (and `sightings`) in one transaction; on a permanent failure, store it in halves down
        to the messages at fault, which are added to `refused` (not stored)."""
        try:
            return await self.storage.readings.ingest(
                [r for p in prepared for r in p.readings], [letter for p in prepared for letter in p.letters], sightings
            )
        except StorageUnavailable:
            raise  # contention included: the whole batch is retried, nothing was written
        except Exception as exc:
            failure = exc
        if sightings:  # what devices nobody reads said is a hint for registration: never worth a reading
            new = await self._store(prepared, [], refused) if prepared else []
            try:
                await self.storage.readings.ingest([], [], sightings)
            except StorageUnavailable:
                raise
            except Exception as exc:
                log.error("could not record %d device sightings: %s", len(sightings), exc)
            return new
        if len(prepared) > 1:
            half = len(prepared) // 2
            return await self._store(prepared[:half], [], refused) + await self._store(prepared[half:], [], refused)
        refused.append((prepared[0], failure))
        return []

    async def _refuse_stored(
        self, prepared: list[_Prepared], refused: list[tuple[_Prepared, Exception]], outcomes: list[Reason | None]
    ) -> None:
        """The messages whose rows the database refused: their sensors are looked up afresh (a sensor deleted
        meanwhile is then an `unknown_sensor`, without failing another batch), and they are dead-lettered.

        Unless every message of the batch, of several sensors, was refused: that is no poison but a fault of ours
        or of the schema (a migration not applied, a bug), which dead-lettering would turn into lost readings. The
        batch is then retried as a whole, like an outage (`StorageFault`), and acknowledged only once stored.
        """
        sensors = {r.reading.sensor_id for at_fault, _ in refused for r in at_fault.readings}
        self.directory.forget_ids(sensors)
        self._organizations.clear()  # an organization deleted meanwhile is seen as such from now on
        if len(refused) == len(prepared) > 1 and len(sensors) > 1:
            failure = refused[0][1]
            raise StorageFault(
                f"the database refused each of the {len(prepared)} messages of a batch, of {len(sensors)} sensors "
                f"({type(failure).__name__}: {failure})"
            )
        for at_fault, failure in refused:
            message = at_fault.message
            outcomes[at_fault.index] = Reason.STORAGE_REFUSED
            why = Rejected(Reason.STORAGE_REFUSED, f"{type(failure).__name__}: {failure}")
            letter = await self._rejected(message, why)
            letters = [*at_fault.letters, letter] if letter is not None else at_fault.letters
            try:
                await self.storage.readings.ingest([], letters)
            except StorageUnavailable:
                raise
            except Exception as exc:  # not even its dead letter: counted and logged, never a stopped worker
                about = self._about(message.topic)
                log.error("could not dead-letter a message on %s: %s", message.topic, exc, extra=about)

    async def _process(self, message: Message) -> tuple[list[Ingested], list[Rejected]]:
        try:
            if len(message.payload) > self.limits.max_payload_bytes:
                raise Rejected(
                    Reason.PAYLOAD_TOO_LARGE,
                    f"{len(message.payload)} bytes > {self.limits.max_payload_bytes} allowed",
                )
            topic = self._topic(message.topic)
            values = await (
                self._native(topic, message)
                if topic.device_format is DeviceFormat.NATIVE
                else self._device(topic, message)
            )
        except Rejected as rejection:
            return [], [rejection]
        except StorageUnavailable:
            raise
        except Exception as exc:
            # A bug must cost one message, not the worker: counted, dead-lettered and logged in full.
            log.exception("internal error on %s", message.topic, extra=self._about(message.topic))
            return [], [Rejected(Reason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")]
        readings, failures = [], []
        for value in values:
            try:
                readings.append(self._check(value, message.received_at))
            except Rejected as rejection:
                failures.append(rejection)
        return readings, failures

    def _about(self, topic: str) -> dict[str, str]:
        """The organization, building and sensor of a topic already parsed, for a log line about it."""
        parsed = self._topics.get(topic)
        if parsed is None:
            return about(topic=topic)
        native = parsed.device_format is DeviceFormat.NATIVE
        return about(parsed.organization_id, parsed.rest if native else None, parsed.building_id, topic)

    def _native_keys(self, messages: Sequence[Message]) -> Iterator[tuple[UUID, str, str]]:
        """The directory keys of the native messages' sensors (a malformed topic is refused later, in order)."""
        for message in messages:
            try:
                topic = self._topic(message.topic)
            except Rejected:
                continue
            if topic.device_format is DeviceFormat.NATIVE:
                yield topic.organization_id, topic.rest, ""

    def _topic(self, name: str) -> ParsedTopic:
        """Parsed once per topic: a fleet repeats the same few thousand topics (parsing costs two UUIDs)."""
        topic = self._topics.get(name)
        if topic is None:
            topic = ParsedTopic.parse(name) if self.origin is None else self.origin.topic(name)
            if len(self._topics) >= 100_000:  # bounded: topics are chosen by whoever publishes
                self._topics.clear()
            self._topics[name] = topic
        return topic

    async def _native(self, topic: ParsedTopic, message: Message) -> list[_Value]:
        try:
            payload = native.decode(message.payload)
        except DecodeError as exc:
            raise Rejected(Reason(exc.reason), str(exc)) from None
        except native.InvalidJson as exc:
            raise Rejected(Reason.INVALID_JSON, str(exc)) from None
        except native.SchemaViolation as exc:
            raise Rejected(Reason.SCHEMA_VIOLATION, str(exc)) from None
        except native.NonFiniteValue as exc:
            raise Rejected(Reason.VALUE_NOT_FINITE, str(exc)) from None
        sensor = await self.directory.find(topic.organization_id, topic.rest)
        if sensor is None:
            raise await self._why_unknown(topic, topic.rest)
        self._check_placement(sensor, topic)
        rules = await self.directory.rules(sensor)
        return [
            _Value(sensor, payload.timestamp, payload.value, "", payload.battery_level, payload.signal_strength, rules)
        ]

    async def _device(self, topic: ParsedTopic, message: Message) -> list[_Value]:
        decoder = self.decoders.get(topic.device_format)
        if decoder is None:
            raise Rejected(Reason.INVALID_TOPIC, f"the {topic.device_format.value} format is not enabled")
        try:
            decoded = decoder.decode(topic.rest, message.payload, message.received_at)
        except DecodeError as exc:
            raise Rejected(Reason(exc.reason), str(exc)) from None
        for reading in decoded:
            if not _usable_name(reading.device, MAX_DEVICE_ID) or not _usable_name(reading.quantity, MAX_FIELD_NAME):
                raise Rejected(
                    Reason.SCHEMA_VIOLATION,
                    f"device id {reading.device[:80]!r} or field {reading.quantity[:80]!r}: printable text of at most "
                    f"{MAX_DEVICE_ID} and {MAX_FIELD_NAME} characters expected",
                )
        decoded = [_printable_flags(r) for r in decoded]
        values, unread = [], []
        for reading in decoded:
            device = topic.device_format.device_key(reading.device)
            sensor = await self.directory.find(topic.organization_id, device, reading.quantity)
            if sensor is None or sensor.device_format is not topic.device_format:
                unread.append(f"{device} {reading.quantity}")
                continue
            self._check_placement(sensor, topic)
            values.append(
                _Value(
                    sensor,
                    reading.timestamp,
                    reading.value,
                    reading.unit,
                    reading.battery_level,
                    reading.signal_strength,
                    await self.directory.rules(sensor),
                )
            )
        metrics.DEVICE_VALUES_IGNORED.inc(len(unread))
        if unread:
            await self._sight(topic, message, decoded)
        if decoded and not values:
            # A device says many things; only when no registered sensor reads any of it is it an error.
            raise await self._why_unknown(topic, ", ".join(unread[:5]))
        return _with_device_flags(values, decoded)

    async def _sight(self, topic: ParsedTopic, message: Message, decoded: Sequence[DeviceReading]) -> None:
        """Remember what a device nobody (fully) reads sent, for registration: only devices of an existing
        organization's building, so that invented topics leave no trace but their dead letter."""
        if not await self._in_existing_building(topic):
            return
        for device, readings in itertools.groupby(decoded, key=lambda r: r.device):
            sent = list(readings)
            sighting = DeviceSighting(
                topic.organization_id,
                topic.device_format,
                topic.device_format.device_key(device),
                topic.building_id,
                message.topic,
                {r.quantity: SeenField(r.value, r.unit, r.kind.value) for r in sent[:MAX_FIELDS]},
                max(r.timestamp for r in sent),
                next((r.battery_level for r in sent if r.battery_level is not None), None),
                next((r.signal_strength for r in sent if r.signal_strength is not None), None),
            )
            known = self._devices.pop(sighting.key, None)
            if len(self._devices) >= 10_000:  # bounded: device ids are chosen by whoever publishes
                self._devices.clear()
            merged = sighting if known is None else known.updated(sighting)
            self._devices[sighting.key] = self._sighted[sighting.key] = merged

    async def _in_existing_building(self, topic: ParsedTopic) -> bool:
        if not await self._organization_exists(topic.organization_id):
            return False
        if topic.building_id is None:
            return True  # a network server's message: no building to check
        key = (topic.organization_id, topic.building_id)
        if key not in self._buildings:
            try:
                await self.storage.tenancy.get_building(*key)
            except NotFound:
                return False  # looked up again next time: the building may be created meanwhile
            if len(self._buildings) > 10_000:
                self._buildings.clear()
            self._buildings.add(key)
        return True

    async def _why_unknown(self, topic: ParsedTopic, what: str) -> Rejected:
        """The precise reason a topic names no registered sensor (looked up only on this rare path)."""
        if not await self._organization_exists(topic.organization_id):
            return Rejected(Reason.UNKNOWN_ORGANIZATION, f"no organization {topic.organization_id}")
        if not await self._in_existing_building(topic):
            return Rejected(
                Reason.TENANT_MISMATCH,
                f"building {topic.building_id} does not belong to organization {topic.organization_id}",
            )
        return Rejected(
            Reason.UNKNOWN_SENSOR, f"no sensor registered for {what!r} in organization {topic.organization_id}"
        )

    @staticmethod
    def _check_placement(sensor: IoTSensor, topic: ParsedTopic) -> None:
        if topic.building_id is not None and sensor.building_id != topic.building_id:
            raise Rejected(
                Reason.TENANT_MISMATCH,
                f"sensor {sensor.sensor_id!r} belongs to building {sensor.building_id}, not {topic.building_id}",
            )
        if sensor.status is SensorStatus.INACTIVE:
            raise Rejected(Reason.SENSOR_INACTIVE, f"sensor {sensor.sensor_id!r} is inactive")

    def _check(self, v: _Value, received_at: datetime) -> Ingested:
        """Validate one value against its sensor and turn it into a reading with its alert decision."""
        if v.timestamp > received_at + self.limits.max_clock_skew:
            raise Rejected(Reason.TIMESTAMP_IN_FUTURE, f"timestamp {v.timestamp.isoformat()} is in the future")
        if v.timestamp < self.limits.oldest:
            raise Rejected(
                Reason.TIMESTAMP_TOO_OLD, f"timestamp {v.timestamp.isoformat()} is before {self.limits.oldest:%Y}"
            )
        factor = conversion_factor(v.unit, v.sensor.unit_of_measure)
        if factor is None:
            raise Rejected(
                Reason.UNIT_MISMATCH,
                f"device sends {v.unit!r}, sensor {v.sensor.sensor_id!r} records {v.sensor.unit_of_measure!r}",
            )
        try:  # calibrated here, once (a value calibration makes infinite is no reading)
            reading = IoTReading.measured(
                v.sensor, v.timestamp, v.value * factor, v.battery_level, v.signal_strength, received_at, v.rules
            )
        except InvalidValue as exc:
            raise Rejected(Reason.VALUE_OUT_OF_RANGE, str(exc)) from None
        problem = v.sensor.accepts(reading.value)
        if problem or abs(reading.value) > MAX_ABS_VALUE:
            raise Rejected(Reason.VALUE_OUT_OF_RANGE, problem or f"value {reading.value:g} is implausibly large")
        # Last, so that invalid messages do not use up the sensor's allowance.
        if not self._rate.allow(v.sensor.id, time.monotonic()):
            raise Rejected(
                Reason.RATE_LIMITED, f"sensor {v.sensor.sensor_id!r} sends more than {self.limits.rate_per_sensor:g}/s"
            )
        return Ingested(reading, reading_decisions(v.sensor, v.rules, reading, v.flags))

    async def _organization_exists(self, organization_id: UUID) -> bool:
        if organization_id not in self._organizations:
            if len(self._organizations) > 10_000:  # bounded: topics are attacker-controlled
                self._organizations.clear()
            try:
                await self.storage.tenancy.get_organization(organization_id)
                self._organizations[organization_id] = True
            except NotFound:
                self._organizations[organization_id] = False
        return self._organizations[organization_id]

    async def _dead_letter(self, message: Message, failure: Rejected) -> DeadLetter | None:
        """A dead letter to keep, unless this topic, or this organization, already produced too many for this
        reason this minute (then it is only counted)."""
        organization = None if self.origin is None else self.origin.organization_id
        try:
            topic_org = UUID(message.topic.split("/")[1])
            if self.origin is None and await self._organization_exists(topic_org):
                organization = topic_org
        except (ValueError, IndexError):
            pass
        reason, now = failure.reason.value, time.monotonic()
        if not self._letters_per_topic.take((message.topic, reason), now):
            metrics.DEAD_LETTERS_SUPPRESSED.labels("topic").inc()
            return None
        if not self._letters_per_organization.take((organization, reason), now):
            metrics.DEAD_LETTERS_SUPPRESSED.labels("organization").inc()
            return None
        return DeadLetter.of(message.topic, message.payload, reason, failure.detail, message.received_at, organization)

    async def _publish_live(self, new: list[Ingested]) -> None:
        assert self.bus is not None
        by_org: defaultdict[UUID, list[IoTReading]] = defaultdict(list)
        for item in new:
            by_org[item.reading.organization_id].append(item.reading)
        for organization_id, readings in by_org.items():
            try:
                await self.bus.publish(organization_id, readings)
            except Exception:  # the live view is best effort: storage and acknowledgments go on
                metrics.LIVE_BUS_FAILURES.inc()
                log.exception("live bus publish failed")
