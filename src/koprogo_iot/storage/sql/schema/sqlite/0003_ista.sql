-- ISTA meters and their periodic readings, imported from the syndic's CSV files (docs/ista-import.md).
-- A meter is a metering point as ISTA numbers it. A replaced device keeps the number: the replacement is two
-- readings of the same meter, REPLACED_OLD and REPLACED_NEW.
CREATE TABLE ista_meters (
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    meter_number TEXT NOT NULL,
    building_id TEXT NOT NULL REFERENCES buildings(id),
    unit_id TEXT REFERENCES units(id),
    meter_type TEXT NOT NULL CHECK (meter_type IN ('WATER_COLD', 'WATER_HOT', 'HEAT', 'HCA')),
    -- The IoT sensor measuring the same thing, if any. Deleting the sensor only removes the link.
    sensor_id TEXT REFERENCES iot_sensors(id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (organization_id, meter_number)
);
CREATE INDEX ista_meters_building ON ista_meters(organization_id, building_id);
CREATE INDEX ista_meters_sensor ON ista_meters(sensor_id);

-- (organization, meter, date, kind) is a reading's identity: importing the same file twice stores it once.
-- The date is ISO 8601 text ('2026-01-31'), the day the index was read.
CREATE TABLE ista_readings (
    organization_id TEXT NOT NULL,
    meter_number TEXT NOT NULL,
    reading_date TEXT NOT NULL CHECK (reading_date GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    kind TEXT NOT NULL CHECK (kind IN ('ACTUAL', 'ESTIMATED', 'REPLACED_OLD', 'REPLACED_NEW')),
    value REAL NOT NULL,
    unit_of_measure TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    PRIMARY KEY (organization_id, meter_number, reading_date, kind),
    FOREIGN KEY (organization_id, meter_number) REFERENCES ista_meters(organization_id, meter_number)
        ON DELETE CASCADE
) WITHOUT ROWID;
