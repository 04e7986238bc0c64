"""FastAPI dependencies: the wired services and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from koprogo_iot.domain.access import Principal
from koprogo_iot.domain.errors import AuthenticationFailed
from koprogo_iot.services.container import Services

_bearer = HTTPBearer(auto_error=False)


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def bearer(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    if credentials is None:
        raise AuthenticationFailed("missing bearer token: POST /api/v1/auth/login first")
    return credentials.credentials


async def principal(request: Request, token: Annotated[str, Depends(bearer)]) -> Principal:
    return await services(request).accounts.principal(token)


ServicesDep = Annotated[Services, Depends(services)]
BearerDep = Annotated[str, Depends(bearer)]
PrincipalDep = Annotated[Principal, Depends(principal)]
