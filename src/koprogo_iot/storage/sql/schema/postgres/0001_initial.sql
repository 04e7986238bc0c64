-- Tenancy, sensors, readings and alerts. Enumerations are CHECKed text so both adapters share their SQL.
CREATE TABLE organizations (
    id UUID PRIMARY KEY,
    name TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE buildings (
    id UUID PRIMARY KEY,
    organization_id UUID NOT NULL REFERENCES organizations(id),
    name TEXT NOT NULL,
    address TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX buildings_org ON buildings(organization_id);

CREATE TABLE units (
    id UUID PRIMARY KEY,
    organization_id UUID NOT NULL REFERENCES organizations(id),
    building_id UUID NOT NULL REFERENCES buildings(id),
    name TEXT NOT NULL,
    floor INTEGER,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX units_org_building ON units(organization_id, building_id);

CREATE TABLE users (
    id UUID PRIMARY KEY,
    organization_id UUID NOT NULL REFERENCES organizations(id),
    email TEXT NOT NULL UNIQUE,
    full_name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('superadmin', 'syndic', 'owner')),
    password_hash TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX users_org ON users(organization_id);

CREATE TABLE user_units (
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    unit_id UUID NOT NULL REFERENCES units(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, unit_id)
);

CREATE TABLE iot_sensors (
    id UUID PRIMARY KEY,
    organization_id UUID NOT NULL REFERENCES organizations(id),
    building_id UUID NOT NULL REFERENCES buildings(id),
    unit_id UUID REFERENCES units(id),
    sensor_id VARCHAR(255) NOT NULL,
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
    calibration_factor DOUBLE PRECISION NOT NULL,
    alert_threshold_min DOUBLE PRECISION,
    alert_threshold_max DOUBLE PRECISION,
    status TEXT NOT NULL CHECK (status IN ('active', 'inactive', 'maintenance', 'faulty')),
    last_reading_at TIMESTAMPTZ,
    last_value DOUBLE PRECISION,
    last_battery_level DOUBLE PRECISION,
    installed_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    -- One device can feed several sensors (a Shelly Pro 3EM: energy and power), one per field.
    UNIQUE (organization_id, sensor_id, device_field)
);
CREATE INDEX iot_sensors_org_building ON iot_sensors(organization_id, building_id);

-- (sensor, time) is a reading's identity: a redelivered reading is stored once. The time column is part of
-- the key because a partitioned table's unique keys must include the partition key.
-- Without TimescaleDB the table is range-partitioned by month, managed by the application
-- (storage/partitions.py creates months ahead, moves rows out of the default partition, drops old months).
CREATE TABLE iot_readings (
    sensor_id UUID NOT NULL REFERENCES iot_sensors(id) ON DELETE CASCADE,
    ts TIMESTAMPTZ NOT NULL,
    organization_id UUID NOT NULL,
    building_id UUID NOT NULL,
    unit_id UUID,
    value DOUBLE PRECISION NOT NULL,
    unit_of_measure TEXT NOT NULL,
    battery_level DOUBLE PRECISION,
    signal_strength INTEGER,
    quality TEXT NOT NULL,
    is_anomaly BOOLEAN NOT NULL DEFAULT false,
    anomaly_reason TEXT,
    received_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (sensor_id, ts)
) PARTITION BY RANGE (ts);
-- Catches readings of months that have no partition yet, so ingestion never fails on a missing one.
CREATE TABLE iot_readings_default PARTITION OF iot_readings DEFAULT;

CREATE TABLE iot_alerts (
    id UUID PRIMARY KEY,
    organization_id UUID NOT NULL REFERENCES organizations(id),
    sensor_id UUID NOT NULL REFERENCES iot_sensors(id) ON DELETE CASCADE,
    building_id UUID NOT NULL,
    unit_id UUID,
    alert_type TEXT NOT NULL,
    severity TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    message TEXT NOT NULL,
    triggered_at TIMESTAMPTZ NOT NULL,
    last_triggered_at TIMESTAMPTZ,
    occurrences INTEGER NOT NULL DEFAULT 1,
    reading_value DOUBLE PRECISION,
    threshold_value DOUBLE PRECISION,
    cleared_at TIMESTAMPTZ,
    email_sent BOOLEAN NOT NULL DEFAULT false,
    sms_sent BOOLEAN NOT NULL DEFAULT false,
    push_sent BOOLEAN NOT NULL DEFAULT false,
    acknowledged_by UUID REFERENCES users(id),
    acknowledged_at TIMESTAMPTZ,
    resolution_note TEXT,
    created_at TIMESTAMPTZ NOT NULL
);
-- At most one active alert per (sensor, type): concurrent triggers update it instead of adding one.
CREATE UNIQUE INDEX iot_alerts_one_active ON iot_alerts(sensor_id, alert_type) WHERE cleared_at IS NULL;
CREATE INDEX iot_alerts_org_triggered ON iot_alerts(organization_id, triggered_at DESC);

-- Messages ingestion refused, kept for operators: the topic, the start of the payload and the reason.
-- organization_id is the topic's organization when it names an existing one.
CREATE TABLE dead_letters (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id UUID,
    topic TEXT NOT NULL,
    payload_excerpt TEXT NOT NULL,
    payload_size INTEGER NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX dead_letters_org_received ON dead_letters(organization_id, received_at DESC);
CREATE INDEX dead_letters_reason ON dead_letters(reason, received_at DESC);
