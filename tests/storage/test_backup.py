"""`koprogo-iot storage`: a backup taken while the platform writes, restored into an empty database, ingests on
without duplicates; the size report counts what is there. Both stores."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from koprogo_iot.bootstrap import open_database, open_storage
from koprogo_iot.cli import main
from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.domain.sensors import IoTSensor
from koprogo_iot.storage.ports import Ingested
from tests.conftest import ENCRYPTION_KEY, POSTGRES_ADMIN_URL, _database_url, _drop_database, make_tenant

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def readings(sensor: IoTSensor, start: int, count: int) -> list[Ingested]:
    return [
        Ingested(IoTReading.measured(sensor, T0 + timedelta(minutes=m), float(m))) for m in range(start, start + count)
    ]


async def _count(url: str) -> int:
    db = await open_database(url)
    try:
        row = await db.fetchrow("SELECT count(*) AS n FROM iot_readings")
        assert row is not None
        return int(row["n"])
    finally:
        await db.close()


async def _empty_postgres_database() -> str:
    name = f"koprogo_restore_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return name


def test_a_restored_backup_ingests_on_without_duplicates(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def populate() -> IoTSensor:
        storage = await open_storage(database_url, ENCRYPTION_KEY)
        try:
            sensor = (await make_tenant(storage)).unit_sensor
            await storage.readings.ingest(readings(sensor, 0, 500))
            return sensor
        finally:
            await storage.close()

    sensor = asyncio.run(populate())
    flags = ["--database-url", database_url]
    assert main(["storage", "backup", str(tmp_path / "backup"), *flags]) == 0
    assert main(["storage", "backup", str(tmp_path / "backup"), *flags]) == 2  # never overwritten
    postgres = database_url.startswith("postgres")
    target = _database_url(asyncio.run(_empty_postgres_database())) if postgres else f"sqlite:///{tmp_path}/new.db"
    try:
        assert main(["storage", "restore", str(tmp_path / "backup"), "--database-url", target]) == 0
        assert "restored" in capsys.readouterr().out
        assert asyncio.run(_count(target)) == 500
        # the last readings delivered again (their acknowledgement was lost with the old server), and new ones
        assert main(["storage", "restore", str(tmp_path / "backup"), "--database-url", target]) == 2  # not empty

        async def ingest_on() -> int:
            storage = await open_storage(target, ENCRYPTION_KEY)
            try:
                return len(await storage.readings.ingest(readings(sensor, 400, 150)))
            finally:
                await storage.close()

        assert asyncio.run(ingest_on()) == 50
        assert asyncio.run(_count(target)) == 550
        capsys.readouterr()
        if postgres:
            asyncio.run(_analyze(target))  # the report's row counts are PostgreSQL's estimates
        assert main(["storage", "report", "--database-url", target]) == 0
        report = capsys.readouterr().out
        assert "raw readings: 550 rows" in report
        assert "the oldest from 2026-11-01 00:00 UTC" in report
    finally:
        if postgres:
            asyncio.run(_drop_database(target.rsplit("/", 1)[1]))


async def _analyze(url: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
