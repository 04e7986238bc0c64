"""The house rules of ARCHITECTURE.md, checked: package dependencies, and what the command line loads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_the_import_rules_hold() -> None:
    """`lint-imports` checks the contracts in pyproject.toml (layers, adapters only in entry points, a pure domain)."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_command_line_does_not_load_the_benchmarks() -> None:
    """Benchmarks are an optional extra: `koprogo-iot --help` (or any other command) must not import them."""
    probe = (
        "import contextlib, io, sys\n"
        "from koprogo_iot.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help'])\n"
        "print(sorted(m for m in sys.modules if m.startswith('koprogo_iot.bench') or m == 'httpx'))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_bench_help_names_its_own_options() -> None:
    """`koprogo-iot bench ingest --help` reaches the benchmark's own parser (loaded only then)."""
    result = subprocess.run(
        [sys.executable, "-m", "koprogo_iot.cli", "bench", "ingest", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "koprogo-iot bench ingest" in result.stdout and "--rate" in result.stdout
