-- A user removed from the organization by its syndic (an owner who sold their flat): kept, so that what they did
-- (acknowledged alerts, the audit log) still names them, but refused at login and by their tokens, and told of no
-- alert (domain/tenancy.py, User.deactivated_at). NULL: active.
ALTER TABLE users ADD COLUMN deactivated_at TEXT;
