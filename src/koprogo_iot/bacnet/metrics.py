"""Prometheus metrics of the BACnet poller, served on `--metrics-port` (KOPROGO_BACNET_METRICS_PORT)."""

from prometheus_client import Counter, Gauge

READS = Counter(
    "koprogo_bacnet_reads_total",
    "Point reads, by result: ok, or why there is no value (unreachable, wrong_device, unknown_object, ...)",
    ["result"],
)
POINTS = Gauge("koprogo_bacnet_points", "Points being polled")
POINTS_FAILING = Gauge("koprogo_bacnet_points_failing", "Points whose last read gave no value")
PUBLISHED = Counter("koprogo_bacnet_readings_published_total", "Readings the broker acknowledged (QoS 1)")
DROPPED = Counter(
    "koprogo_bacnet_readings_dropped_total", "Readings not published: the queue for an unreachable broker was full"
)
