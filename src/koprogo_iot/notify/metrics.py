"""Prometheus metrics of alert notifications, served at `/metrics` by the processes that run the notifier."""

from typing import get_args

from prometheus_client import Counter, Gauge

from koprogo_iot.domain.alerts import AlertSeverity
from koprogo_iot.domain.notices import Channel, Purpose

ALERTS_ANNOUNCED = Counter(
    "koprogo_alerts_announced_total",
    "Alerts people were told about, by severity and why (opened, escalated, reminder)",
    ["severity", "purpose"],
)
SENT = Counter("koprogo_notifications_sent_total", "Messages delivered, by channel", ["channel"])
FAILED = Counter("koprogo_notifications_failed_total", "Delivery attempts that failed, by channel", ["channel"])
DUE = Gauge("koprogo_notifications_due", "Messages due and not delivered at the end of the notifier's last round")

# Every series exists from the start (at 0): a rate over a series that appears with its first event misses it.
for _severity in AlertSeverity:
    for _purpose in get_args(Purpose):
        ALERTS_ANNOUNCED.labels(_severity.value, _purpose)
for _channel in Channel:
    SENT.labels(_channel.value)
    FAILED.labels(_channel.value)
