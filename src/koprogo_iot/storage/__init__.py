"""Storage: the `Store` port, its SQLite and PostgreSQL adapters, and their migrations."""
