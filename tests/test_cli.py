"""The command line: migrations, first administrator, clear errors."""

import re
import subprocess
import sys
from pathlib import Path

import pytest


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "koprogo_iot.cli", *args], capture_output=True, text=True, timeout=60, env=env
    )


def test_migrate_then_create_admin_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    first = cli("migrate", "--database-url", url)
    assert first.returncode == 0, first.stderr
    assert re.search(r"applied \d+ migration\(s\)", first.stdout)
    assert "schema is up to date" in cli("migrate", "--database-url", url).stdout
    created = cli(
        "create-admin",
        "--database-url",
        url,
        "--organization",
        "Op",
        "--email",
        "op@example.org",
        "--password",
        "long enough",
    )
    assert created.returncode == 0 and "superadmin op@example.org" in created.stdout

    # The operator's way back in: a new password for the superadmin who forgot theirs; a clear error otherwise.
    reset = cli("set-password", "--database-url", url, "--email", "OP@example.org", "--password", "another one")
    assert reset.returncode == 0 and "new password set for op@example.org (superadmin)" in reset.stdout, reset.stderr
    unknown = cli("set-password", "--database-url", url, "--email", "nobody@example.org", "--password", "long enough")
    assert unknown.returncode == 2 and "no user has the email nobody@example.org" in unknown.stderr
    assert "Traceback" not in unknown.stderr

    import asyncio

    from argon2 import PasswordHasher

    from koprogo_iot.bootstrap import open_storage
    from tests.conftest import ENCRYPTION_KEY

    async def stored_hash() -> str:
        storage = await open_storage(url, ENCRYPTION_KEY)
        try:
            user = await storage.tenancy.find_user_by_email("op@example.org")
            assert user is not None and user.password_changed_at is not None
            return user.password_hash
        finally:
            await storage.close()

    assert PasswordHasher().verify(asyncio.run(stored_hash()), "another one")


@pytest.mark.postgres
def test_migrate_on_postgres(postgres_url: str) -> None:
    result = cli("migrate", "--database-url", postgres_url)
    assert result.returncode == 0 and "schema is up to date" in result.stdout  # the test database is migrated


def test_errors_are_one_clear_line(tmp_path: Path) -> None:
    bad_url = cli("migrate", "--database-url", "mysql://nope")
    assert bad_url.returncode == 2 and "unsupported database URL" in bad_url.stderr
    assert "Traceback" not in bad_url.stderr
    no_broker = cli("ingest", "--data-dir", str(tmp_path))
    assert no_broker.returncode == 2 and "KOPROGO_MQTT_URL" in no_broker.stderr
    weak = cli(
        "create-admin", "--data-dir", str(tmp_path), "--organization", "O", "--email", "a@b.org", "--password", "short"
    )
    assert weak.returncode == 2 and "at least 8 characters" in weak.stderr


def test_production_mode_refuses_to_start_without_secrets(tmp_path: Path) -> None:
    env = {"KOPROGO_MODE": "production", "PATH": "/usr/bin:/bin"}
    result = cli("api", env=env)
    assert result.returncode == 2 and "KOPROGO_SECRET_KEY" in result.stderr


def test_dead_letters_are_listed_by_the_cli(tmp_path: Path) -> None:
    import asyncio

    from koprogo_iot.bootstrap import open_storage
    from koprogo_iot.domain.clock import utcnow
    from koprogo_iot.ingest.pipeline import Message, Pipeline
    from tests.conftest import ENCRYPTION_KEY

    url = f"sqlite:///{tmp_path / 'k.db'}"

    async def reject() -> None:
        storage = await open_storage(url, ENCRYPTION_KEY)
        await Pipeline(storage).handle([Message("koprogo/nope", b"{}", utcnow())])
        await storage.close()

    asyncio.run(reject())
    result = cli("dead-letters", "--database-url", url)
    assert result.returncode == 0, result.stderr
    assert "by reason: invalid_topic 1" in result.stdout and "koprogo/nope" in result.stdout


