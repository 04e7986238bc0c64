"""The periodic window rules: offline sensors, leaks, stuck or lying meters, sustained thresholds, outliers.

Ingest workers decide only per-reading rules; these need a stretch of history and several workers each see a
part of it, so one process at a time (the holder of the `window-rules` lease) judges the stored readings.
Each run judges the short rules (offline, threshold with duration, spike, continuous flow, stuck); the first run
of each hour also the long ones (night leak, counters going backwards or jumping over the last day, the
statistical outlier of the hour that just ended, the building balance of the last whole days). Decisions go through
the store like ingestion's: one active alert per (sensor, type), and evidence already judged is not counted as a
repeat.

History is read thinned in the database (`ReadingSource.thinned_points`, at `domain.detection.resolution`): at most
four readings per sampling interval of each sensor's look-back, a few sensors per query, so the memory a run needs
does not grow with how often sensors report (docs/alerts.md, "How window rules read history").
"""

from __future__ import annotations

import asyncio
import math
import socket
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from msgspec.structs import replace

from koprogo_iot.analytics.balance import balances, meterings
from koprogo_iot.domain.alerts import AlertDecision, AlertStatus, AlertType, ClearAlert
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.consumption import DEFAULT_ZONE, Point, calendar_buckets
from koprogo_iot.domain.detection import (
    balance_decision,
    baseline_hours,
    continuous_flow_leak,
    faulty_window,
    lookback,
    night_leak,
    offline_decision,
    resolution,
    retired_rule,
    spike_decisions,
    statistical_decision,
    threshold_window,
)
from koprogo_iot.domain.rollups import Rollups, rollup_results
from koprogo_iot.domain.rules import AlertRules
from koprogo_iot.domain.sensors import IoTSensor, MeasurementKind, SensorStatus
from koprogo_iot.periodic import every
from koprogo_iot.storage.ports import AlertFilter, Storage

HOUR = timedelta(hours=1)
# The most points one query of the window rules brings into Python (four per bucket of `resolution`, see
# `ReadingSource.thinned_points`): some 1.5 MB, decoded in a few milliseconds of the event loop.
POINTS_PER_QUERY = 10_000


def short_rules(sensor: IoTSensor, rules: AlertRules) -> AlertRules:
    """The rules judged on every run: the long ones (a counter's night, a day of counter steps) switched off."""
    if sensor.measurement_kind is not MeasurementKind.CUMULATIVE:
        return rules
    return replace(
        rules,
        leak=replace(rules.leak, enabled=False),
        faulty=replace(rules.faulty, detect_backwards=False, max_increase_per_hour=None),
    )


