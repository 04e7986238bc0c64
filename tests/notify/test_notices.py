"""The pure rules: when to tell, whom, and the retry pace."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from koprogo_iot.domain.alerts import AlertSeverity, AlertType, IoTAlert
from koprogo_iot.domain.errors import InvalidValue
from koprogo_iot.domain.notices import (
    LONGEST_RETRY,
    Channel,
    NotificationRoute,
    Recipient,
    backoff,
    notice_purpose,
    parse_channels,
    recipients,
)
from koprogo_iot.domain.tenancy import Role, User

T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
ORG, BUILDING, UNIT, OTHER_UNIT = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def alert(**changes: object) -> IoTAlert:
    base = IoTAlert(
        organization_id=ORG,
        sensor_id=uuid.uuid4(),
        building_id=BUILDING,
        unit_id=UNIT,
        alert_type=AlertType.THRESHOLD_EXCEEDED,
        severity=AlertSeverity.CRITICAL,
        message="75 L/h",
        triggered_at=T0,
        last_triggered_at=T0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_backoff_doubles_from_30_seconds_up_to_an_hour() -> None:
    assert [backoff(n).total_seconds() for n in range(1, 6)] == [30, 60, 120, 240, 480]
    assert backoff(8) == backoff(1000) == LONGEST_RETRY
    assert backoff(0) == timedelta(0)


def test_notice_purpose() -> None:
    told = {"notified_at": T0, "notified_severity": AlertSeverity.CRITICAL}
    assert notice_purpose(alert(), T0, 4 * HOUR) == "opened"
    assert notice_purpose(alert(cleared_at=T0 + HOUR), T0 + 2 * HOUR, 4 * HOUR) == "opened"
    assert notice_purpose(alert(**told), T0 + 9 * HOUR, 4 * HOUR) is None  # not repeated since
    repeated = alert(**told, last_triggered_at=T0 + HOUR, occurrences=2)
    assert notice_purpose(repeated, T0 + 3 * HOUR, 4 * HOUR) is None  # within the interval
    assert notice_purpose(repeated, T0 + 4 * HOUR, 4 * HOUR) == "reminder"
    assert notice_purpose(replace(repeated, acknowledged_at=T0 + HOUR), T0 + 9 * HOUR, 4 * HOUR) is None
    assert notice_purpose(replace(repeated, cleared_at=T0 + 2 * HOUR), T0 + 9 * HOUR, 4 * HOUR) is None
    worse = alert(notified_at=T0, notified_severity=AlertSeverity.WARNING)
    assert notice_purpose(worse, T0, 4 * HOUR) == "escalated"
    assert notice_purpose(replace(worse, acknowledged_at=T0), T0, 4 * HOUR) == "escalated"
    assert notice_purpose(replace(worse, cleared_at=T0), T0, 4 * HOUR) is None


def user(role: Role, email: str, units: frozenset[uuid.UUID] = frozenset(), **contacts: str) -> User:
    return User(ORG, email, email.split("@")[0], role, "hash", units, **contacts)  # type: ignore[arg-type]


def test_recipients_by_role_unit_building_and_severity() -> None:
    syndic = user(Role.SYNDIC, "syndic@example.org", phone="+32470000001", push_topic="syndic")
    owner = user(Role.OWNER, "owner@example.org", frozenset({UNIT}), phone="0470 00 00 02")
    neighbour = user(Role.OWNER, "neighbour@example.org", frozenset({OTHER_UNIT}))
    stranger = replace(syndic, organization_id=uuid.uuid4(), email="stranger@example.org")
    people = [syndic, owner, neighbour, stranger]
    routes = [
        NotificationRoute(ORG, role=Role.SYNDIC),  # default channels
        NotificationRoute(ORG, role=Role.OWNER, channels={AlertSeverity.CRITICAL: frozenset({Channel.SMS})}),
        NotificationRoute(ORG, building_id=uuid.uuid4(), email="elsewhere@example.org"),
        NotificationRoute(ORG, email="syndic@example.org"),  # the same address twice: one message
    ]
    assert recipients(alert(), routes, people) == [
        Recipient(Channel.EMAIL, "syndic@example.org"),
        Recipient(Channel.PUSH, "syndic"),
        Recipient(Channel.SMS, "+32470000001"),
        Recipient(Channel.SMS, "0470000002"),
    ]
    assert recipients(alert(severity=AlertSeverity.WARNING), routes, people) == [
        Recipient(Channel.EMAIL, "syndic@example.org")
    ]
    assert recipients(alert(severity=AlertSeverity.INFO), routes, people) == []
    common = recipients(alert(unit_id=None), routes, people)
    assert Recipient(Channel.SMS, "0470000002") not in common  # owners hear of their units only


def test_a_user_who_muted_a_channel_is_not_told_on_it_through_their_role_but_a_named_contact_still_is() -> None:
    muted = frozenset({Channel.SMS, Channel.PUSH})
    syndic = user(Role.SYNDIC, "syndic@example.org", phone="+32470000001", push_topic="syndic")
    owner = user(Role.OWNER, "owner@example.org", frozenset({UNIT}), phone="0470 00 00 02")
    syndic, owner = (replace(person, muted_channels=muted) for person in (syndic, owner))
    everything = {AlertSeverity.CRITICAL: frozenset(Channel)}
    by_role = [NotificationRoute(ORG, role=Role.SYNDIC, channels=everything), NotificationRoute(ORG, role=Role.OWNER)]
    assert recipients(alert(), by_role, [syndic, owner]) == [
        Recipient(Channel.EMAIL, "syndic@example.org"),
        Recipient(Channel.EMAIL, "owner@example.org"),
    ]
    named = NotificationRoute(ORG, phone="+32470000001", channels=everything)
    assert Recipient(Channel.SMS, "+32470000001") in recipients(alert(), [*by_role, named], [syndic, owner])
    everything_muted = [replace(person, muted_channels=frozenset(Channel)) for person in (syndic, owner)]
    assert recipients(alert(), by_role, everything_muted) == []
    gone = [replace(person, muted_channels=frozenset(), deactivated_at=T0) for person in (syndic, owner)]
    assert recipients(alert(), by_role, gone) == []  # deactivated users hear of nothing
    with pytest.raises(ValueError):
        replace(syndic, muted_channels=frozenset({"fax"}))  # type: ignore[arg-type]


def test_a_route_is_a_role_or_a_contact_with_known_channels() -> None:
    with pytest.raises(InvalidValue):
        NotificationRoute(ORG)
    with pytest.raises(InvalidValue):
        NotificationRoute(ORG, role=Role.OWNER, email="x@example.org")
    with pytest.raises(InvalidValue):
        NotificationRoute(ORG, role=Role.SUPERADMIN)
    with pytest.raises(InvalidValue):
        NotificationRoute(ORG, phone="call me maybe")
    with pytest.raises(InvalidValue):
        parse_channels({"critical": ["fax"]})
    with pytest.raises(InvalidValue):
        parse_channels({"urgent": ["email"]})
    route = NotificationRoute(ORG, email=" Someone@Example.org ", channels={AlertSeverity.WARNING: frozenset()})
    assert route.email == "someone@example.org"
    assert route.channels == {s: frozenset() for s in AlertSeverity}
