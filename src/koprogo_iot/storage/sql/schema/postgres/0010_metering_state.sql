-- Rollups carry the counter's state across bucket edges (domain/rollups.py): the baseline each bucket starts from
-- and ends with, the increase and kind of the step into its first reading, and its longest step between readings
-- (seconds, for the gap flag). Rows computed before knew none of it: they are dropped and every hour that had one
-- is marked stale, so the refresher recomputes them (the first analytics query after the upgrade catches up before
-- answering).
INSERT INTO iot_rollup_dirty (sensor_id, hour) SELECT sensor_id, bucket FROM iot_rollups_hourly
ON CONFLICT (sensor_id, hour) DO NOTHING;
DELETE FROM iot_rollups_hourly;
DELETE FROM iot_rollups_daily;
DELETE FROM iot_rollups_monthly;
ALTER TABLE iot_rollups_hourly ADD COLUMN baseline_in DOUBLE PRECISION;
ALTER TABLE iot_rollups_hourly ADD COLUMN entry DOUBLE PRECISION;
ALTER TABLE iot_rollups_hourly ADD COLUMN baseline DOUBLE PRECISION;
ALTER TABLE iot_rollups_daily ADD COLUMN baseline_in DOUBLE PRECISION;
ALTER TABLE iot_rollups_daily ADD COLUMN entry DOUBLE PRECISION;
ALTER TABLE iot_rollups_daily ADD COLUMN baseline DOUBLE PRECISION;
ALTER TABLE iot_rollups_monthly ADD COLUMN baseline_in DOUBLE PRECISION;
ALTER TABLE iot_rollups_monthly ADD COLUMN entry DOUBLE PRECISION;
ALTER TABLE iot_rollups_monthly ADD COLUMN baseline DOUBLE PRECISION;
ALTER TABLE iot_rollups_hourly ADD COLUMN entry_kind TEXT;
ALTER TABLE iot_rollups_hourly ADD COLUMN longest_step DOUBLE PRECISION;
ALTER TABLE iot_rollups_daily ADD COLUMN entry_kind TEXT;
ALTER TABLE iot_rollups_daily ADD COLUMN longest_step DOUBLE PRECISION;
ALTER TABLE iot_rollups_monthly ADD COLUMN entry_kind TEXT;
ALTER TABLE iot_rollups_monthly ADD COLUMN longest_step DOUBLE PRECISION;
-- A counter's register size (rollover modulus), NULL when unknown: changing it marks the sensor's rollups stale.
ALTER TABLE iot_sensors ADD COLUMN rollover DOUBLE PRECISION;
