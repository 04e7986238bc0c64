-- A user's opt-out (domain/tenancy.py, User.muted_channels): the channels, comma-separated and sorted, on which
-- the routes naming their role do not reach them ('' : none muted).
ALTER TABLE users ADD COLUMN muted_channels TEXT NOT NULL DEFAULT '';
