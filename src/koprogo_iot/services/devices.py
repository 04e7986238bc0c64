"""Devices as a syndic sees them: the ones heard that sensors do not (fully) read yet, with their real fields."""

from __future__ import annotations

from uuid import UUID

from koprogo_iot.domain.access import Principal
from koprogo_iot.domain.devices import DeviceFields, claims
from koprogo_iot.services.provisioning import Provisioning
from koprogo_iot.storage.ports import DeviceRepository


class Devices:
    def __init__(self, repository: DeviceRepository, provisioning: Provisioning) -> None:
        self.repository = repository
        self.provisioning = provisioning

    async def unclaimed(self, principal: Principal, building_id: UUID | None = None) -> list[DeviceFields]:
        """Managers only (registering sensors is theirs); another organization's building is not found."""
        principal.require_manager()
        if building_id is not None:
            await self.provisioning.get_building(principal, building_id)
        sightings = await self.repository.sightings(principal.organization_id, building_id)
        sensors = await self.provisioning.sensors.select(principal.organization_id)
        return [found for found in (claims(s, sensors) for s in sightings) if found.unclaimed]
