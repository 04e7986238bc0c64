"""Use cases: what the API and the CLI ask for, with tenancy and permissions enforced here."""
