-- Hourly and daily rollups of iot_readings, kept up to date by analytics/rollups.py.
-- Hourly buckets are UTC hours; daily buckets are local days in Europe/Brussels (bucket = the UTC instant of
-- local midnight, so a day lasts 23 or 25 hours on DST days). `increase` is the counter increase of the steps
-- between the bucket's own first and last reading (NULL for gauges); the step from one bucket's last reading to
-- the next bucket's first reading belongs to neither: callers add it, spread linearly (see analytics/rollups.py).
CREATE TABLE iot_rollups_hourly (
    sensor_id UUID NOT NULL REFERENCES iot_sensors(id) ON DELETE CASCADE,
    bucket TIMESTAMPTZ NOT NULL,
    organization_id UUID NOT NULL,
    building_id UUID NOT NULL,
    unit_id UUID,
    count INTEGER NOT NULL,
    sum DOUBLE PRECISION NOT NULL,
    min DOUBLE PRECISION NOT NULL,
    max DOUBLE PRECISION NOT NULL,
    first_ts TIMESTAMPTZ NOT NULL,
    first_value DOUBLE PRECISION NOT NULL,
    last_ts TIMESTAMPTZ NOT NULL,
    last_value DOUBLE PRECISION NOT NULL,
    increase DOUBLE PRECISION,
    resets INTEGER NOT NULL,
    rollovers INTEGER NOT NULL,
    PRIMARY KEY (sensor_id, bucket)
);
CREATE INDEX iot_rollups_hourly_org_building ON iot_rollups_hourly(organization_id, building_id, bucket);

CREATE TABLE iot_rollups_daily (LIKE iot_rollups_hourly INCLUDING DEFAULTS, PRIMARY KEY (sensor_id, bucket));
ALTER TABLE iot_rollups_daily ADD FOREIGN KEY (sensor_id) REFERENCES iot_sensors(id) ON DELETE CASCADE;
CREATE INDEX iot_rollups_daily_org_building ON iot_rollups_daily(organization_id, building_id, bucket);

-- The (sensor, UTC hour) pairs that received readings since their rollups were computed; ingestion adds them in
-- its transaction, the refresher claims them. No foreign key: it would cost every ingested batch a lookup.
CREATE TABLE iot_rollup_dirty (
    sensor_id UUID NOT NULL,
    hour TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (sensor_id, hour)
);
