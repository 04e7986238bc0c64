-- A building's main meter per sensor type (its medium), which the units' counters of that type are balanced
-- against (domain/balance.py). At most one per building and type: the index refuses a second one.
ALTER TABLE iot_sensors ADD COLUMN main_meter INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX iot_sensors_one_main_meter ON iot_sensors(building_id, sensor_type) WHERE main_meter;
