-- Raw readings expire (domain/retention.py): an organization may keep them for a number of months other than the
-- platform's KOPROGO_RAW_RETENTION_MONTHS (NULL: the platform's).
ALTER TABLE organizations ADD COLUMN raw_retention_months INTEGER CHECK (raw_retention_months >= 1);
-- Per organization, the instant before which its raw readings are gone (written by storage/sql/retention.py
-- before it deletes anything): queries before it answer from rollups, and rebuilding or verifying rollups leaves
-- the rows before it alone (their readings no longer exist).
CREATE TABLE iot_raw_horizons (
    organization_id UUID PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
    kept_from TIMESTAMPTZ NOT NULL
);
