"""The container image's Dockerfile, linted (no Docker daemon here: the image itself is not built in the tests)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuation lines joined), split into its stages."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text(encoding="utf-8"))
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    found: list[list[str]] = []
    for line in lines:
        if line.upper().startswith("FROM "):
            found.append([])
        if found:
            found[-1].append(line)
    return found


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_is_multi_stage_and_runs_as_a_user_without_build_tools() -> None:
    web, build, final = stages()
    assert web[0].endswith("AS web") and any("make web" in line for line in web)
    assert build[0].endswith("AS build") and any("pip install" in line for line in build)
    assert [line for line in final if line.startswith("USER")] == ["USER 10001"]
    # No package manager, compiler or Node.js in the final stage: it only copies the virtual environment.
    assert not [line for line in final if re.search(r"apt-get|apk |gcc|make |npm|node", line)]
    assert [line for line in final if line.startswith("COPY")] == ["COPY --from=build /opt/koprogo /opt/koprogo"]
    [health] = [line for line in final if line.startswith("HEALTHCHECK")]
    assert "/healthz" in health
    assert 'ENTRYPOINT ["koprogo-iot"]' in final


def test_the_build_context_leaves_out_environments_and_data() -> None:
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert {".git", ".venv", "data", "web/node_modules", "benchmarks/results"} <= set(ignored)


def test_the_user_matches_the_manifests() -> None:
    manifests = (ROOT / "deploy" / "kubernetes" / "base" / "api.yaml").read_text(encoding="utf-8")
    assert "runAsUser: 10001" in manifests and "--uid 10001" in DOCKERFILE.read_text(encoding="utf-8")
