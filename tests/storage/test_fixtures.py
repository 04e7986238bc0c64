"""The test fixtures themselves, where a server's behaviour could break them (TimescaleDB's scheduler)."""

import asyncio
import threading

import asyncpg
import pytest

from tests.conftest import _clone_database, _database_url, _drop_database

pytestmark = pytest.mark.postgres


def test_a_template_briefly_in_use_is_still_cloned(postgres_template: str) -> None:
    """A session connected to the template (as a preloaded TimescaleDB's scheduler is, now and then) delays the
    clone instead of failing it."""
    connected, release = threading.Event(), threading.Event()

    def hold() -> None:
        async def main() -> None:
            connection = await asyncpg.connect(_database_url(postgres_template))
            connected.set()
            await asyncio.get_running_loop().run_in_executor(None, release.wait, 10)
            await connection.close()

        asyncio.run(main())

    holder = threading.Thread(target=hold)
    holder.start()
    assert connected.wait(10)
    # PostgreSQL itself waits 5 s for other sessions to leave the template, then refuses: keep it busy for longer
    threading.Timer(6.0, release.set).start()
    name = _clone_database(postgres_template)
    holder.join(10)
    try:
        assert release.is_set()  # the clone waited until the template was free
    finally:
        asyncio.run(_drop_database(name))
