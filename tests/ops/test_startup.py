"""Start-up failures as an operator meets them: one line naming the cause and the setting, exit 2, nothing left."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from koprogo_iot.cli import _parser
from koprogo_iot.cli.options import COMMAND_SECTIONS, variables
from tests.conftest import POSTGRES_ADMIN_URL, Mosquitto, free_port

SECRETS = {"KOPROGO_SECRET_KEY": "s" * 40, "KOPROGO_ENCRYPTION_KEY": "e" * 40}


def start(*args: str, env: dict[str, str] | None = None, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """`koprogo-iot ARGS` in a process group of its own; fails if anything of that group outlives it."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KOPROGO_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "koprogo_iot.cli", *args],
        env=clean | (env or {}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        process.kill()
    with pytest.raises(ProcessLookupError):  # no process of its group is left running
        os.killpg(process.pid, 0)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@pytest.fixture
def taken() -> Iterator[int]:
    """A port something else listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def one_line(result: subprocess.CompletedProcess[str], command: str) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"koprogo-iot {command}: error: ")
    return lines[0]


def is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_up_with_its_http_port_taken_starts_nothing(taken: int, tmp_path: Path) -> None:
    mqtt_port = free_port()
    line = one_line(
        start("up", "--http-port", str(taken), "--mqtt-port", str(mqtt_port), "--data-dir", str(tmp_path)), "up"
    )
    assert f"cannot listen on 127.0.0.1:{taken} (address already in use" in line
    assert "KOPROGO_HTTP_PORT (--http-port)" in line
    assert is_free(mqtt_port), "the embedded broker was started"
    assert not (tmp_path / "koprogo.db").exists(), "the database was opened"


def test_up_with_its_broker_port_taken(taken: int, tmp_path: Path) -> None:
    http_port = free_port()
    line = one_line(
        start("up", "--http-port", str(http_port), "--mqtt-port", str(taken), "--data-dir", str(tmp_path)), "up"
    )
    assert f"127.0.0.1:{taken}" in line and "KOPROGO_MQTT_PORT (--mqtt-port)" in line
    assert is_free(http_port)


def test_up_with_an_unreachable_broker(tmp_path: Path) -> None:
    url = f"mqtt://someone:secret@127.0.0.1:{free_port()}"
    line = one_line(start("up", "--mqtt-url", url, "--http-port", str(free_port()), "--data-dir", str(tmp_path)), "up")
    assert "cannot reach the MQTT broker" in line and "KOPROGO_MQTT_URL (--mqtt-url)" in line
    assert "secret" not in line


def test_the_api_with_an_unreachable_database() -> None:
    url = f"postgresql://koprogo:hunter2@127.0.0.1:{free_port()}/koprogo"
    env = SECRETS | {"KOPROGO_MODE": "production", "KOPROGO_DATABASE_URL": url}
    line = one_line(start("api", "--http-port", str(free_port()), env=env), "api")
    assert "cannot open the database postgresql://koprogo:***@127.0.0.1" in line
    assert "KOPROGO_DATABASE_URL (--database-url)" in line and "hunter2" not in line


@pytest.mark.mosquitto
@pytest.mark.postgres
def test_a_worker_whose_broker_login_is_refused(mosquitto: Mosquitto, postgres_url: str) -> None:
    port = mosquitto.server.port
    env = SECRETS | {"KOPROGO_MODE": "production", "KOPROGO_DATABASE_URL": postgres_url}
    result = start("ingest", "--mqtt-url", f"mqtt://koprogo-ingest:wrong@127.0.0.1:{port}", env=env)
    line = one_line(result, "ingest")
    assert "refused the login" in line and "KOPROGO_MQTT_URL (--mqtt-url)" in line


@pytest.mark.mosquitto
@pytest.mark.postgres
def test_a_worker_whose_database_does_not_exist_stops_waiting_would_not_cure_it(mosquitto: Mosquitto) -> None:
    # A database that is down is waited for (tests/faults: a worker started while it refuses connections).
    missing = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/koprogo_missing_database"
    env = SECRETS | {"KOPROGO_MODE": "production", "KOPROGO_DATABASE_URL": missing}
    line = one_line(start("ingest", "--mqtt-url", mosquitto.server.url, env=env), "ingest")
    assert "cannot open the database" in line and "does not exist" in line and "KOPROGO_DATABASE_URL" in line


def test_bad_configuration_is_named_by_its_variable_and_flag(tmp_path: Path) -> None:
    line = one_line(start("up", "--data-dir", str(tmp_path), env={"KOPROGO_HTTP_PORT": "eighty"}), "up")
    assert "KOPROGO_HTTP_PORT (--http-port)" in line and "'eighty'" in line
    line = one_line(start("api", env={"KOPROGO_MODE": "production", "KOPROGO_SECRET_KEY": "short"}), "api")
    assert "KOPROGO_SECRET_KEY" in line and "short" not in line.split("KOPROGO_SECRET_KEY")[1]


def test_a_flag_overrides_its_variable_before_production_checks(tmp_path: Path) -> None:
    env = SECRETS | {"KOPROGO_MODE": "production"}
    url = f"sqlite:///{tmp_path / 'k.db'}"
    result = start("migrate", "--database-url", url, env=env)
    assert result.returncode == 0, result.stderr
    assert "applied" in result.stdout


def test_every_documented_variable_has_a_flag_of_the_same_name() -> None:
    helps = {command: _help(command) for command in COMMAND_SECTIONS}
    for variable in variables():
        assert variable.description, f"{variable.env} has no description for the reference"
        if variable.flag is None:
            assert "SECRET" in variable.env or "KEY" in variable.env  # only secrets stay out of command lines
            continue
        assert variable.flag == "--" + variable.env.removeprefix("KOPROGO_").lower().replace("_", "-")
        for command in variable.commands:
            assert variable.flag in helps[command], f"{variable.flag} missing from {command} --help"
    assert "--mqtt-host" in helps["up"]


def _help(command: str) -> str:
    parser = _parser()
    words = command.split()
    actions = [a for a in parser._actions if a.choices and isinstance(a.choices, dict)]
    sub = actions[0].choices[words[0]]
    if len(words) > 1:
        inner = [a for a in sub._actions if a.choices and isinstance(a.choices, dict)]
        sub = inner[0].choices[words[1]]
    return str(sub.format_help())


def test_sigterm_stops_the_cli_process_group_helper_really_checks() -> None:
    # The helper's "nothing left" check can fail: a child that outlives its parent is found.
    process = subprocess.Popen(["sh", "-c", "sleep 30 & exit 0"], start_new_session=True)
    process.wait(timeout=10)
    os.killpg(process.pid, 0)  # the sleep is still there: this is what `start` would catch
    os.killpg(process.pid, signal.SIGKILL)
