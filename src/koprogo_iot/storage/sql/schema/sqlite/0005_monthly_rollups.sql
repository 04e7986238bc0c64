-- Monthly rollups (local months in Europe/Brussels, bucket = the UTC instant of the month's first local midnight),
-- combined from the daily rows exactly as a day is from its hours (analytics/rollups.py).
CREATE TABLE iot_rollups_monthly (
    sensor_id TEXT NOT NULL REFERENCES iot_sensors(id) ON DELETE CASCADE,
    bucket TEXT NOT NULL,
    organization_id TEXT NOT NULL,
    building_id TEXT NOT NULL,
    unit_id TEXT,
    count INTEGER NOT NULL,
    sum REAL NOT NULL,
    min REAL NOT NULL,
    max REAL NOT NULL,
    first_ts TEXT NOT NULL,
    first_value REAL NOT NULL,
    last_ts TEXT NOT NULL,
    last_value REAL NOT NULL,
    increase REAL,
    resets INTEGER NOT NULL,
    rollovers INTEGER NOT NULL,
    PRIMARY KEY (sensor_id, bucket)
) WITHOUT ROWID;
CREATE INDEX iot_rollups_monthly_org_building ON iot_rollups_monthly(organization_id, building_id, bucket);
