"""Every value a route accepts is bounded by `api/inputs.py`: a new route taking a bare `str`, an unbounded `int`,
an infinite float or an unwindowed date fails here, before a fuzzer finds the 500 it would cause."""

from __future__ import annotations

import types
import typing
from datetime import date, datetime
from typing import Any

from annotated_types import Ge, Gt, Le, Lt
from fastapi.routing import APIRoute, APIRouter
from pydantic import AfterValidator, BaseModel, BeforeValidator, EmailStr
from pydantic.fields import FieldInfo
from starlette.routing import BaseRoute

from koprogo_iot.api import inputs
from koprogo_iot.api.app import create_app
from koprogo_iot.bootstrap import build_services, storage_over
from tests.conftest import ENCRYPTION_KEY

_CHECKS = {inputs.check_text, inputs.check_instant, inputs.check_day, inputs._text_before}


def _flat(metadata: list[Any]) -> list[Any]:
    """A FieldInfo inside Annotated (`Field(ge=...)`, `Query(...)`) holds its own constraints."""
    return [item for m in metadata for item in ([m, *m.metadata] if isinstance(m, FieldInfo) else [m])]


def _validators(metadata: list[Any]) -> set[Any]:
    return {m.func for m in _flat(metadata) if isinstance(m, AfterValidator | BeforeValidator)}


def _bounds(metadata: list[Any]) -> tuple[int | None, int | None]:
    lows = [getattr(m, "ge", getattr(m, "gt", None)) for m in _flat(metadata) if isinstance(m, Ge | Gt)]
    highs = [getattr(m, "le", getattr(m, "lt", None)) for m in _flat(metadata) if isinstance(m, Le | Lt)]
    return (max(lows) if lows else None), (min(highs) if highs else None)


def _unbounded(annotation: Any, metadata: list[Any], where: str, seen: set[type]) -> list[str]:
    """The places under `annotation` that take a value `inputs` does not bound."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _unbounded(args[0], [*metadata, *args[1:]], where, seen)
    if origin in (typing.Union, types.UnionType, list, set, frozenset, tuple, dict):
        return [
            p
            for a in args
            for p in _unbounded(a, metadata if origin in (typing.Union, types.UnionType) else [], where, seen)
        ]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in seen:
            return []
        seen.add(annotation)
        return [
            p
            for name, field in annotation.model_fields.items()
            for p in _unbounded(field.annotation, list(field.metadata), f"{where}.{name}", seen)
        ]
    if annotation in (str, EmailStr, datetime, date):
        return [] if _validators(metadata) & _CHECKS else [f"{where}: {annotation.__name__} without inputs' check"]
    if annotation is int:
        low, high = _bounds(metadata)
        inside = low is not None and high is not None and low >= inputs.INT32_MIN and high <= inputs.INT32_MAX
        return [] if inside else [f"{where}: int without 32-bit bounds"]
    if annotation is float:
        finite = any(getattr(m, "allow_inf_nan", None) is False for m in _flat(metadata))
        return [] if finite else [f"{where}: float that may be NaN or infinite"]
    return []


def _api_routes(routes: list[BaseRoute]) -> list[APIRoute]:
    """Every APIRoute, including those of included routers (FastAPI nests them)."""
    found: list[APIRoute] = []
    for route in routes:
        router: APIRouter | None = getattr(route, "original_router", None)
        if router is not None:
            found += _api_routes(router.routes)
        elif isinstance(route, APIRoute):
            found.append(route)
    return found


def test_every_route_input_is_bounded() -> None:
    routes = _api_routes(create_app(build_services_for_schema()).routes)
    assert len(routes) > 50  # every router was walked
    problems = []
    for route in routes:
        dependant = route.dependant
        params = [*dependant.path_params, *dependant.query_params, *dependant.header_params, *dependant.body_params]
        for sub in dependant.dependencies:
            params += [*sub.path_params, *sub.query_params, *sub.header_params, *sub.body_params]
        for param in params:
            info = param.field_info
            where = f"{sorted(route.methods)[0]} {route.path} {param.name}"
            problems += _unbounded(info.annotation, list(info.metadata), where, set())
    assert not problems


def build_services_for_schema() -> Any:
    """Adapters over no database: building the app only needs the services' shape, nothing is called."""
    return build_services(storage_over(None, ENCRYPTION_KEY), secret="s" * 40)  # type: ignore[arg-type]
