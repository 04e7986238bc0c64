"""Log in and find out who you are."""

from fastapi import APIRouter

from koprogo_iot.api.deps import PrincipalDep, ServicesDep
from koprogo_iot.api.schemas import LoginIn, TokenOut, UserOut

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/login")
async def login(body: LoginIn, services: ServicesDep) -> TokenOut:
    """Exchange email and password for a bearer token."""
    issued = await services.accounts.login(body.email, body.password)
    return TokenOut(access_token=issued.access_token, expires_in=issued.expires_in, user=UserOut.of(issued.user))


@router.get("/me")
async def me(principal: PrincipalDep, services: ServicesDep) -> UserOut:
    user = await services.accounts.me(principal)
    return UserOut.of(user)
