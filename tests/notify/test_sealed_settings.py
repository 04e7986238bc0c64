"""Organizations' provider URLs hold credentials: stored sealed, shown masked, delivered with in clear (issue 12)."""

from __future__ import annotations

from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.notices import NotificationSettings, masked_url
from koprogo_iot.storage.ports import Storage
from koprogo_iot.storage.sql.database import Database
from koprogo_iot.storage.sql.migrations import migrate
from koprogo_iot.storage.sql.notifications import seal_stored_urls
from koprogo_iot.storage.sql.sealing import Sealer
from tests.api.conftest import Api
from tests.conftest import ENCRYPTION_KEY, make_tenant
from tests.notify.conftest import SmtpServer, insert_alert, make_notifier

SETTINGS = "/api/v1/iot/notifications/settings"
SMTP_URL = "mailtos://alerts:s3cret-pass@smtp.example.org?from=alerts@example.org&to={to}"


async def _stored(db: Database, organization_id: object) -> str:
    row = await db.fetchrow(
        "SELECT email_url FROM iot_notification_settings WHERE organization_id = $1", organization_id
    )
    assert row is not None
    return str(row["email_url"])


async def test_the_url_is_sealed_at_rest_and_the_notifier_sends_through_it(
    storage: Storage, db: Database, smtp: SmtpServer
) -> None:
    t = await make_tenant(storage, "Sealed")
    await storage.notifications.save_settings(NotificationSettings(t.organization.id, email_url=smtp.url))
    stored = await _stored(db, t.organization.id)
    assert "127.0.0.1" not in stored and Sealer(ENCRYPTION_KEY).unseal(stored) == smtp.url
    notifier = make_notifier(storage)  # no platform provider: only the organization's sealed one can deliver
    now = utcnow()
    await insert_alert(storage, t.common_sensor, now)
    await notifier.run_once(now)
    assert len(smtp.received) == 1 and smtp.received[0].recipients == [t.syndic.email]


async def test_urls_read_back_masked_and_a_masked_url_sent_back_keeps_the_secret(api: Api) -> None:
    syndic = await api.token(api.a.syndic.email)
    saved = await api.client.put(SETTINGS, json={"email_url": SMTP_URL}, headers=syndic)
    assert saved.status_code == 200
    masked = "mailtos://alerts:****@smtp.example.org?from=alerts@example.org&to={to}"
    assert saved.json()["email_url"] == masked
    assert (await api.client.get(SETTINGS, headers=syndic)).json()["email_url"] == masked
    again = await api.client.put(SETTINGS, json={"email_url": masked, "reminder_interval_s": 600}, headers=syndic)
    assert again.status_code == 200
    assert (await api.storage.notifications.get_settings(api.a.organization.id)).email_url == SMTP_URL
    edited = masked.replace("smtp.example.org", "mail.example.org")
    refused = await api.client.put(SETTINGS, json={"email_url": edited}, headers=syndic)
    assert refused.status_code == 422 and "email_url" in refused.json()["message"]
    assert "s3cret" not in refused.text


def test_masking_hides_what_apprise_providers_take_as_credentials() -> None:
    cases = {
        "twilio://AC1234:auth-token@+3228887766/{to}": "twilio://AC1234:****@+3228887766/{to}",
        "smseagle://0123456789abcdef0123@sms.example.org/{to}": "smseagle://****@sms.example.org/{to}",
        "ntfys://ntfy.example.org/{to}?token=tk_secret": "ntfys://ntfy.example.org/{to}?token=****",
        "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/{to}": "tgram://****/{to}",
        "ntfys://ntfy.example.org/{to}": "ntfys://ntfy.example.org/{to}",
    }
    assert {url: masked_url(url) for url in cases} == cases


async def test_the_migration_seals_urls_stored_in_clear_before_it(storage: Storage, db: Database) -> None:
    t = await make_tenant(storage, "Before")
    # The state before 0008: a URL in clear, and neither the audit table nor the migration's record.
    await db.execute(
        "INSERT INTO iot_notification_settings (organization_id, email_url, updated_at) VALUES ($1, $2, $3)",
        t.organization.id,
        SMTP_URL,
        utcnow(),
    )
    await db.execute("DROP TABLE iot_audit_log")
    await db.execute("DELETE FROM schema_migrations WHERE version = 8")
    applied = await migrate(db, {8: seal_stored_urls(Sealer(ENCRYPTION_KEY))})
    assert [m.version for m in applied] == [8]
    assert "s3cret" not in await _stored(db, t.organization.id)
    assert (await storage.notifications.get_settings(t.organization.id)).email_url == SMTP_URL
