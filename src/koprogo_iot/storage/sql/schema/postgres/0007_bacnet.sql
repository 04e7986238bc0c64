-- BACnet points (issue 11): the Siemens BMS objects the `koprogo-iot bacnet` poller reads, one per native sensor.
-- Version 7: 0006 belongs to device registration; migrations apply in version order, a gap is harmless.
CREATE TABLE iot_bacnet_points (
    id UUID PRIMARY KEY,
    organization_id UUID NOT NULL REFERENCES organizations(id),
    building_id UUID NOT NULL REFERENCES buildings(id) ON DELETE CASCADE,
    -- One point per sensor: two sources for one sensor would interleave two series.
    sensor_id UUID NOT NULL UNIQUE REFERENCES iot_sensors(id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_instance INTEGER NOT NULL CHECK (object_instance BETWEEN 0 AND 4194302),
    polling_interval INTEGER NOT NULL CHECK (polling_interval BETWEEN 10 AND 86400),
    property_identifier TEXT NOT NULL,
    device_instance INTEGER CHECK (device_instance BETWEEN 0 AND 4194302),
    scale DOUBLE PRECISION NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX iot_bacnet_points_building ON iot_bacnet_points(organization_id, building_id);
