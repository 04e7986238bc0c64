"""The notifier against real receivers: an SMTP server, and an HTTP server playing ntfy (push) and SMSEagle (SMS).

Time is passed to `run_once`, so reminders and retries are tested without waiting.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from koprogo_iot.domain.alerts import AlertSeverity, AlertType, ClearAlert
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.notices import MAX_ATTEMPTS, Channel, NotificationRoute, NotificationSettings, backoff
from koprogo_iot.domain.sensors import IoTSensor, SensorType
from koprogo_iot.domain.tenancy import Building, Role
from koprogo_iot.notify.notifier import Round
from koprogo_iot.storage.ports import NotificationRepository, Storage
from tests.conftest import Tenant, make_tenant
from tests.notify.conftest import (
    PUBLIC_URL,
    HttpReceiver,
    SmtpServer,
    closed_smtp_url,
    insert_alert,
    later,
    make_notifier,
    repeat,
)

PHONE = "+32470123456"


async def with_contacts(storage: Storage, name: str = "Notify") -> tuple[Tenant, NotificationRepository]:
    tenant = await make_tenant(storage, name)
    await storage.tenancy.set_contacts(tenant.organization.id, tenant.syndic.id, "+32 470 12 34 56", "syndic-topic")
    return tenant, storage.notifications


async def test_a_critical_alert_reaches_the_syndic_by_email_sms_and_push_with_the_facts(
    storage: Storage, smtp: SmtpServer, receiver: HttpReceiver
) -> None:
    t = await make_tenant(storage, "Facts")
    repository = storage.notifications
    await storage.tenancy.set_contacts(t.organization.id, t.syndic.id, "+32 470 12 34 56", "syndic-topic")
    now = utcnow()
    alert_id = await insert_alert(storage, t.common_sensor, now)
    notifier = make_notifier(storage, smtp, receiver)

    assert await notifier.run_once(now) == Round(announced=1, sent=3, failed=0)

    [mail] = smtp.received
    assert mail.recipients == [t.syndic.email]
    facts = [
        t.common_sensor.sensor_id,
        "cold water",
        t.building.name,
        "common",
        t.common_sensor.location,
        "75 L/h",
        "50 L/h",
        "critical",
        "threshold_exceeded",
        f"{PUBLIC_URL}/alerts/{alert_id}",
    ]
    for fact in facts:
        assert fact in mail.body, fact
    assert t.common_sensor.sensor_id in mail.subject and "Critical" in mail.subject
    [push] = receiver.pushes
    assert push["topic"] == "syndic-topic"
    [sms] = receiver.sms
    assert sms["to"] == PHONE
    for fact in facts:
        assert fact in push["message"], fact
        assert fact in sms["message"], fact
    alert = await storage.alerts.get(t.organization.id, alert_id)
    assert (alert.email_sent, alert.sms_sent, alert.push_sent) == (True, True, True)
    assert alert.notified_at == now and alert.notified_severity is AlertSeverity.CRITICAL
    outbox = await repository.list_notifications(t.organization.id, alert_id=alert_id)
    assert sorted(n.channel.value for n in outbox) == ["email", "push", "sms"]
    assert {(n.status, n.attempts, n.purpose) for n in outbox} == {("sent", 1, "opened")}

    assert await notifier.run_once(later(now, minutes=1)) == Round()  # nothing new: nothing sent
    assert len(smtp.received) == 1


async def test_a_syndic_who_muted_sms_and_push_is_told_by_email_only(
    storage: Storage, smtp: SmtpServer, receiver: HttpReceiver
) -> None:
    t = await make_tenant(storage, "Muted")
    muted = frozenset({Channel.SMS, Channel.PUSH})
    await storage.tenancy.set_contacts(t.organization.id, t.syndic.id, "+32 470 12 34 56", "syndic-topic", muted)
    assert (await storage.tenancy.get_user(t.organization.id, t.syndic.id)).muted_channels == muted
    now = utcnow()
    alert_id = await insert_alert(storage, t.common_sensor, now)

    assert await make_notifier(storage, smtp, receiver).run_once(now) == Round(announced=1, sent=1, failed=0)

    assert [mail.recipients for mail in smtp.received] == [[t.syndic.email]]
    assert receiver.sms == [] and receiver.pushes == []
    outbox = await storage.notifications.list_notifications(t.organization.id, alert_id=alert_id)
    assert [n.channel for n in outbox] == [Channel.EMAIL]
    # Contacts saved without saying what is muted (the managers' users table) leave the opt-out as it was.
    await storage.tenancy.set_contacts(t.organization.id, t.syndic.id, None, "syndic-topic")
    assert (await storage.tenancy.get_user(t.organization.id, t.syndic.id)).muted_channels == muted
    await storage.tenancy.set_contacts(t.organization.id, t.syndic.id, None, None, frozenset())
    assert (await storage.tenancy.get_user(t.organization.id, t.syndic.id)).muted_channels == frozenset()


async def test_a_unit_alert_names_the_unit(storage: Storage, smtp: SmtpServer) -> None:
    t = await make_tenant(storage, "Unit")
    await insert_alert(storage, t.unit_sensor, utcnow(), value=12.5, threshold=None, alert_type=AlertType.LEAK_DETECTED)
    await make_notifier(storage, smtp).run_once()
    [mail] = smtp.received
    assert f"{t.building.name}, {t.units[0].name}, {t.unit_sensor.location}" in mail.body
    assert "12.5 m³" in mail.body and "Threshold" not in mail.body and "leak_detected" in mail.body


async def test_repeats_within_the_reminder_interval_send_nothing_then_one_reminder(
    storage: Storage, smtp: SmtpServer
) -> None:
    t = await make_tenant(storage, "Repeat")
    notifier = make_notifier(storage, smtp, reminder_interval=timedelta(hours=4))
    start = utcnow()
    alert_id = await insert_alert(storage, t.common_sensor, start)
    await notifier.run_once(start)
    for minute in range(1, 21):  # 20 more readings over the limit
        await repeat(storage, t.common_sensor, alert_id, later(start, minutes=minute))
        await notifier.run_once(later(start, minutes=minute, seconds=30))
    assert len(smtp.received) == 1
    reminder_time = later(start, hours=4, minutes=1)
    await notifier.run_once(reminder_time)
    assert len(smtp.received) == 2
    reminder = smtp.received[1]
    assert reminder.subject.startswith("Reminder:") and "Occurrences: 21" in reminder.body
    # Told again: no further reminder until it repeats again and another interval has passed.
    await notifier.run_once(later(reminder_time, hours=5))
    assert len(smtp.received) == 2
    await repeat(storage, t.common_sensor, alert_id, later(reminder_time, hours=5, minutes=1))
    await notifier.run_once(later(reminder_time, hours=5, minutes=2))
    assert len(smtp.received) == 3


async def test_an_organization_sets_its_own_reminder_interval(storage: Storage, smtp: SmtpServer) -> None:
    t = await make_tenant(storage, "Pace")
    repository = storage.notifications
    await repository.save_settings(NotificationSettings(t.organization.id, reminder_interval=timedelta(minutes=30)))
    notifier = make_notifier(storage, smtp, reminder_interval=timedelta(hours=4))
    start = utcnow()
    alert_id = await insert_alert(storage, t.common_sensor, start)
    await notifier.run_once(start)
    await repeat(storage, t.common_sensor, alert_id, later(start, minutes=5))
    await notifier.run_once(later(start, minutes=29))
    assert len(smtp.received) == 1
    await notifier.run_once(later(start, minutes=31))
    assert len(smtp.received) == 2


async def test_an_acknowledged_alert_gets_no_reminder(storage: Storage, smtp: SmtpServer) -> None:
    t = await make_tenant(storage, "Ack")
    notifier = make_notifier(storage, smtp)
    start = utcnow()
    alert_id = await insert_alert(storage, t.common_sensor, start)
    await notifier.run_once(start)
    await storage.alerts.acknowledge(
        t.organization.id, alert_id, t.syndic.id, "plumber called", later(start, minutes=2)
    )
    await repeat(storage, t.common_sensor, alert_id, later(start, minutes=3))
    assert await notifier.run_once(later(start, hours=10)) == Round()
    assert len(smtp.received) == 1


async def test_escalation_from_warning_to_critical_notifies_again(
    storage: Storage, smtp: SmtpServer, receiver: HttpReceiver
) -> None:
    t, repository = await with_contacts(storage, "Escalate")
    notifier = make_notifier(storage, smtp, receiver)
    start = utcnow()
    alert_id = await insert_alert(storage, t.common_sensor, start, AlertSeverity.WARNING, value=55.0)
    await notifier.run_once(start)
    assert len(smtp.received) == 1 and receiver.requests == []  # warnings: email only (the default channels)
    await repeat(storage, t.common_sensor, alert_id, later(start, minutes=1), AlertSeverity.CRITICAL)
    assert await notifier.run_once(later(start, minutes=2)) == Round(announced=1, sent=3)
    escalated = smtp.received[1]
    assert escalated.subject.startswith("Escalated: Critical") and "critical (was warning)" in escalated.body
    assert len(receiver.sms) == 1 and len(receiver.pushes) == 1
    # Escalated even though acknowledged: a worse condition is news.
    await storage.alerts.acknowledge(t.organization.id, alert_id, t.syndic.id, None, later(start, minutes=3))
    assert await notifier.run_once(later(start, hours=9)) == Round()


async def test_a_failing_provider_leaves_the_message_pending_then_a_later_run_delivers(
    storage: Storage, smtp: SmtpServer, receiver: HttpReceiver
) -> None:
    t, repository = await with_contacts(storage, "Retry")
    receiver.failing = True
    notifier = make_notifier(storage, receiver=receiver)
    notifier.platform_urls[Channel.EMAIL] = closed_smtp_url()  # email: nobody listens
    start = utcnow()
    alert_id = await insert_alert(storage, t.common_sensor, start)
    assert await notifier.run_once(start) == Round(announced=1, sent=0, failed=3)
    outbox = await repository.list_notifications(t.organization.id, alert_id=alert_id)
    assert {(n.status, n.attempts) for n in outbox} == {("pending", 1)}
    assert all(n.next_attempt_at == start + backoff(1) > start and n.last_error for n in outbox)
    errors = {n.channel.value: n.last_error or "" for n in outbox}
    assert "500" in errors["push"] and "500" in errors["sms"] and "email" in errors["email"].lower()
    alert = await storage.alerts.get(t.organization.id, alert_id)
    assert not (alert.email_sent or alert.sms_sent or alert.push_sent)

    assert await notifier.run_once(later(start, seconds=10)) == Round()  # not due yet
    receiver.failing = False
    # The organization's own email provider (the platform's is down) takes over.
    await repository.save_settings(NotificationSettings(t.organization.id, email_url=smtp.url))
    assert await notifier.run_once(later(start, minutes=1)) == Round(sent=3)
    outbox = await repository.list_notifications(t.organization.id, alert_id=alert_id)
    assert {(n.status, n.attempts, n.last_error) for n in outbox} == {("sent", 2, None)}
    assert len(smtp.received) == 1 and len(receiver.sms) == 2 and len(receiver.pushes) == 2
    alert = await storage.alerts.get(t.organization.id, alert_id)
    assert alert.email_sent and alert.sms_sent and alert.push_sent


async def test_a_message_is_given_up_after_the_last_attempt(storage: Storage) -> None:
    t = await make_tenant(storage, "GiveUp")
    notifier = make_notifier(storage)
    notifier.platform_urls[Channel.EMAIL] = closed_smtp_url()
    moment = utcnow()
    alert_id = await insert_alert(storage, t.common_sensor, moment)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        await notifier.run_once(moment)
        moment += backoff(attempt)
    assert await notifier.run_once(moment + timedelta(days=1)) == Round()
    [email] = await storage.notifications.list_notifications(t.organization.id, alert_id=alert_id)
    assert (email.status, email.attempts) == ("failed", MAX_ATTEMPTS)


async def test_a_channel_without_provider_is_recorded_as_failed(storage: Storage, smtp: SmtpServer) -> None:
    t, repository = await with_contacts(storage, "NoSms")
    alert_id = await insert_alert(storage, t.common_sensor, utcnow())
    assert await make_notifier(storage, smtp).run_once() == Round(announced=1, sent=1)
    outbox = {n.channel.value: n for n in await repository.list_notifications(t.organization.id, alert_id=alert_id)}
    assert outbox["email"].status == "sent"
    assert (outbox["sms"].status, outbox["sms"].last_error) == ("failed", "no sms provider configured")


async def test_owners_receive_only_the_alerts_of_their_units(storage: Storage, smtp: SmtpServer) -> None:
    t = await make_tenant(storage, "Owners")
    repository = storage.notifications
    email_only = {AlertSeverity.CRITICAL: frozenset({Channel.EMAIL})}
    await repository.add_route(NotificationRoute(t.organization.id, role=Role.OWNER, channels=email_only))
    now = utcnow()
    mine = await insert_alert(storage, t.unit_sensor, now)
    await insert_alert(storage, t.other_unit_sensor, now)
    await insert_alert(storage, t.common_sensor, now)
    assert (await make_notifier(storage, smtp).run_once(now)).announced == 3
    [mail] = smtp.received
    assert mail.recipients == [t.owner.email] and str(mine) in mail.body


async def test_routes_of_another_building_do_not_receive(storage: Storage, smtp: SmtpServer) -> None:
    t = await make_tenant(storage, "Buildings")
    other = Building(organization_id=t.organization.id, name="Other building")
    await storage.tenancy.add_building(other)
    repository = storage.notifications
    org = t.organization.id
    await repository.add_route(NotificationRoute(org, building_id=t.building.id, email="here@example.org"))
    await repository.add_route(NotificationRoute(org, building_id=other.id, email="there@example.org"))
    await repository.add_route(NotificationRoute(org, email="everywhere@example.org", name="Manager"))
    await insert_alert(storage, t.common_sensor, utcnow())
    await make_notifier(storage, smtp).run_once()
    assert sorted(r for m in smtp.received for r in m.recipients) == ["everywhere@example.org", "here@example.org"]


async def test_organizations_do_not_hear_of_each_others_alerts(storage: Storage, smtp: SmtpServer) -> None:
    a, b = await make_tenant(storage, "A"), await make_tenant(storage, "B")
    await insert_alert(storage, a.common_sensor, utcnow())
    await make_notifier(storage, smtp).run_once()
    assert [m.recipients for m in smtp.received] == [[a.syndic.email]]
    assert b.syndic.email not in smtp.received[0].recipients


async def test_an_alert_cleared_before_anyone_was_told_is_announced_once(storage: Storage, smtp: SmtpServer) -> None:
    t = await make_tenant(storage, "Cleared")
    now = utcnow()
    await insert_alert(storage, t.common_sensor, now)
    await storage.alerts.apply([ClearAlert(t.common_sensor.id, AlertType.THRESHOLD_EXCEEDED, later(now, seconds=5))])
    notifier = make_notifier(storage, smtp)
    await notifier.run_once(later(now, seconds=10))
    await notifier.run_once(later(now, hours=10))
    [mail] = smtp.received
    assert "Cleared:" in mail.body


async def test_a_sensor_of_another_type_reports_its_own_unit(storage: Storage, smtp: SmtpServer) -> None:
    t = await make_tenant(storage, "Heat")
    heat = IoTSensor(
        organization_id=t.organization.id,
        building_id=t.building.id,
        sensor_id=f"heat-{uuid.uuid4().hex[:6]}",
        sensor_type=SensorType.HEATING,
        manufacturer="Siemens",
        model="Desigo",
        location="Boiler room",
        unit_of_measure="°C",
    )
    await storage.sensors.add(heat)
    await insert_alert(storage, heat, utcnow(), AlertSeverity.WARNING, value=92.0, threshold=85.0)
    await make_notifier(storage, smtp).run_once()
    [mail] = smtp.received
    assert "Value: 92 °C" in mail.body and "Threshold: 85 °C" in mail.body and "Boiler room" in mail.body
