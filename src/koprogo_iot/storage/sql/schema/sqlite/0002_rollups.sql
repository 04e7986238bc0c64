-- Hourly and daily rollups of iot_readings, kept up to date by analytics/rollups.py.
-- Hourly buckets are UTC hours; daily buckets are local days in Europe/Brussels (bucket = the UTC instant of
-- local midnight, so a day lasts 23 or 25 hours on DST days). `increase` is the counter increase of the steps
-- between the bucket's own first and last reading (NULL for gauges); the step from one bucket's last reading to
-- the next bucket's first reading belongs to neither: callers add it, spread linearly (see analytics/rollups.py).
CREATE TABLE iot_rollups_hourly (
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
CREATE INDEX iot_rollups_hourly_org_building ON iot_rollups_hourly(organization_id, building_id, bucket);

CREATE TABLE iot_rollups_daily (
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
CREATE INDEX iot_rollups_daily_org_building ON iot_rollups_daily(organization_id, building_id, bucket);

-- The (sensor, UTC hour) pairs that received readings since their rollups were computed; ingestion adds them in
-- its transaction, the refresher claims them. No foreign key: it would cost every ingested batch a lookup.
CREATE TABLE iot_rollup_dirty (
    sensor_id TEXT NOT NULL,
    hour TEXT NOT NULL,
    PRIMARY KEY (sensor_id, hour)
) WITHOUT ROWID;