class WindowRules:
    """Judges every sensor's window rules each `interval` seconds, in the process holding the lease."""

    lease_name = "window-rules"

    def __init__(
        self, storage: Storage, interval: float = 60.0, zone: str = DEFAULT_ZONE, holder: str | None = None
    ) -> None:
        self.storage = storage
        self.interval = interval
        self.zone = zone
        self.holder = holder or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        # A holder that dies is replaced once its lease expires: a few runs missed, never two judges at once.
        self.lease_ttl = timedelta(seconds=max(5 * interval, 60))

    async def run(self) -> None:
        """Run until cancelled; storage outages are logged and retried at the next interval."""
        await every(self.interval, "window rules", lambda: self.run_once(utcnow()))

    async def run_once(self, now: datetime) -> int | None:
        """Judge all sensors as of `now`; the number of decisions applied, or None when another process holds
        the lease."""
        leases = self.storage.leases
        held, last_run = await leases.acquire(self.lease_name, self.holder, now, self.lease_ttl)
        if not held:
            return None
        # The long rules once an hour: on the first run after an hour starts (or the first run ever).
        hourly = last_run is None or last_run.replace(minute=0, second=0, microsecond=0) < now.replace(
            minute=0, second=0, microsecond=0
        )
        applied = 0
        for organization in await self.storage.tenancy.list_organizations():
            everything = await self.storage.sensors.select(organization.id)
            sensors = [s for s in everything if s.status is not SensorStatus.INACTIVE]
            if not sensors:
                continue
            layers = await self.storage.alert_rules.organization_rules(organization.id)
            rules = {s.id: layers.for_sensor(s) for s in sensors}
            decisions = await self._judge(organization.id, sensors, rules, now, hourly)
            if hourly:
                # Unit meters switched off still count: the balance must show what they no longer measure.
                decisions += await self._balance(organization.id, everything, rules, now)
            mains = {s.id for s in sensors if s.main_meter}
            decisions += await self._retired(organization.id, rules, mains, now)
            if decisions:
                await self.storage.alerts.apply(decisions)
                applied += len(decisions)
        await leases.completed(self.lease_name, self.holder, now)
        return applied

    async def _judge(
        self,
        organization_id: UUID,
        sensors: list[IoTSensor],
        rules: dict[UUID, AlertRules],
        now: datetime,
        hourly: bool,
    ) -> list[AlertDecision]:
        decisions: list[AlertDecision] = []
        judged = {s.id: rules[s.id] if hourly else short_rules(s, rules[s.id]) for s in sensors}
        for sensor in sensors:
            offline = offline_decision(sensor, judged[sensor.id], now)
            if offline is not None:
                decisions.append(offline)
        # Sensors sharing a look-back and a resolution (those of a type share their rules and interval) are read
        # together, a few at a time: each query returns at most POINTS_PER_QUERY points, whatever the reading rate.
        by_window: defaultdict[tuple[timedelta, timedelta], list[IoTSensor]] = defaultdict(list)
        for sensor in sensors:
            span = lookback(sensor, judged[sensor.id])
            if span > timedelta(0):
                by_window[span, resolution(sensor, span)].append(sensor)
        for (span, step), group in by_window.items():
            size = max(1, POINTS_PER_QUERY // (4 * math.ceil(span / step) + 2))
            for first in range(0, len(group), size):
                chunk = group[first : first + size]
                points = await self.storage.source.thinned_points(
                    organization_id, [s.id for s in chunk], now - span, now, step
                )
                for sensor in chunk:
                    decisions += self._points_rules(sensor, judged[sensor.id], points[sensor.id], now, hourly)
                    # Inside `up` this runs on the API's event loop: requests go between two sensors' judgements.
                    await asyncio.sleep(0)
        if hourly:
            decisions += await self._statistical(organization_id, sensors, rules, now)
        return decisions

    async def _retired(
        self, organization_id: UUID, rules: dict[UUID, AlertRules], mains: set[UUID], now: datetime
    ) -> list[AlertDecision]:
        """Clears for the active alerts whose rule was switched off (or threshold removed) since they were raised,
        and for balance alerts of sensors that are no longer main meters."""
        active = await self.storage.alerts.select(organization_id, AlertFilter(status=AlertStatus.ACTIVE, limit=10_000))
        found = [retired_rule(a, rules[a.sensor_id], now) for a in active if a.sensor_id in rules]
        found += [
            ClearAlert(a.sensor_id, a.alert_type, now, a.rule)
            for a in active
            if a.alert_type is AlertType.BUILDING_BALANCE and a.sensor_id in rules and a.sensor_id not in mains
        ]
        return [clear for clear in found if clear is not None]

    async def _balance(
        self, organization_id: UUID, sensors: list[IoTSensor], rules: dict[UUID, AlertRules], now: datetime
    ) -> list[AlertDecision]:
        """Each main meter against its unit meters over its rule's last whole local days (from the hourly rollups:
        local midnights are whole hours)."""
        zone = ZoneInfo(self.zone)
        today = now.astimezone(zone).date()
        decisions: list[AlertDecision] = []
        for metering in meterings(sensors):
            rule = rules[metering.main.id].balance if metering.main.id in rules else None
            if rule is None or not rule.enabled:
                continue
            first = today - timedelta(days=rule.days)
            start, end = (datetime(d.year, d.month, d.day, tzinfo=zone) for d in (first, today))
            grid = calendar_buckets(start, end, "day", zone)
            [found] = await balances(self.storage.source, organization_id, [metering], grid, Rollups.HOURLY)
            decision = balance_decision(metering.main, rules[metering.main.id], found.buckets, now, self.zone)
            if decision is not None:
                decisions.append(decision)
        return decisions

    def _points_rules(
        self, sensor: IoTSensor, rules: AlertRules, points: Sequence[Point], now: datetime, hourly: bool
    ) -> list[AlertDecision]:
        found = [p for p in points if p[0] <= now]
        decisions = threshold_window(sensor, rules, found, now) + spike_decisions(sensor, rules, found, now)
        decisions += continuous_flow_leak(sensor, rules, found, now) + faulty_window(sensor, rules, found, now)
        if hourly:
            decisions += night_leak(sensor, rules, found, now, self.zone)
        return decisions

    async def _statistical(
        self, organization_id: UUID, sensors: list[IoTSensor], rules: dict[UUID, AlertRules], now: datetime
    ) -> list[AlertDecision]:
        """The hour that just ended against the same hour of the previous weeks, from the hourly rollups."""
        hour = now.replace(minute=0, second=0, microsecond=0) - HOUR
        decisions: list[AlertDecision] = []
        for sensor in sensors:
            rule = rules[sensor.id].statistical
            if not rule.enabled:
                continue
            hours = [hour, *baseline_hours(hour, rule.baseline_weeks, self.zone)]
            start, end = min(hours), hour + HOUR
            values: dict[datetime, float] = {}
            if sensor.measurement_kind is MeasurementKind.CUMULATIVE:
                grid = sorted((h, h + HOUR) for h in hours)
                found = await self.storage.source.counter_rows(organization_id, [sensor.id], start, end, Rollups.HOURLY)
                for (h, _), result in zip(grid, rollup_results(found[sensor.id], grid), strict=True):
                    if result.consumption is not None:
                        values[h] = result.consumption
            else:
                for bucket, count, total, *_ in await self.storage.source.gauge_rows(
                    organization_id, sensor.id, start, end, Rollups.HOURLY
                ):
                    if bucket in hours and count:
                        values[bucket] = total / count
            decision = statistical_decision(sensor, rules[sensor.id], values, hour, now, self.zone)
            if decision is not None:
                decisions.append(decision)
        return decisions
