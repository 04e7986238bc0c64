"""Row mapping: each table's columns derived once from its entity's dataclass, encoded and decoded in one place.

SQLite returns ids and times as text and booleans as integers; PostgreSQL returns typed values. A `Table` reads
its entity's fields and type hints once and converts both ways, so a new field is a new column everywhere it is
inserted, selected and decoded: adding one takes the dataclass field and the migration, nothing here.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from operator import attrgetter
from typing import Any, Generic, TypeVar
from uuid import UUID

from koprogo_iot.domain.errors import NotFound
from koprogo_iot.storage.sql.database import Row

T = TypeVar("T")
Convert = Callable[[Any], Any]


def as_uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else _parsed_uuid(value)


@functools.lru_cache(maxsize=4096)
def _parsed_uuid(text: str) -> UUID:
    """SQLite returns ids as text: a series' rows repeat its sensor's id, parsed once here (UUIDs are immutable)."""
    return UUID(text)


def as_time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


@functools.lru_cache(maxsize=1024)
def placeholders(count: int, start: int = 1) -> str:
    """`$start, ..., $(start + count - 1)`: our statements use PostgreSQL-style placeholders on both drivers."""
    return ", ".join(f"${i}" for i in range(start, start + count))


@functools.lru_cache(maxsize=256)
def row_placeholders(rows: int, width: int) -> str:
    """`($1, ..., $width), ($width+1, ...), ...`: `rows` tuples of `width` placeholders, for multi-row VALUES."""
    return ", ".join(f"({placeholders(width, 1 + i * width)})" for i in range(rows))


@dataclass(frozen=True, slots=True)
class Codec:
    """How a field is stored when it is not stored as itself: another column name, and the two conversions."""

    column: str | None = None
    encode: Convert | None = None
    decode: Convert | None = None


def _optional(convert: Convert) -> Convert:
    return lambda value: None if value is None else convert(value)


def _decoder(hint: Any) -> Convert | None:
    """The conversion from a driver's value to a field of type `hint`; None when the value needs none."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        convert = _decoder(inner[0]) if len(inner) == 1 else None
        return None if convert is None else _optional(convert)
    if hint is UUID:
        return as_uuid
    if hint is datetime:
        return as_time
    if hint is bool:
        return bool
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint
    return None


class Table(Generic[T]):
    """The table `name` storing `entity`: one column per dataclass field, except `exclude` (stored elsewhere)."""

    def __init__(
        self, name: str, entity: type[T], *, codecs: Mapping[str, Codec] | None = None, exclude: Iterable[str] = ()
    ) -> None:
        codecs = codecs or {}
        hints = typing.get_type_hints(entity)
        skipped = set(exclude)
        self.name = name
        self.entity = entity
        self.fields = tuple(f.name for f in dataclasses.fields(entity) if f.name not in skipped)  # type: ignore[arg-type]
        self.columns = tuple(codecs.get(f, Codec()).column or f for f in self.fields)
        self._decoders = [
            (f, column, codecs.get(f, Codec()).decode or _decoder(hints[f]))
            for f, column in zip(self.fields, self.columns, strict=True)
        ]
        self._encoders: list[tuple[int, Convert]] = [
            (i, encode) for i, f in enumerate(self.fields) if (encode := codecs.get(f, Codec()).encode) is not None
        ]
        self._get = attrgetter(*self.fields)

    def column_list(self, alias: str = "") -> str:
        prefix = f"{alias}." if alias else ""
        return ", ".join(prefix + c for c in self.columns)

    def insert(self, suffix: str = "") -> str:
        """One row's INSERT, its values given by `values`."""
        return f"INSERT INTO {self.name} ({self.column_list()}) VALUES ({placeholders(len(self.columns))}) {suffix}"

    def select(self, where: str = "", alias: str = "") -> str:
        table = f"{self.name} {alias}" if alias else self.name
        return f"SELECT {self.column_list(alias)} FROM {table}" + (f" WHERE {where}" if where else "")

    def assignments(self, fields: Iterable[str], start: int) -> tuple[str, list[int]]:
        """`col = $start, ...` for `fields`, and the positions of their values in `values`."""
        positions = [self.fields.index(f) for f in fields]
        text = ", ".join(f"{self.columns[p]} = ${start + n}" for n, p in enumerate(positions))
        return text, positions

    def values(self, item: T) -> tuple[object, ...]:
        found = self._get(item)
        values: tuple[object, ...] = found if len(self.fields) > 1 else (found,)
        if not self._encoders:
            return values
        encoded = list(values)
        for position, encode in self._encoders:
            encoded[position] = encode(encoded[position])
        return tuple(encoded)

    def decode(self, row: Row, **extra: object) -> T:
        """The entity of `row`; `extra` gives the fields not stored in this table."""
        kwargs: dict[str, object] = dict(extra)
        for field, column, convert in self._decoders:
            value = row[column]
            kwargs[field] = value if convert is None else convert(value)
        return self.entity(**kwargs)


def not_found(what: str, key: object) -> NotFound:
    """The error naming what was looked for (another organization's ids look absent too)."""
    return NotFound(f"{what} {key} not found")


def found(row: Row | None, what: str, key: object) -> Row:
    """`row`, or `not_found` when there is none."""
    if row is None:
        raise not_found(what, key)
    return row
