-- Who created, changed or deleted what, and who acknowledged which alert (issue 12): appended by the services,
-- read by syndics newest first. `details` is JSON (what changed, the note), never a secret.
CREATE TABLE iot_audit_log (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    actor_id TEXT NOT NULL,  -- no foreign key: the log outlives users
    entity_type TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    action TEXT NOT NULL,
    details TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX iot_audit_log_org_at ON iot_audit_log(organization_id, at);

-- An organization's provider URLs (iot_notification_settings.email_url, sms_url, push_url) hold SMTP passwords and
-- SMS tokens: from this migration on they are stored sealed (KOPROGO_ENCRYPTION_KEY). The rows stored before are
-- sealed by this migration's data step, in its transaction (storage.sql.notifications.seal_stored_urls).
