-- ISTA meters and their periodic readings, imported from the syndic's CSV files (docs/ista-import.md).
-- A meter is a metering point as ISTA numbers it. A replaced device keeps the number: the replacement is two
-- readings of the same meter, REPLACED_OLD and REPLACED_NEW.
CREATE TABLE ista_meters (
    organization_id UUID NOT NULL REFERENCES organizations(id),
    meter_number TEXT NOT NULL,
    building_id UUID NOT NULL REFERENCES buildings(id),
    unit_id UUID REFERENCES units(id),
    meter_type TEXT NOT NULL CHECK (meter_type IN ('WATER_COLD', 'WATER_HOT', 'HEAT', 'HCA')),
    -- The IoT sensor measuring the same thing, if any. Deleting the sensor only removes the link.
    sensor_id UUID REFERENCES iot_sensors(id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (organization_id, meter_number)
);
CREATE INDEX ista_meters_building ON ista_meters(organization_id, building_id);
CREATE INDEX ista_meters_sensor ON ista_meters(sensor_id);

-- (organization, meter, date, kind) is a reading's identity: importing the same file twice stores it once.
-- The date is ISO 8601 text (as in SQLite, so one query binds on both drivers), the day the index was read.
CREATE TABLE ista_readings (
    organization_id UUID NOT NULL,
    meter_number TEXT NOT NULL,
    reading_date TEXT NOT NULL CHECK (reading_date ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'),
    kind TEXT NOT NULL CHECK (kind IN ('ACTUAL', 'ESTIMATED', 'REPLACED_OLD', 'REPLACED_NEW')),
    value DOUBLE PRECISION NOT NULL,
    unit_of_measure TEXT NOT NULL,
    imported_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (organization_id, meter_number, reading_date, kind),
    FOREIGN KEY (organization_id, meter_number) REFERENCES ista_meters(organization_id, meter_number)
        ON DELETE CASCADE
);
