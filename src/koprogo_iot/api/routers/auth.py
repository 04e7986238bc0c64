"""Log in, refresh the token, find out who you are, change your password."""

from fastapi import APIRouter, Request

from koprogo_iot.api.deps import BearerDep, PrincipalDep, ServicesDep
from koprogo_iot.api.schemas import LoginIn, PasswordIn, TokenOut, UserOut
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


@router.post("/password")
async def change_password(body: PasswordIn, principal: PrincipalDep, services: ServicesDep) -> TokenOut:
    """Change your own password, given the current one (422 when it is wrong; 429 after 5 wrong ones, as for logins).
    Your other sessions end (their tokens answer 401 `token_expired`); this one goes on with the token returned."""
    return _token(await services.accounts.change_password(principal, body.current_password, body.new_password))
