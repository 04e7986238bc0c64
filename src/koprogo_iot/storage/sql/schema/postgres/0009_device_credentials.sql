-- The MQTT logins of devices and gateways. The password is kept only as its PBKDF2-SHA512 digest in Mosquitto's
-- notation ($7$iterations$salt$digest), from which the broker's dynamic-security file can be rebuilt.
-- A revoked credential stays, for the record of who could publish when.
CREATE TABLE iot_device_credentials (
    id UUID PRIMARY KEY,
    organization_id UUID NOT NULL REFERENCES organizations(id),
    building_id UUID REFERENCES buildings(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    username TEXT NOT NULL UNIQUE,
    password_digest TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    rotated_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX iot_device_credentials_org ON iot_device_credentials(organization_id);
