"""Log in, refresh the token, and find out who you are."""

from fastapi import APIRouter, Request

from koprogo_iot.api.deps import BearerDep, PrincipalDep, ServicesDep
from koprogo_iot.api.schemas import LoginIn, TokenOut, UserOut
from koprogo_iot.services.accounts import IssuedToken

router = APIRouter(prefix="/auth", tags=["auth"])


def _token(issued: IssuedToken) -> TokenOut:
    return TokenOut(access_token=issued.access_token, expires_in=issued.expires_in, user=UserOut.of(issued.user))


@router.post("/login")
async def login(body: LoginIn, request: Request, services: ServicesDep) -> TokenOut:
    """Exchange email and password for a bearer token. After 5 failures for an account (30 for an address) in 15
    minutes, attempts are refused with 429 and a Retry-After header."""
    client = request.client.host if request.client else None
    return _token(await services.accounts.login(body.email, body.password, client))


@router.post("/refresh")
async def refresh(token: BearerDep, services: ServicesDep) -> TokenOut:
    """A new token for a still valid one, up to 7 days after the login; an expired token answers 401
    `token_expired`: log in again."""
    return _token(await services.accounts.refresh(token))


@router.get("/me")
async def me(principal: PrincipalDep, services: ServicesDep) -> UserOut:
    user = await services.accounts.me(principal)
    return UserOut.of(user)