def test_sensors_of_a_device_family_are_registered_and_listed(tmp_path: Path) -> None:
    import asyncio

    from koprogo_iot.bootstrap import open_storage
    from koprogo_iot.domain.tenancy import Building, Organization
    from tests.conftest import ENCRYPTION_KEY

    url = f"sqlite:///{tmp_path / 'k.db'}"
    org = Organization(name="Syndic & Co")
    building = Building(organization_id=org.id, name="Résidence")

    async def provision() -> None:
        storage = await open_storage(url, ENCRYPTION_KEY)
        await storage.tenancy.add_organization(org)
        await storage.tenancy.add_building(building)
        await storage.close()

    asyncio.run(provision())
    where = ("--database-url", url, "--organization", str(org.id))
    added = cli(
        "sensors",
        "add",
        *where,
        "--building",
        str(building.id),
        "--sensor-id",
        "70B3D57ED005A1B2",
        "--type",
        "cold_water",
        "--unit-of-measure",
        "L",
        "--device-format",
        "ttn",
        "--device-field",
        "index_m3",
    )
    assert added.returncode == 0, added.stderr
    assert f"koprogo/{org.id}/{building.id}/ttn/v3/+/devices/+/up" in added.stdout
    listed = cli("sensors", "list", *where)
    assert "70b3d57ed005a1b2" in listed.stdout and "index_m3" in listed.stdout
    wrong = cli(
        "sensors",
        "add",
        *where,
        "--building",
        str(building.id),
        "--sensor-id",
        "x",
        "--type",
        "cold_water",
        "--unit-of-measure",
        "m³",
        "--device-format",
        "shelly",
        "--device-field",
        "total",
    )
    assert wrong.returncode == 2 and "emdata:0.total_act" in wrong.stderr and "Traceback" not in wrong.stderr
    formats = cli("devices", "formats")
    assert formats.returncode == 0 and "switch:0.aenergy.total" in formats.stdout
    assert "no device heard" in cli("devices", "unclaimed", *where).stdout


def test_a_configuration_error_names_the_problem_never_the_values_given() -> None:
    """pydantic's own message quotes the input, which ended with KOPROGO_SECRET_KEY's last characters."""
    secret, key = "s" * 30 + "SECRET-TAIL-1234", "e" * 30 + "ENCRYPTION-TAIL-5678"
    env = {"PATH": "/usr/bin:/bin", "KOPROGO_MODE": "production", "KOPROGO_SECRET_KEY": secret}
    result = cli("api", env=env | {"KOPROGO_ENCRYPTION_KEY": key})
    assert result.returncode == 2
    assert "production mode needs KOPROGO_DATABASE_URL" in result.stderr
    assert "TAIL" not in result.stderr + result.stdout and "input_value" not in result.stderr
    short = cli("api", env=env | {"KOPROGO_ENCRYPTION_KEY": "short-ENCRYPTION-TAIL"})
    assert "KOPROGO_ENCRYPTION_KEY of at least 32" in short.stderr and "TAIL" not in short.stderr


def test_a_counters_register_size_is_set_and_cleared_by_the_cli(tmp_path: Path) -> None:
    import asyncio

    from koprogo_iot.bootstrap import open_storage
    from koprogo_iot.domain.tenancy import Building, Organization
    from tests.conftest import ENCRYPTION_KEY

    url = f"sqlite:///{tmp_path / 'k.db'}"
    org = Organization(name="Syndic & Co")
    building = Building(organization_id=org.id, name="Résidence")

    async def provision() -> None:
        storage = await open_storage(url, ENCRYPTION_KEY)
        await storage.tenancy.add_organization(org)
        await storage.tenancy.add_building(building)
        await storage.close()

    async def rollovers() -> list[float | None]:
        storage = await open_storage(url, ENCRYPTION_KEY)
        try:
            return [s.rollover for s in await storage.sensors.select(org.id)]
        finally:
            await storage.close()

    asyncio.run(provision())
    where = ("--database-url", url, "--organization", str(org.id))
    meter = ("--building", str(building.id), "--type", "cold_water", "--unit-of-measure", "m³")
    added = cli("sensors", "add", *where, *meter, "--sensor-id", "WM-1", "--rollover", "100000")
    assert added.returncode == 0, added.stderr
    assert asyncio.run(rollovers()) == [100000.0]
    sensor_id = added.stdout.split()[2].rstrip(":")
    cleared = cli("sensors", "set-rollover", sensor_id, "none", *where)
    assert cleared.returncode == 0 and "unknown" in cleared.stdout, cleared.stderr
    assert asyncio.run(rollovers()) == [None]
    assert cli("sensors", "set-rollover", sensor_id, "99999.999", *where).returncode == 0
    assert asyncio.run(rollovers()) == [99999.999]
    refused = cli("sensors", "set-rollover", sensor_id, "0", *where)
    assert refused.returncode == 2 and "rollover must be" in refused.stderr and "Traceback" not in refused.stderr
    assert asyncio.run(rollovers()) == [99999.999]


