"""Organizations, buildings, units and users: enough to provision a building."""

from uuid import UUID

from fastapi import APIRouter, Response, status

from koprogo_iot.api.deps import PrincipalDep, ServicesDep
from koprogo_iot.api.schemas import (
    ActiveIn,
    BuildingIn,
    BuildingOut,
    ContactsIn,
    OrganizationIn,
    OrganizationOut,
    PasswordResetIn,
    RetentionIn,
    UnitIn,
    UnitOut,
    UnitsIn,
    UnitUpdate,
    UserIn,
    UserOut,
)

router = APIRouter(tags=["tenancy"])


@router.post("/organizations", status_code=status.HTTP_201_CREATED, response_model=OrganizationOut)
async def create_organization(body: OrganizationIn, principal: PrincipalDep, services: ServicesDep) -> object:
    """Superadmin only."""
    return await services.provisioning.create_organization(principal, body.name)


@router.get("/organizations", response_model=list[OrganizationOut])
async def list_organizations(principal: PrincipalDep, services: ServicesDep) -> object:
    """Every organization for a superadmin; the caller's own otherwise."""
    return await services.provisioning.list_organizations(principal)


@router.put("/organizations/{organization_id}/retention", response_model=OrganizationOut)
async def set_retention(
    organization_id: UUID, body: RetentionIn, principal: PrincipalDep, services: ServicesDep
) -> object:
    """How long the organization's raw readings are kept (syndics of it, superadmins); older ones are deleted by
    the daily maintenance and answered from the rollups."""
    return await services.provisioning.set_raw_retention(principal, organization_id, body.raw_retention_months)


@router.post("/buildings", status_code=status.HTTP_201_CREATED, response_model=BuildingOut)
async def create_building(body: BuildingIn, principal: PrincipalDep, services: ServicesDep) -> object:
    return await services.provisioning.create_building(principal, body.name, body.address)


@router.get("/buildings", response_model=list[BuildingOut])
async def list_buildings(principal: PrincipalDep, services: ServicesDep) -> object:
    return await services.provisioning.list_buildings(principal)


@router.get("/buildings/{building_id}", response_model=BuildingOut)
async def get_building(building_id: UUID, principal: PrincipalDep, services: ServicesDep) -> object:
    return await services.provisioning.get_building(principal, building_id)


@router.put("/buildings/{building_id}", response_model=BuildingOut)
async def update_building(
    building_id: UUID, body: BuildingIn, principal: PrincipalDep, services: ServicesDep
) -> object:
    """Rename a building, or change its address; managers only."""
    return await services.provisioning.update_building(principal, building_id, body.name, body.address)


@router.post("/units", status_code=status.HTTP_201_CREATED, response_model=UnitOut)
async def create_unit(body: UnitIn, principal: PrincipalDep, services: ServicesDep) -> object:
    return await services.provisioning.create_unit(principal, body.building_id, body.name, body.floor)


@router.put("/units/{unit_id}", response_model=UnitOut)
async def update_unit(unit_id: UUID, body: UnitUpdate, principal: PrincipalDep, services: ServicesDep) -> object:
    """Rename a unit, or change its floor; managers only. Its building, sensors, owners and history stay."""
    return await services.provisioning.update_unit(principal, unit_id, body.name, body.floor)


@router.get("/units", response_model=list[UnitOut])
async def list_units(principal: PrincipalDep, services: ServicesDep, building_id: UUID | None = None) -> object:
    return await services.provisioning.list_units(principal, building_id)


@router.post("/users", status_code=status.HTTP_201_CREATED)
async def create_user(body: UserIn, principal: PrincipalDep, services: ServicesDep) -> UserOut:
    user = await services.provisioning.create_user(
        principal,
        email=body.email,
        password=body.password,
        full_name=body.full_name,
        role=body.role,
        unit_ids=frozenset(body.unit_ids),
        organization_id=body.organization_id,
        phone=body.phone,
        push_topic=body.push_topic,
    )
    return UserOut.of(user)


@router.get("/users")
async def list_users(principal: PrincipalDep, services: ServicesDep) -> list[UserOut]:
    return [UserOut.of(u) for u in await services.provisioning.list_users(principal)]


@router.put("/users/{user_id}/contacts")
async def set_contacts(user_id: UUID, body: ContactsIn, principal: PrincipalDep, services: ServicesDep) -> UserOut:
    """Where alerts reach the user by SMS and push, and the channels they muted; users set their own, managers
    anyone's in their organization."""
    muted = None if body.muted_channels is None else frozenset(body.muted_channels)
    user = await services.provisioning.set_contacts(principal, user_id, body.phone, body.push_topic, muted)
    return UserOut.of(user)


@router.put("/users/{user_id}/password", status_code=status.HTTP_204_NO_CONTENT)
async def reset_password(
    user_id: UUID, body: PasswordResetIn, principal: PrincipalDep, services: ServicesDep
) -> Response:
    """A manager sets another user's password (forgotten): the user's sessions end. Your own: POST
    /api/v1/auth/password. Only a superadmin resets a superadmin's."""
    await services.provisioning.reset_password(principal, user_id, body.new_password)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/users/{user_id}/active")
async def set_active(user_id: UUID, body: ActiveIn, principal: PrincipalDep, services: ServicesDep) -> UserOut:
    """Deactivate a user (an owner who sold their flat: logins and tokens refused, no alert, history kept) or
    reactivate them. Managers; not themselves; only a superadmin a superadmin."""
    return UserOut.of(await services.provisioning.set_active(principal, user_id, body.active))


@router.put("/users/{user_id}/units")
async def set_units(user_id: UUID, body: UnitsIn, principal: PrincipalDep, services: ServicesDep) -> UserOut:
    """An owner's units, replacing those they had (they bought or sold a flat); managers only."""
    return UserOut.of(await services.provisioning.set_units(principal, user_id, frozenset(body.unit_ids)))
