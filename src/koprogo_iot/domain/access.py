"""Who may see and change what, inside one organization."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from koprogo_iot.domain.errors import Forbidden
from koprogo_iot.domain.sensors import IoTSensor
from koprogo_iot.domain.tenancy import Role, User


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: every query it makes is scoped to `organization_id`."""

    user_id: UUID
    organization_id: UUID
    role: Role
    unit_ids: frozenset[UUID]
    # Buildings holding the owner's units: an owner also sees these buildings' common meters.
    building_ids: frozenset[UUID]

    @classmethod
    def of(cls, user: User, unit_buildings: Iterable[UUID] = ()) -> Principal:
        return cls(user.id, user.organization_id, user.role, user.unit_ids, frozenset(unit_buildings))

    def require_manager(self) -> None:
        if not self.role.manages:
            raise Forbidden(f"the {self.role.value} role may only read")

    def require_superadmin(self) -> None:
        if self.role is not Role.SUPERADMIN:
            raise Forbidden("only a superadmin may do this")

    def can_read(self, sensor: IoTSensor) -> bool:
        """Managers read every sensor of their organization; an owner reads their units and common meters."""
        if sensor.organization_id != self.organization_id:
            return False
        if self.role.manages:
            return True
        if sensor.unit_id is None:
            return sensor.building_id in self.building_ids
        return sensor.unit_id in self.unit_ids