def test_a_buildings_main_meter_is_set_by_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """In-process (`main`): four commands as subprocesses took 24 s on a loaded machine."""
    import asyncio

    from koprogo_iot.bootstrap import open_storage
    from koprogo_iot.cli import main
    from koprogo_iot.domain.tenancy import Building, Organization
    from tests.conftest import ENCRYPTION_KEY

    url = f"sqlite:///{tmp_path / 'k.db'}"
    org = Organization(name="Syndic & Co")
    building = Building(organization_id=org.id, name="Résidence")

    async def provision() -> None:
        storage = await open_storage(url, ENCRYPTION_KEY)
        await storage.tenancy.add_organization(org)
        await storage.tenancy.add_building(building)
        await storage.close()

    async def mains() -> list[str]:
        storage = await open_storage(url, ENCRYPTION_KEY)
        try:
            return sorted(s.sensor_id for s in await storage.sensors.select(org.id) if s.main_meter)
        finally:
            await storage.close()

    def run(*args: str) -> tuple[int, str, str]:
        code = main([*args, "--database-url", url, "--organization", str(org.id)])
        out, err = capsys.readouterr()
        return code, out, err

    asyncio.run(provision())
    meter = ("--building", str(building.id), "--type", "cold_water", "--unit-of-measure", "m³")
    code, added, err = run("sensors", "add", *meter, "--sensor-id", "MAIN-1", "--main-meter")
    assert code == 0, err
    assert asyncio.run(mains()) == ["MAIN-1"]
    spare_id = run("sensors", "add", *meter, "--sensor-id", "MAIN-2")[1].split()[2].rstrip(":")
    code, _, err = run("sensors", "set-main-meter", spare_id, "yes")
    assert code == 2 and "already the building's main cold_water meter" in err and "Traceback" not in err
    code, out, err = run("sensors", "set-main-meter", added.split()[2].rstrip(":"), "no")
    assert code == 0 and "not a main meter" in out, err
    assert asyncio.run(mains()) == []


def test_verify_rollups_reports_differences_and_repairs_them(tmp_path: Path) -> None:
    import asyncio
    from datetime import UTC, datetime, timedelta

    from koprogo_iot.bootstrap import open_database, open_storage
    from koprogo_iot.domain.readings import IoTReading
    from koprogo_iot.storage.ports import Ingested
    from tests.conftest import ENCRYPTION_KEY, make_tenant

    url = f"sqlite:///{tmp_path / 'k.db'}"
    start = datetime(2026, 3, 10, 8, tzinfo=UTC)

    async def provision() -> str:
        storage = await open_storage(url, ENCRYPTION_KEY)
        t = await make_tenant(storage)
        readings = [IoTReading.measured(t.unit_sensor, start + timedelta(minutes=20 * i), 5.0 + i) for i in range(9)]
        await storage.readings.ingest([Ingested(r) for r in readings])
        await storage.close()
        return str(t.organization.id)

    async def damage() -> None:
        db = await open_database(url)
        await db.execute("UPDATE iot_rollups_hourly SET increase = 7 WHERE count > 1")
        await db.close()

    organization = asyncio.run(provision())
    where = ("--database-url", url, "--organization", organization)
    clean = cli("verify-rollups", *where)
    assert clean.returncode == 0, clean.stderr
    assert "3 sensor(s), 9 readings, 5 rollup rows from the first reading to the last reading: 0 difference(s)" in (
        clean.stdout
    )
    assert "verifying rollups" in clean.stderr and "100%" in clean.stderr
    asyncio.run(damage())
    damaged = cli("verify-rollups", *where, "--start", "2026-03-01T00:00:00+01:00")
    assert damaged.returncode == 1
    assert "hourly " in damaged.stdout and " increase: stored 7.0, expected 2.0" in damaged.stdout
    assert "3 difference(s)" in damaged.stdout  # the three hours; their day and month were right
    repaired = cli("verify-rollups", *where, "--repair")
    assert repaired.returncode == 0 and "0 difference(s) left" in repaired.stdout, repaired.stdout
    naive = cli("verify-rollups", *where, "--start", "2026-03-01")
    assert naive.returncode == 2 and "time zone" in naive.stderr and "Traceback" not in naive.stderr
