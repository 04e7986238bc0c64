"""Permission decisions that live in the services (the routers only translate): notification setup and contacts."""

import uuid
from datetime import timedelta

import pytest

from koprogo_iot.domain.access import Principal
from koprogo_iot.domain.alerts import AlertSeverity
from koprogo_iot.domain.errors import Forbidden, InvalidValue, NotFound
from koprogo_iot.domain.notices import DEFAULT_CHANNELS, Channel
from koprogo_iot.services.audit import AuditLog
from koprogo_iot.services.notifications import NotificationSetup
from koprogo_iot.services.provisioning import Provisioning
from koprogo_iot.storage.ports import Storage
from tests.conftest import make_tenant
from tests.notify.conftest import insert_alert


def accept(channel: Channel, template: str) -> str:
    return template.strip()


def refuse(channel: Channel, template: str) -> str:
    raise InvalidValue(f"{channel.value}: not a URL apprise can send to")


async def test_notification_setup_is_for_managers_only(storage: Storage) -> None:
    t = await make_tenant(storage)
    setup = NotificationSetup(storage.notifications, storage.alerts, accept, AuditLog(storage.audit))
    owner = Principal.of(t.owner, [t.building.id])
    for attempt in (
        setup.settings(owner),
        setup.save_settings(owner, {Channel.EMAIL: "mailto://x"}, timedelta(hours=1)),
        setup.routes(owner),
        setup.add_route(owner, building_id=None, role=None, contact={"email": "a@b.org"}, channels=DEFAULT_CHANNELS),
        setup.delete_route(owner, uuid.uuid4()),
        setup.outbox(owner, None, None, 10),
    ):
        with pytest.raises(Forbidden):
            await attempt
    syndic = Principal.of(t.syndic)
    saved = await setup.save_settings(
        syndic, {Channel.EMAIL: " mailto://smtp.example.org ", Channel.SMS: ""}, timedelta(hours=1)
    )
    assert (saved.email_url, saved.sms_url, saved.reminder_interval) == (
        "mailto://smtp.example.org",
        None,
        timedelta(hours=1),
    )


async def test_provider_urls_are_checked_before_they_are_stored(storage: Storage) -> None:
    t = await make_tenant(storage)
    setup = NotificationSetup(storage.notifications, storage.alerts, refuse, AuditLog(storage.audit))
    with pytest.raises(InvalidValue, match="apprise"):
        await setup.save_settings(Principal.of(t.syndic), {Channel.EMAIL: "nonsense"}, timedelta(hours=1))
    assert (await storage.notifications.get_settings(t.organization.id)).email_url is None


async def test_the_outbox_of_another_organizations_alert_is_not_found(storage: Storage) -> None:
    a, b = await make_tenant(storage, "A"), await make_tenant(storage, "B")
    setup = NotificationSetup(storage.notifications, storage.alerts, accept, AuditLog(storage.audit))
    theirs = await insert_alert(storage, b.common_sensor, b.organization.created_at)
    with pytest.raises(NotFound):
        await setup.outbox(Principal.of(a.syndic), theirs, None, 10)
    route = await setup.add_route(
        Principal.of(a.syndic),
        building_id=None,
        role=None,
        contact={"email": "manager@example.org"},
        channels={AlertSeverity.CRITICAL: frozenset({Channel.EMAIL})},
    )
    with pytest.raises(NotFound):
        await setup.delete_route(Principal.of(b.syndic), route.id)
    assert [r.id for r in await setup.routes(Principal.of(a.syndic))] == [route.id]


async def test_users_set_their_own_contacts_managers_anyone_in_their_organization(storage: Storage) -> None:
    a, b = await make_tenant(storage, "A"), await make_tenant(storage, "B")
    provisioning = Provisioning(storage.tenancy, storage.sensors, AuditLog(storage.audit))
    owner, syndic = Principal.of(a.owner, [a.building.id]), Principal.of(a.syndic)
    mine = await provisioning.set_contacts(owner, a.owner.id, "+32 470 11 22 33", "owner-topic")
    assert (mine.phone, mine.push_topic) == ("+32470112233", "owner-topic")
    with pytest.raises(Forbidden):
        await provisioning.set_contacts(owner, a.syndic.id, "+32 470 00 00 00", None)
    theirs = await provisioning.set_contacts(syndic, a.owner.id, None, None)
    assert (theirs.phone, theirs.push_topic) == (None, None)
    with pytest.raises(NotFound):
        await provisioning.set_contacts(syndic, b.owner.id, "+32 470 00 00 00", None)
