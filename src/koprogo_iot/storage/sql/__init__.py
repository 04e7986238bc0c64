"""The SQLite and PostgreSQL adapters of the storage ports, side by side: one module per aggregate, each the only
writer of its tables. Statements are portable SQL with `$1` placeholders run through a small driver interface
(`database.py`, implemented by `sqlite.py` and `postgres.py`); where PostgreSQL has a faster way (COPY, arrays,
row locks) the module holds both variants, chosen by the driver's dialect."""
