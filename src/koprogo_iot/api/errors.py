"""The one place where errors become HTTP responses: `{"error": <code>, "message": <text>}`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from koprogo_iot.domain import errors

log = logging.getLogger(__name__)

_STATUS: dict[type[errors.KoproGoError], tuple[int, str]] = {
    errors.InvalidValue: (422, "invalid_value"),
    errors.NotFound: (404, "not_found"),
    errors.Forbidden: (403, "forbidden"),
    errors.Conflict: (409, "conflict"),
    errors.TokenExpired: (401, "token_expired"),  # before its parent: the first match wins
    errors.AccountDeactivated: (401, "account_deactivated"),
    errors.AuthenticationFailed: (401, "unauthenticated"),
    errors.TooManyAttempts: (429, "too_many_attempts"),
    errors.StorageUnavailable: (503, "storage_unavailable"),
    errors.BrokerUnavailable: (503, "broker_unavailable"),
}


class ProblemOut(BaseModel):
    field: str
    problem: str


class ErrorOut(BaseModel):
    """Every error the API answers."""

    error: str = Field(description="a stable code, e.g. validation_error, not_found, token_expired, too_large")
    message: str = Field(description="for people; a validation error's names the fields, never their values")
    details: list[ProblemOut] | None = Field(None, description="validation errors only: one entry per field")


# Documented on every operation, so that clients (and the schema checks of the fuzz tests) know the error body.
RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": description}
    for status, description in (
        (400, "the body cannot be read: not JSON, or not UTF-8 (`invalid_body`)"),
        (401, "no token, an invalid one, or an expired one (`token_expired`)"),
        (403, "the caller's role may not do this"),
        (404, "not found in the caller's organization"),
        (409, "it would duplicate an existing entity"),
        (413, "the request body is too large"),
        (415, "the body's content type is not the one the operation takes"),
        (422, "a value is invalid: the message names the field"),
        (429, "too many attempts: retry after the Retry-After header's seconds"),
    )
}


def _body(code: str, message: str, **extra: object) -> dict[str, object]:
    return {"error": code, "message": message, **extra}


def respond(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """An error in the API's format, for refusals made outside the routes (middleware)."""
    return JSONResponse(_body(code, message), status_code=status, headers=headers)


async def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    status, code = next((v for k, v in _STATUS.items() if isinstance(exc, k)), (500, "internal_error"))
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if isinstance(exc, errors.TooManyAttempts):
        headers = {"Retry-After": str(exc.retry_after)}
    return JSONResponse(_body(code, str(exc)), status_code=status, headers=headers)


def _field(loc: tuple[object, ...]) -> str:
    """`("query", "start")` -> `start`, `("body", "channels", "warning", 0)` -> `channels.warning.0`."""
    inside = loc[1:] if loc and loc[0] in ("body", "query", "path", "header", "cookie") else loc
    return ".".join(str(p) for p in inside) or str(loc[0] if loc else "body")


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # The message names the field and the problem, never the value: it may be a password or a secret URL.
    details = [
        {"field": _field(tuple(e["loc"])), "problem": e["msg"].removeprefix("Value error, ")} for e in exc.errors()
    ]
    message = "; ".join(f"{d['field']}: {d['problem']}" for d in details)
    return JSONResponse(_body("validation_error", message, details=details), status_code=422)


# FastAPI and Starlette answer some requests themselves (a body that is not JSON, an unknown path or method).
_HTTP_CODES = {400: "invalid_body", 404: "not_found", 405: "method_not_allowed"}


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return respond(exc.status_code, _HTTP_CODES.get(exc.status_code, "http_error"), str(exc.detail), exc.headers)


async def _disconnected(_request: Request, _exc: Exception) -> JSONResponse:
    """The client left mid-body (or api/middleware.BodyLimit already answered 413): nobody reads this."""
    return respond(400, "client_disconnected", "the request body did not arrive whole")


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A bug: logged with its traceback; the client gets the error format without the details."""
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return respond(500, "internal_error", "an unexpected error occurred; it was logged")


def install(app: FastAPI) -> None:
    app.add_exception_handler(errors.KoproGoError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ClientDisconnect, _disconnected)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
