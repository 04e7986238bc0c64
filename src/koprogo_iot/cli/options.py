"""Configuration flags made from the settings classes: one flag per `KOPROGO_*` variable, of the same name.

`KOPROGO_MQTT_CLIENT_ID` is `--mqtt-client-id`, `KOPROGO_DATA_DIR` is `--data-dir`. Each command takes the flags of
the settings sections it uses (`COMMAND_SECTIONS`); a flag given overrides the variable. The configuration
reference in the operator guide is generated from the same list (`variables`), so neither can drift.
"""

from __future__ import annotations

import argparse
import enum
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo

from koprogo_iot.config import (
    BacnetSettings,
    HttpSettings,
    IngestSettings,
    JobsSettings,
    MqttSettings,
    NotifySettings,
    Settings,
)
from koprogo_iot.startup import redacted

TOP = ""  # the section of Settings' own fields
SECTIONS: dict[str, type[BaseModel]] = {
    TOP: Settings,
    "mqtt": MqttSettings,
    "http": HttpSettings,
    "ingest": IngestSettings,
    "notify": NotifySettings,
    "jobs": JobsSettings,
    "bacnet": BacnetSettings,
}
# Secrets come from the environment only: a command line is visible to every user of the machine (`ps`).
SECRETS = {(TOP, "secret_key"), (TOP, "encryption_key")}
# Flags some commands had before they were all made from the settings: kept, they still work.
ALIASES = {
    ("mqtt", "client_id"): ["--client-id"],
    ("bacnet", "device_instance"): ["--device-instance"],
    ("bacnet", "timeout"): ["--timeout"],
    ("bacnet", "refresh_interval"): ["--refresh-interval"],
    ("bacnet", "metrics_port"): ["--metrics-port"],
}
# The settings sections each command reads; commands not listed read the top-level ones (database, data dir).
COMMAND_SECTIONS: dict[str, tuple[str, ...]] = {
    "up": (TOP, "mqtt", "http", "ingest", "notify"),
    "api": (TOP, "mqtt", "http", "notify", "jobs"),
    "jobs": (TOP, "mqtt", "http", "notify", "jobs"),
    "ingest": (TOP, "mqtt", "http", "ingest"),
    "bacnet": (TOP, "mqtt", "http", "bacnet"),
    "loadgen": (TOP, "mqtt", "ingest"),
    "broker config": (TOP, "mqtt"),
}


@dataclass(frozen=True, slots=True)
class Variable:
    """One setting: its environment variable, its flag (None: environment only) and what it means."""

    section: str
    name: str
    env: str
    flag: str | None
    kind: str  # what the value is, in words: integer, number, text, path, true/false, one of ...
    default: str  # as an operator would write it; "" when unset
    description: str

    @property
    def commands(self) -> list[str]:
        """The commands taking its flag."""
        return [command for command, sections in COMMAND_SECTIONS.items() if self.section in sections]


def variables() -> list[Variable]:
    """Every setting of every section, in declaration order."""
    found = []
    for section, model in SECTIONS.items():
        prefix = "KOPROGO_" + (f"{section.upper()}_" if section else "")
        for name, info in model.model_fields.items():
            if section == TOP and name in SECTIONS:
                continue  # a nested section, listed on its own
            secret = (section, name) in SECRETS
            flag = None if secret else "--" + (f"{section}-" if section else "") + name.replace("_", "-")
            found.append(
                Variable(
                    section,
                    name,
                    prefix + name.upper(),
                    flag,
                    _kind(info.annotation),
                    _default(info),
                    info.description or "",
                )
            )
    return found


def _kind(annotation: Any) -> str:
    if get_origin(annotation) in (Union, types.UnionType):
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "one of " + ", ".join(str(m.value) for m in annotation)
    names = {bool: "true/false", int: "integer", float: "number", str: "text", SecretStr: "text", Path: "path"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)).lower())


def _default(info: FieldInfo) -> str:
    value = info.get_default(call_default_factory=False)
    if value is None:
        return ""
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def dest(variable: Variable) -> str:
    """The argparse destination: the field name for top-level settings (`data_dir`), else `<section>_<field>`."""
    return f"{variable.section}_{variable.name}" if variable.section else variable.name


def add_flags(parser: argparse.ArgumentParser, command: str) -> None:
    """The configuration flags of `command`, in their own group of its `--help`."""
    sections = COMMAND_SECTIONS.get(command, (TOP,))
    group = parser.add_argument_group("configuration (each flag overrides the KOPROGO_* variable of the same name)")
    for variable in variables():
        if variable.section not in sections or variable.flag is None:
            continue
        default = f"default {variable.default}" if variable.default else "default unset"
        meaning = f"{variable.description}; " if variable.description else ""
        group.add_argument(
            variable.flag,
            *ALIASES.get((variable.section, variable.name), []),
            dest=dest(variable),
            metavar=variable.name.upper(),
            help=f"{meaning}{variable.env}, {default}".replace("%", "%%"),  # argparse formats help with %
        )


def settings_from(args: argparse.Namespace, **imposed: Any) -> Settings:
    """The environment's settings with the flags given on the command line over them, and `imposed` over both
    (`up` is embedded mode whatever KOPROGO_MODE says).

    The flags go into the constructors, before validation: production mode's checks see `--database-url`.
    """
    given: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
    for variable in variables():
        value = getattr(args, dest(variable), None)
        if value is not None:
            given[variable.section][variable.name] = value
    top = given.pop(TOP) | imposed
    sections: dict[str, Any] = {section: SECTIONS[section](**values) for section, values in given.items() if values}
    return Settings(**top, **sections)


def explain(exc: ValidationError, section: str = TOP) -> str:
    """A validation error in one line: each wrong setting by its variable (and flag), with what is wrong."""
    by_field = {(v.section, v.name): v for v in variables()}
    problems = []
    for error in exc.errors(include_url=False):
        location = [str(part) for part in error["loc"]]
        where = section
        if where == TOP and location and location[0] in SECTIONS and location[0] != TOP:
            where, location = location[0], location[1:]
        message = str(error["msg"]).removeprefix("Value error, ")
        variable = by_field.get((where, location[0])) if location else None
        if variable is None:
            problems.append(message)
            continue
        named = variable.env + (f" ({variable.flag})" if variable.flag else "")
        shown = error.get("input") if variable.flag else None  # never a secret's value
        got = f", got {redacted(shown) if isinstance(shown, str) else shown!r}" if shown is not None else ""
        problems.append(f"{named}: {message}{got}")
    return "; ".join(problems) or str(exc)


def configuration_error(exc: ValidationError) -> str:
    """`explain` for an error raised by any settings class (its title names the class)."""
    section = next((name for name, model in SECTIONS.items() if model.__name__ == exc.title), TOP)
    return explain(exc, section)
