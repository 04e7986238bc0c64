"""The HTTP API (FastAPI): `/api/v1`, bearer tokens, OpenAPI at `/docs`."""
