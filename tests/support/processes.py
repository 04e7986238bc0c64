"""Platform commands run as the processes production runs: their environment, and waiting for them to answer."""

from __future__ import annotations

import os

import httpx

from tests.conftest import ENCRYPTION_KEY


def production_env(database_url: str, **more: str) -> dict[str, str]:
    """This process's environment without any KOPROGO_ variable, and production mode over `database_url`."""
    return (
        {k: v for k, v in os.environ.items() if not k.startswith("KOPROGO_")}
        | {
            "KOPROGO_MODE": "production",
            "KOPROGO_SECRET_KEY": "s" * 40,
            "KOPROGO_ENCRYPTION_KEY": ENCRYPTION_KEY,
            "KOPROGO_DATABASE_URL": database_url,
        }
        | more
    )


async def answers(client: httpx.AsyncClient, path: str = "/healthz") -> bool:
    """`path` answers 200 (for `eventually`: the process may not listen yet)."""
    try:
        return (await client.get(path)).status_code == 200
    except httpx.TransportError:
        return False
