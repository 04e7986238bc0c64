-- Device ids of hexadecimal families (DevEUI, MAC-based Shelly ids, wM-Bus meter ids) are compared in lower case:
-- the ingest pipeline looks them up that way since this release.
UPDATE iot_sensors SET sensor_id = lower(sensor_id) WHERE device_format IN ('shelly', 'chirpstack', 'ttn', 'wmbus');

-- Devices that sent values no sensor reads (yet), with their fields' last values: registration starts from them.
CREATE TABLE iot_device_sightings (
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    device_format TEXT NOT NULL,
    device_id TEXT NOT NULL,
    building_id TEXT REFERENCES buildings(id) ON DELETE CASCADE,
    topic TEXT NOT NULL,
    fields TEXT NOT NULL,  -- JSON {field: {"value": 1.2, "unit": "m3", "kind": "cumulative"}}
    battery_level REAL,
    signal_strength INTEGER,
    last_seen_at TEXT NOT NULL,
    PRIMARY KEY (organization_id, device_format, device_id)
);

-- An organization's LoRaWAN network server (ChirpStack, The Things Stack), subscribed to by the ingest workers.
-- The password is encrypted by the application (KOPROGO_ENCRYPTION_KEY), never stored or shown in clear.
CREATE TABLE iot_integrations (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    kind TEXT NOT NULL CHECK (kind IN ('chirpstack', 'ttn')),
    name TEXT NOT NULL,
    broker_url TEXT NOT NULL,
    username TEXT,
    password_encrypted TEXT,
    topic_filter TEXT NOT NULL,
    ca_certificate TEXT,
    enabled INTEGER NOT NULL,
    status TEXT NOT NULL,
    last_error TEXT,
    last_message_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX iot_integrations_org ON iot_integrations(organization_id);
