-- Monthly rollups (local months in Europe/Brussels, bucket = the UTC instant of the month's first local midnight),
-- combined from the daily rows exactly as a day is from its hours: a year of a building is then ~12 rows per
-- sensor instead of ~365 (analytics/rollups.py).
CREATE TABLE iot_rollups_monthly (LIKE iot_rollups_hourly INCLUDING DEFAULTS, PRIMARY KEY (sensor_id, bucket));
ALTER TABLE iot_rollups_monthly ADD FOREIGN KEY (sensor_id) REFERENCES iot_sensors(id) ON DELETE CASCADE;
CREATE INDEX iot_rollups_monthly_org_building ON iot_rollups_monthly(organization_id, building_id, bucket);
