-- Alert rules, notification settings, recipients and the delivery outbox (issue 5).

-- Rules as partial JSON documents (domain.rules): an organization's defaults for a sensor type, or one sensor's
-- override. Effective rules = built-in defaults < the type's defaults < the sensor's override.
CREATE TABLE iot_alert_rules (
    organization_id UUID NOT NULL REFERENCES organizations(id),
    sensor_type TEXT,
    sensor_id UUID REFERENCES iot_sensors(id) ON DELETE CASCADE,
    rules TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    CHECK ((sensor_type IS NULL) <> (sensor_id IS NULL))
);
CREATE UNIQUE INDEX iot_alert_rules_type ON iot_alert_rules(organization_id, sensor_type) WHERE sensor_id IS NULL;
CREATE UNIQUE INDEX iot_alert_rules_sensor ON iot_alert_rules(sensor_id) WHERE sensor_id IS NOT NULL;

-- What people were last told about an alert: the notifier finds alerts never notified, escalated since, or due
-- for a reminder. The alert row itself is the outbox event: committing it is enough for a notification to follow.
-- Which rule raised the alert (e.g. 'threshold', 'night_flow', 'stuck'): a clear from one rule leaves an alert of
-- the same type raised by another rule active.
ALTER TABLE iot_alerts ADD COLUMN rule TEXT;
ALTER TABLE iot_alerts ADD COLUMN notified_at TIMESTAMPTZ;
ALTER TABLE iot_alerts ADD COLUMN notified_severity TEXT;
-- Alerts from before this migration were handled without notifications: nobody is to be told about them now.
UPDATE iot_alerts SET notified_at = created_at, notified_severity = severity;
CREATE INDEX iot_alerts_unnotified ON iot_alerts(created_at) WHERE notified_at IS NULL;
CREATE INDEX iot_alerts_org_active ON iot_alerts(organization_id, alert_type) WHERE cleared_at IS NULL;

-- Contacts of a user for the SMS and push channels (email is the login).
ALTER TABLE users ADD COLUMN phone TEXT;
ALTER TABLE users ADD COLUMN push_topic TEXT;

-- An organization's providers, as apprise URL templates with a {to} placeholder for the recipient's address,
-- e.g. 'mailtos://user:pass@smtp.example.com?from=alerts@example.com&to={to}'. NULL: the platform's default.
CREATE TABLE iot_notification_settings (
    organization_id UUID PRIMARY KEY REFERENCES organizations(id),
    email_url TEXT,
    sms_url TEXT,
    push_url TEXT,
    reminder_interval_s INTEGER NOT NULL DEFAULT 14400 CHECK (reminder_interval_s >= 60),
    updated_at TIMESTAMPTZ NOT NULL
);

-- Who is told, per organization or building: the users of a role (owners: those of the alert's unit) or one
-- explicit contact; `channels` is JSON {"info": [...], "warning": ["email"], "critical": ["email", "sms", "push"]}.
CREATE TABLE iot_notification_routes (
    id UUID PRIMARY KEY,
    organization_id UUID NOT NULL REFERENCES organizations(id),
    building_id UUID REFERENCES buildings(id) ON DELETE CASCADE,
    role TEXT CHECK (role IN ('syndic', 'owner')),
    name TEXT,
    email TEXT,
    phone TEXT,
    push_topic TEXT,
    channels TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    CHECK ((role IS NULL) <> (email IS NULL AND phone IS NULL AND push_topic IS NULL))
);
CREATE INDEX iot_notification_routes_org ON iot_notification_routes(organization_id);

-- The outbox: one message to one address on one channel, retried with backoff until sent or given up.
CREATE TABLE iot_notifications (
    id UUID PRIMARY KEY,
    organization_id UUID NOT NULL REFERENCES organizations(id),
    alert_id UUID NOT NULL REFERENCES iot_alerts(id) ON DELETE CASCADE,
    channel TEXT NOT NULL CHECK (channel IN ('email', 'sms', 'push')),
    recipient TEXT NOT NULL,
    purpose TEXT NOT NULL CHECK (purpose IN ('opened', 'escalated', 'reminder')),
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    sent_at TIMESTAMPTZ
);
CREATE INDEX iot_notifications_due ON iot_notifications(next_attempt_at) WHERE status = 'pending';
CREATE INDEX iot_notifications_alert ON iot_notifications(alert_id);

-- Where the periodic window rules stopped: several processes may run the evaluator, one at a time holds the lease.
CREATE TABLE iot_job_leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    last_run_at TIMESTAMPTZ
);
