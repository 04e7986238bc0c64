"""The one place where errors become HTTP responses: `{"error": <code>, "message": <text>}`."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from koprogo_iot.domain import errors

_STATUS: dict[type[errors.KoproGoError], tuple[int, str]] = {
    errors.InvalidValue: (422, "invalid_value"),
    errors.NotFound: (404, "not_found"),
    errors.Forbidden: (403, "forbidden"),
    errors.Conflict: (409, "conflict"),
    errors.AuthenticationFailed: (401, "unauthenticated"),
    errors.StorageUnavailable: (503, "storage_unavailable"),
    errors.BrokerUnavailable: (503, "broker_unavailable"),
}


def _body(code: str, message: str, **extra: object) -> dict[str, object]:
    return {"error": code, "message": message, **extra}


async def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    status, code = next((v for k, v in _STATUS.items() if isinstance(exc, k)), (500, "internal_error"))
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(_body(code, str(exc)), status_code=status, headers=headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}" for e in exc.errors()]
    details = [{"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]} for e in exc.errors()]
    return JSONResponse(_body("validation_error", "; ".join(problems), details=details), status_code=422)


def install(app: FastAPI) -> None:
    app.add_exception_handler(errors.KoproGoError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
