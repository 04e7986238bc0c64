-- Tenancy, sensors, readings and alerts. Ids are UUID text, times are fixed-width UTC ISO 8601 text
-- ('2026-01-31T12:00:00.000000Z') so that text order is time order.
CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE buildings (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    name TEXT NOT NULL,
    address TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
CREATE INDEX buildings_org ON buildings(organization_id);

CREATE TABLE units (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    building_id TEXT NOT NULL REFERENCES buildings(id),
    name TEXT NOT NULL,
    floor INTEGER,
    created_at TEXT NOT NULL
);
CREATE INDEX units_org_building ON units(organization_id, building_id);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    email TEXT NOT NULL UNIQUE,
    full_name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('superadmin', 'syndic', 'owner')),
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX users_org ON users(organization_id);

CREATE TABLE user_units (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    unit_id TEXT NOT NULL REFERENCES units(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, unit_id)
);

CREATE TABLE iot_sensors (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    building_id TEXT NOT NULL REFERENCES buildings(id),
    unit_id TEXT REFERENCES units(id),
    sensor_id TEXT NOT NULL,
    device_format TEXT NOT NULL DEFAULT 'native',
    device_field TEXT NOT NULL DEFAULT '',
    sensor_type TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('cumulative', 'instantaneous')),
    manufacturer TEXT NOT NULL,
    model TEXT NOT NULL,
    firmware_version TEXT,
    location TEXT NOT NULL,
    floor INTEGER,
    unit_of_measure TEXT NOT NULL,
    sampling_interval INTEGER NOT NULL,
    calibration_factor REAL NOT NULL,
    alert_threshold_min REAL,
    alert_threshold_max REAL,
    status TEXT NOT NULL CHECK (status IN ('active', 'inactive', 'maintenance', 'faulty')),
    last_reading_at TEXT,
    last_value REAL,
    last_battery_level REAL,
    installed_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    -- One device can feed several sensors (a Shelly Pro 3EM: energy and power), one per field.
    UNIQUE (organization_id, sensor_id, device_field)
);
CREATE INDEX iot_sensors_org_building ON iot_sensors(organization_id, building_id);

-- (sensor, time) is a reading's identity: a redelivered reading is stored once.
CREATE TABLE iot_readings (
    sensor_id TEXT NOT NULL REFERENCES iot_sensors(id) ON DELETE CASCADE,
    ts TEXT NOT NULL,
    organization_id TEXT NOT NULL,
    building_id TEXT NOT NULL,
    unit_id TEXT,
    value REAL NOT NULL,
    unit_of_measure TEXT NOT NULL,
    battery_level REAL,
    signal_strength INTEGER,
    quality TEXT NOT NULL,
    is_anomaly INTEGER NOT NULL DEFAULT 0,
    anomaly_reason TEXT,
    received_at TEXT NOT NULL,
    PRIMARY KEY (sensor_id, ts)
) WITHOUT ROWID;

CREATE TABLE iot_alerts (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    sensor_id TEXT NOT NULL REFERENCES iot_sensors(id) ON DELETE CASCADE,
    building_id TEXT NOT NULL,
    unit_id TEXT,
    alert_type TEXT NOT NULL,
    severity TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    message TEXT NOT NULL,
    triggered_at TEXT NOT NULL,
    last_triggered_at TEXT,
    occurrences INTEGER NOT NULL DEFAULT 1,
    reading_value REAL,
    threshold_value REAL,
    cleared_at TEXT,
    email_sent INTEGER NOT NULL DEFAULT 0,
    sms_sent INTEGER NOT NULL DEFAULT 0,
    push_sent INTEGER NOT NULL DEFAULT 0,
    acknowledged_by TEXT REFERENCES users(id),
    acknowledged_at TEXT,
    resolution_note TEXT,
    created_at TEXT NOT NULL
);
-- At most one active alert per (sensor, type): concurrent triggers update it instead of adding one.
CREATE UNIQUE INDEX iot_alerts_one_active ON iot_alerts(sensor_id, alert_type) WHERE cleared_at IS NULL;
CREATE INDEX iot_alerts_org_triggered ON iot_alerts(organization_id, triggered_at DESC);

-- Messages ingestion refused, kept for operators: the topic, the start of the payload and the reason.
-- organization_id is the topic's organization when it names an existing one.
CREATE TABLE dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    organization_id TEXT,
    topic TEXT NOT NULL,
    payload_excerpt TEXT NOT NULL,
    payload_size INTEGER NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE INDEX dead_letters_org_received ON dead_letters(organization_id, received_at DESC);
CREATE INDEX dead_letters_reason ON dead_letters(reason, received_at DESC);
