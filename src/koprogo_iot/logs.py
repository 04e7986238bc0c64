"""Log lines: plain text for a person at a terminal, or one JSON object per line for a log collector.

A line about one organization or sensor carries their ids as fields (`extra=about(...)`), in both formats, so an
operator can find every line of a tenant or a meter: `{"organization_id": "…", "sensor_id": "…", ...}` in JSON,
`[organization_id=… sensor_id=…]` at the end of a text line. Production processes log JSON unless told otherwise;
embedded mode (`up`) logs text unless `KOPROGO_LOG_FORMAT=json`.
"""

from __future__ import annotations

import logging
import sys
from enum import StrEnum
from uuid import UUID

from pythonjsonlogger.json import JsonFormatter

# The fields a line may carry about what it concerns, in the order text lines show them.
CONTEXT = ("organization_id", "building_id", "sensor_id", "topic")


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


def about(
    organization_id: UUID | str | None = None,
    sensor_id: UUID | str | None = None,
    building_id: UUID | str | None = None,
    topic: str | None = None,
) -> dict[str, str]:
    """What a line concerns, as `extra` for a logging call (ids as strings; the unknown ones left out)."""
    fields = {"organization_id": organization_id, "building_id": building_id, "sensor_id": sensor_id, "topic": topic}
    return {name: str(value) for name, value in fields.items() if value is not None}


class TextFormatter(logging.Formatter):
    """`time level logger: message [organization_id=… sensor_id=…]`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = " ".join(f"{name}={getattr(record, name)}" for name in CONTEXT if hasattr(record, name))
        if not context:
            return line
        first, newline, rest = line.partition("\n")  # a traceback stays below its line
        return f"{first} [{context}]{newline}{rest}"


def json_formatter() -> logging.Formatter:
    """`{"time": ..., "level": ..., "logger": ..., "message": ..., <context fields>, "exc_info": ...}`."""
    return JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        datefmt="%Y-%m-%dT%H:%M:%S%z",
    )


def configure(log_format: LogFormat, level: int | str = logging.INFO, force: bool = False) -> None:
    """Send every log line to stderr in `log_format`. Like `logging.basicConfig`, a process whose logging is set
    up already (a test runner calling `main`) keeps its handlers unless `force`."""
    root = logging.getLogger()
    root.setLevel(level)
    if root.handlers and not force:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(json_formatter() if log_format is LogFormat.JSON else TextFormatter())
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    # uvicorn's own lines (startup errors, shutdown) go through the same handler, its access log not at all.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # amqtt logs each client's connection at INFO and tracebacks of its own start-up failures, which we report.
    logging.getLogger("amqtt").setLevel(logging.WARNING)
