-- Rollups carry the counter's state across bucket edges (domain/rollups.py): the baseline each bucket starts from
-- and ends with, the increase and kind of the step into its first reading, and its longest step between readings
-- (seconds, for the gap flag). Rows computed before knew none of it: they are dropped and every hour that had one
-- is marked stale, so the refresher recomputes them (the first analytics query after the upgrade catches up before
-- answering).
INSERT INTO iot_rollup_dirty (sensor_id, hour) SELECT sensor_id, bucket FROM iot_rollups_hourly WHERE true
ON CONFLICT (sensor_id, hour) DO NOTHING;
DELETE FROM iot_rollups_hourly;
DELETE FROM iot_rollups_daily;
DELETE FROM iot_rollups_monthly;
ALTER TABLE iot_rollups_hourly ADD COLUMN baseline_in REAL;
ALTER TABLE iot_rollups_hourly ADD COLUMN entry REAL;
ALTER TABLE iot_rollups_hourly ADD COLUMN baseline REAL;
ALTER TABLE iot_rollups_daily ADD COLUMN baseline_in REAL;
ALTER TABLE iot_rollups_daily ADD COLUMN entry REAL;
ALTER TABLE iot_rollups_daily ADD COLUMN baseline REAL;
ALTER TABLE iot_rollups_monthly ADD COLUMN baseline_in REAL;
ALTER TABLE iot_rollups_monthly ADD COLUMN entry REAL;
ALTER TABLE iot_rollups_monthly ADD COLUMN baseline REAL;
ALTER TABLE iot_rollups_hourly ADD COLUMN entry_kind TEXT;
ALTER TABLE iot_rollups_hourly ADD COLUMN longest_step REAL;
ALTER TABLE iot_rollups_daily ADD COLUMN entry_kind TEXT;
ALTER TABLE iot_rollups_daily ADD COLUMN longest_step REAL;
ALTER TABLE iot_rollups_monthly ADD COLUMN entry_kind TEXT;
ALTER TABLE iot_rollups_monthly ADD COLUMN longest_step REAL;
-- A counter's register size (rollover modulus), NULL when unknown: changing it marks the sensor's rollups stale.
ALTER TABLE iot_sensors ADD COLUMN rollover REAL;
