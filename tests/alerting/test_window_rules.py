"""The periodic window rules against a real store (SQLite and PostgreSQL): leaks by morning, offline sensors."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from koprogo_iot.alerting import evaluator
from koprogo_iot.alerting.evaluator import WindowRules
from koprogo_iot.domain.alerts import AlertSeverity, AlertStatus, AlertType, IoTAlert, RaiseAlert
from koprogo_iot.domain.detection import (
    continuous_flow_leak,
    lookback,
    reading_decisions,
    resolution,
    spike_decisions,
    threshold_window,
)
from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.domain.rules import effective_rules
from koprogo_iot.domain.sensors import IoTSensor
from koprogo_iot.storage.ports import AlertFilter, Ingested, Storage
from tests.conftest import make_tenant

# The night of 13 to 14 January 2026 in Brussels (UTC+1): the default leak window is 01:00-05:00 local.
EVENING = datetime(2026, 1, 13, 22, 0, tzinfo=UTC)  # 23:00 local
MORNING = datetime(2026, 1, 14, 6, 0, tzinfo=UTC)  # 07:00 local


async def ingest_every(
    storage: Storage, sensor: IoTSensor, start: datetime, end: datetime, value_at: Callable[[datetime], float]
) -> None:
    step = timedelta(seconds=sensor.sampling_interval)
    moments = [start + i * step for i in range(int((end - start) / step) + 1)]
    await storage.readings.ingest([Ingested(IoTReading.measured(sensor, t, value_at(t))) for t in moments])


async def active(storage: Storage, sensor: IoTSensor, alert_type: AlertType) -> list[IoTAlert]:
    alerts = await storage.alerts.select(sensor.organization_id, AlertFilter(status=AlertStatus.ACTIVE))
    return [a for a in alerts if a.sensor_id == sensor.id and a.alert_type is alert_type]


async def test_a_night_of_constant_flow_raises_a_leak_by_morning(storage: Storage) -> None:
    t = await make_tenant(storage)
    meter = t.unit_sensor  # an apartment's cold water counter in m³, read every 5 minutes
    # 3 L/h all night: 0.25 L every 5 minutes.
    await ingest_every(storage, meter, EVENING, MORNING, lambda m: 42.0 + (m - EVENING).total_seconds() / 3600 * 0.003)
    judge = WindowRules(storage)
    assert await judge.run_once(MORNING) is not None
    (leak,) = await active(storage, meter, AlertType.LEAK_DETECTED)
    assert leak.rule == "night_flow" and leak.severity is AlertSeverity.WARNING and leak.unit_id == t.units[0].id
    assert "3 L/h" in leak.message
    # Judged again later in the morning: the same night is the same evidence, not a repeat.
    await judge.run_once(MORNING + timedelta(hours=2))
    (again,) = await active(storage, meter, AlertType.LEAK_DETECTED)
    assert again.id == leak.id and again.occurrences == 1
    # The neighbour's meter stood still all night: no leak there.
    await ingest_every(storage, t.other_unit_sensor, EVENING, MORNING, lambda m: 7.0)
    await judge.run_once(MORNING + timedelta(hours=3))
    assert await active(storage, t.other_unit_sensor, AlertType.LEAK_DETECTED) == []


async def test_the_next_night_with_a_pause_clears_the_leak(storage: Storage) -> None:
    t = await make_tenant(storage)
    meter = t.unit_sensor
    await ingest_every(storage, meter, EVENING, MORNING, lambda m: 42.0 + (m - EVENING).total_seconds() / 3600 * 0.003)
    judge = WindowRules(storage)
    await judge.run_once(MORNING)
    assert len(await active(storage, meter, AlertType.LEAK_DETECTED)) == 1
    # Repaired during the day: the next night the index stands still.
    day = timedelta(days=1)
    await ingest_every(storage, meter, MORNING + timedelta(minutes=5), MORNING + day, lambda m: 50.0)
    await judge.run_once(MORNING + day)
    assert await active(storage, meter, AlertType.LEAK_DETECTED) == []


async def test_a_silent_sensor_goes_offline_and_comes_back(storage: Storage) -> None:
    t = await make_tenant(storage)
    flow = t.common_sensor  # sampling every 60 s
    last = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)
    await storage.readings.ingest([Ingested(IoTReading.measured(flow, last, 3.0))])
    judge = WindowRules(storage)
    await judge.run_once(last + timedelta(seconds=179))  # under 3 x 60 s: still fine
    assert await active(storage, flow, AlertType.SENSOR_OFFLINE) == []
    await judge.run_once(last + timedelta(seconds=181))
    (offline,) = await active(storage, flow, AlertType.SENSOR_OFFLINE)
    assert offline.triggered_at == last + timedelta(seconds=180)
    await judge.run_once(last + timedelta(minutes=10))  # still silent: the same alert, not a repeat
    (still,) = await active(storage, flow, AlertType.SENSOR_OFFLINE)
    assert still.id == offline.id and still.occurrences == 1
    await storage.readings.ingest([Ingested(IoTReading.measured(flow, last + timedelta(minutes=11), 3.0))])
    await judge.run_once(last + timedelta(minutes=11, seconds=5))
    assert await active(storage, flow, AlertType.SENSOR_OFFLINE) == []
    [cleared] = await storage.alerts.select(t.organization.id, AlertFilter(status=AlertStatus.CLEARED))
    assert cleared.id == offline.id


async def test_one_judge_at_a_time(storage: Storage) -> None:
    await make_tenant(storage)
    now = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)
    first, second = WindowRules(storage, holder="a"), WindowRules(storage, holder="b")
    assert await first.run_once(now) is not None
    assert await second.run_once(now + timedelta(seconds=30)) is None  # a holds the lease
    assert await first.run_once(now + timedelta(seconds=60)) is not None
    # a stopped: once its lease has expired, b takes over.
    assert await second.run_once(now + timedelta(seconds=60) + first.lease_ttl + timedelta(seconds=1)) is not None


async def test_an_alert_whose_rule_was_switched_off_is_cleared(storage: Storage) -> None:
    t = await make_tenant(storage)
    flow = t.common_sensor  # maximum 50 L/h
    at = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)
    reading = IoTReading.measured(flow, at, 75.0)
    await storage.readings.ingest([Ingested(reading, reading_decisions(flow, effective_rules(flow), reading, None))])
    judge = WindowRules(storage)
    await judge.run_once(at + timedelta(seconds=10))
    assert len(await active(storage, flow, AlertType.THRESHOLD_EXCEEDED)) == 1  # its rule still holds
    await storage.sensors.update(flow.with_thresholds(None, None))  # nothing would judge it any more
    await judge.run_once(at + timedelta(seconds=20))
    assert await active(storage, flow, AlertType.THRESHOLD_EXCEEDED) == []


async def test_a_sensor_reporting_five_times_a_second_is_read_thinned_and_judged_as_on_its_raw_readings(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(evaluator, "POINTS_PER_QUERY", 1)  # one sensor a query: the counters' group takes two
    t = await make_tenant(storage)
    flow, org = t.common_sensor, t.organization.id  # a flow gauge configured for a reading a minute, maximum 50 L/h
    override = {"leak": {"continuous_hours": 0.5}, "threshold": {"duration_s": 600}}
    override |= {"spike": {"enabled": True, "max_rate_per_hour": 1e6}}
    await storage.alert_rules.put_override(org, flow.id, override)
    start = datetime(2026, 2, 2, 8, 0, tzinfo=UTC)
    now = start + timedelta(minutes=40)
    # Five readings a second for 40 minutes, between 60 and 70 L/h in a scrambled order: water that never stops.
    moments = [start + timedelta(milliseconds=200 * i + 70) for i in range(5 * 60 * 40)]
    readings = [IoTReading.measured(flow, m, 60 + (i * 37 % 101) / 10) for i, m in enumerate(moments)]
    await storage.readings.ingest([Ingested(r) for r in readings])
    rules = (await storage.alert_rules.organization_rules(org)).for_sensor(flow)
    span = lookback(flow, rules)
    assert span == timedelta(minutes=30) and resolution(flow, span) == timedelta(minutes=1)
    raw = (await storage.source.points(org, [flow.id], now - span, now))[flow.id]
    thinned = (await storage.source.thinned_points(org, [flow.id], now - span, now, resolution(flow, span)))[flow.id]
    assert len(raw) >= 9000 and len(thinned) <= 4 * 30 + 2  # what the judge reads: four readings a minute at most
    # The decisions the rules take on every raw reading...
    expected = threshold_window(flow, rules, raw, now) + continuous_flow_leak(flow, rules, raw, now)
    expected += spike_decisions(flow, rules, raw, now)
    raised = sorted((d.alert for d in expected if isinstance(d, RaiseAlert)), key=lambda a: a.rule or "")
    assert [a.rule for a in raised] == ["continuous_flow", "threshold"]
    # ...are the ones the judge took on the thinned readings.
    await WindowRules(storage).run_once(now)
    found = await storage.alerts.select(org, AlertFilter(status=AlertStatus.ACTIVE))
    got = sorted((a for a in found if a.sensor_id == flow.id), key=lambda a: a.rule or "")

    def evidence(alert: IoTAlert) -> tuple[object, ...]:
        return (alert.alert_type, alert.rule, alert.severity, alert.message, alert.triggered_at)

    assert [evidence(a) for a in got] == [evidence(a) for a in raised]
    assert [(a.last_triggered_at, a.reading_value, a.threshold_value) for a in got] == [
        (a.last_triggered_at, a.reading_value, a.threshold_value) for a in raised
    ]
