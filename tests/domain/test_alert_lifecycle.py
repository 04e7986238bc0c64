"""The alert lifecycle (`domain.alerts.apply_decisions`): one active alert per (sensor, type), repeats counted on
it, severity only rising, clears ending it; with no database."""

import uuid
from datetime import UTC, datetime, timedelta

from koprogo_iot.domain.alerts import (
    AlertSeverity,
    AlertType,
    ClearAlert,
    IoTAlert,
    RaiseAlert,
    apply_decisions,
    escalated,
)

T0 = datetime(2026, 3, 1, 8, tzinfo=UTC)
SENSOR = uuid.uuid4()
THRESHOLD = AlertType.THRESHOLD_EXCEEDED


def occurrence(minutes: int, severity: AlertSeverity = AlertSeverity.WARNING, value: float = 60.0) -> IoTAlert:
    at = T0 + timedelta(minutes=minutes)
    return IoTAlert(
        organization_id=uuid.uuid4(),
        sensor_id=SENSOR,
        building_id=uuid.uuid4(),
        alert_type=THRESHOLD,
        severity=severity,
        message=f"{value} L/h",
        triggered_at=at,
        last_triggered_at=at,
        reading_value=value,
        rule="threshold",
    )


def test_severity_only_rises_while_active() -> None:
    for current in AlertSeverity:
        for incoming in AlertSeverity:
            expected = incoming if incoming.rank > current.rank else current
            assert escalated(current, incoming) is expected
    assert escalated(AlertSeverity.CRITICAL, AlertSeverity.WARNING) is AlertSeverity.CRITICAL


def test_a_raise_opens_an_alert_and_repeats_count_on_it() -> None:
    first, again, worse = occurrence(0), occurrence(1, value=70.0), occurrence(2, AlertSeverity.CRITICAL, 80.0)
    changes = apply_decisions({}, [RaiseAlert(first), RaiseAlert(again), RaiseAlert(worse)])
    assert changes.changed == []
    (opened,) = changes.opened
    assert opened.id == first.id and opened.triggered_at == first.triggered_at
    assert (opened.occurrences, opened.severity, opened.reading_value) == (3, AlertSeverity.CRITICAL, 80.0)
    assert opened.last_triggered_at == worse.last_triggered_at


def test_evidence_already_counted_and_late_readings() -> None:
    stored = occurrence(10)
    same_evidence = occurrence(10)  # a window rule judging the same readings again
    late = occurrence(5, value=99.0)  # a reading arriving out of order
    (updated,) = apply_decisions({stored.key: stored}, [RaiseAlert(same_evidence), RaiseAlert(late)]).changed
    assert updated.occurrences == 2  # the late one counts, the same evidence does not
    assert (updated.last_triggered_at, updated.reading_value) == (stored.last_triggered_at, stored.reading_value)


def test_a_clear_ends_the_active_alert_and_a_later_raise_opens_a_new_one() -> None:
    stored = occurrence(0)
    clear_at = T0 + timedelta(minutes=3)
    changes = apply_decisions(
        {stored.key: stored},
        [ClearAlert(SENSOR, THRESHOLD, clear_at), ClearAlert(SENSOR, THRESHOLD, clear_at + timedelta(minutes=1))],
    )
    (ended,) = changes.changed
    assert ended.id == stored.id and ended.cleared_at == clear_at  # the first clear of a run wins
    reopened = apply_decisions(
        {stored.key: stored}, [ClearAlert(SENSOR, THRESHOLD, clear_at), RaiseAlert(occurrence(4))]
    )
    assert [a.cleared_at for a in reopened.changed] == [clear_at]
    (new,) = reopened.opened
    assert new.id != stored.id and new.cleared_at is None and new.occurrences == 1


def test_a_clear_of_another_rule_or_of_nothing_changes_nothing() -> None:
    stored = occurrence(0)
    assert apply_decisions({stored.key: stored}, [ClearAlert(SENSOR, THRESHOLD, T0, rule="night_flow")]).changed == []
    assert apply_decisions({}, [ClearAlert(SENSOR, THRESHOLD, T0)]) == apply_decisions({}, [])
