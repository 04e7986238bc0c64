-- The earliest reading a stale mark stands for (within its hour), so that a refresh can tell readings that only
-- extend an hour's rollup (all after its last reading: folded in, reading nothing else) from a late one (the hour
-- is recomputed). NULL: recompute the whole hour (marks made before this column, rule changes).
ALTER TABLE iot_rollup_dirty ADD COLUMN since TEXT;
