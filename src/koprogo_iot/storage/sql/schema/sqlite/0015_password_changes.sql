-- When a user last changed their password (domain/tenancy.py, User.password_changed_at): tokens from a login
-- before it are refused, so a change closes the user's other sessions. NULL: never changed.
ALTER TABLE users ADD COLUMN password_changed_at TEXT;
