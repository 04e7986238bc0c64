"""A private PostgreSQL cluster a fault test may crash and restart, apart from the server other tests use."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from koprogo_iot.bench.services import Service


class PostgresServer(Service):
    """A throwaway PostgreSQL cluster (trust auth, no fsync) in its own temporary folder: one a test may crash.

    PostgreSQL refuses to run as root, so as root it runs as the `postgres` system user, in a folder of
    its own under /tmp (pytest's folders are private to root). `remove()` deletes the cluster.
    """

    name = "postgres"

    def __init__(self, port: int | None = None) -> None:
        super().__init__(port)
        self.folder = Path(tempfile.mkdtemp(prefix="koprogo-pg-"))
        self.data = self.folder / "data"
        versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
        if not versions:
            raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql")
        self.bin = versions[-1].parent
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        subprocess.run([*self._as_postgres, *command], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        if not self.data.exists():
            if self._as_postgres:
                shutil.chown(self.folder, "postgres", "postgres")
            self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.folder / "log"), "-w", "start"
        )

    def stop(self, kill: bool = False) -> None:
        """Stop it; `kill` is an immediate shutdown, as after a crash (recovery runs at the next start)."""
        if (self.data / "postmaster.pid").exists():
            mode = "immediate" if kill else "fast"
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
