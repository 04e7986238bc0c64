-- Users manage their own account, managers the people of their organization (domain/tenancy.py, User).
-- The channels on which the routes naming the user's role do not reach them (their opt-out), comma-separated and
-- sorted ('': none muted).
ALTER TABLE users ADD COLUMN muted_channels TEXT NOT NULL DEFAULT '';
-- When the password last changed: tokens from a login before it are refused, so a change ends the user's other
-- sessions. NULL: never changed.
ALTER TABLE users ADD COLUMN password_changed_at TEXT;
-- Removed from the organization by a manager (an owner who sold their flat): kept, so that what they did
-- (acknowledged alerts, the audit log) still names them, but refused at login and by their tokens, and told of no
-- alert. NULL: active.
ALTER TABLE users ADD COLUMN deactivated_at TEXT;
