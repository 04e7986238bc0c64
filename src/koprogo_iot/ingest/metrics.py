"""Prometheus metrics of ingestion, served at `/metrics` by the API and by each ingest worker."""

from prometheus_client import Counter, Gauge, Histogram

from koprogo_iot.ingest.rejections import Reason

READINGS_STORED = Counter("koprogo_readings_stored_total", "Readings stored (new, not redeliveries)")
READINGS_DUPLICATE = Counter("koprogo_readings_duplicate_total", "Valid readings already stored (redeliveries)")
MESSAGES_RECEIVED = Counter("koprogo_messages_received_total", "MQTT messages received by ingestion")
MESSAGES_REJECTED = Counter("koprogo_messages_rejected_total", "Values refused, by reason", ["reason"])
DEAD_LETTERS_SUPPRESSED = Counter(
    "koprogo_dead_letters_suppressed_total",
    "Rejections counted but not kept: too many this minute for their topic, or organization, and reason",
    ["cap"],
)
DEVICE_VALUES_IGNORED = Counter(
    "koprogo_device_values_ignored_total", "Values of a device that no registered sensor reads"
)
BATCH_SIZE = Histogram(
    "koprogo_ingest_batch_size", "Messages per stored batch", buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000)
)
COMMIT_SECONDS = Histogram(
    "koprogo_ingest_commit_seconds",
    "Time to store one batch",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
END_TO_END_SECONDS = Histogram(
    "koprogo_reading_latency_seconds",
    "Sensor timestamp to stored (includes device clock error)",
    buckets=(0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10, 30, 60),
)
DEVICES_ADMITTED = Counter(
    "koprogo_ingest_devices_admitted_total",
    "Device logins the broker held at its start (broker config --hold-devices), let in once a worker subscribed",
)
SUBSCRIBED = Gauge("koprogo_ingest_subscribed", "1 while the worker's subscription is active")
QUEUE_DEPTH = Gauge("koprogo_ingest_queue_depth", "Messages received and not yet stored")
IN_FLIGHT = Gauge("koprogo_ingest_in_flight", "Messages stored or being stored, not yet acknowledged")
MQTT_PROTOCOL_ERRORS = Counter(
    "koprogo_ingest_mqtt_protocol_errors_total",
    "Packets refused from the broker (the connection is dropped and made again): malformed, or too_large",
    ["kind"],
)
CLIENT_ID_CONFLICTS = Counter(
    "koprogo_ingest_client_id_conflicts_total",
    "Times the broker kept closing a worker's new connections: another client probably uses its client id",
)
LIVE_BUS_FAILURES = Counter("koprogo_live_bus_failures_total", "Batches the live bus could not publish")

# Every reason's series exists from the start (at 0): a rate over a series born with its first event misses it.
for _reason in Reason:
    MESSAGES_REJECTED.labels(_reason.value)
for _cap in ("topic", "organization"):
    DEAD_LETTERS_SUPPRESSED.labels(_cap)
for _kind in ("malformed", "too_large"):
    MQTT_PROTOCOL_ERRORS.labels(_kind)
