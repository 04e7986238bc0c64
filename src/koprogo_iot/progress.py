"""A one-line progress bar on stderr, for commands that run long (load generation, benchmarks)."""

from __future__ import annotations

import sys


class Progress:
    """A one-line progress report on stderr, rewritten in place."""

    def __init__(self, total: int, label: str, words: tuple[str, str | None] = ("published", "acknowledged")) -> None:
        self.total = total
        self.label = label
        self.words = words

    def __call__(self, done: int, confirmed: int) -> None:
        share = done / self.total if self.total else 1.0
        bar = "#" * int(share * 30)
        first, second = self.words
        tail = f"  {second} {confirmed:,}" if second else ""
        sys.stderr.write(f"\r{self.label} [{bar:<30}] {share:4.0%}  {first} {done:,}{tail}  ")
        sys.stderr.flush()

    def done(self) -> None:
        sys.stderr.write("\n")
