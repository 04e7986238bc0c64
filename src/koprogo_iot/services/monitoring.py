"""Reading what the sensors said and what it raised: readings and alerts, as the caller may see them."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from uuid import UUID

from koprogo_iot.domain.access import Principal
from koprogo_iot.domain.alerts import IoTAlert
from koprogo_iot.domain.audit import AuditAction, AuditEntity
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.dead_letters import DeadLetter
from koprogo_iot.domain.errors import InvalidValue, NotFound
from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.domain.tenancy import Role
from koprogo_iot.services.audit import AuditLog
from koprogo_iot.services.provisioning import Provisioning
from koprogo_iot.storage.ports import (
    AlertFilter,
    AlertRepository,
    AlertStatistics,
    DeadLetterRepository,
    ReadingRepository,
)

MAX_READINGS_PAGE = 10_000


class Monitoring:
    def __init__(
        self,
        provisioning: Provisioning,
        readings: ReadingRepository,
        alerts: AlertRepository,
        dead_letters: DeadLetterRepository,
        audit: AuditLog,
    ) -> None:
        self.provisioning = provisioning
        self._readings = readings
        self._alerts = alerts
        self._letters = dead_letters
        self._audit = audit

    async def readings(
        self,
        principal: Principal,
        sensor_id: UUID,
        start: datetime | None,
        end: datetime | None,
        limit: int,
    ) -> list[IoTReading]:
        await self.provisioning.get_sensor(principal, sensor_id)
        if start is not None and end is not None and start >= end:
            raise InvalidValue("start must be before end")
        if not 1 <= limit <= MAX_READINGS_PAGE:
            raise InvalidValue(f"limit must be between 1 and {MAX_READINGS_PAGE}")
        return await self._readings.recent(principal.organization_id, sensor_id, start, end, limit)

    async def _scoped(self, principal: Principal, where: AlertFilter) -> AlertFilter:
        """`where` narrowed to the sensors the caller may read (an owner: their units' and common sensors)."""
        if where.start is not None and where.end is not None and where.start >= where.end:
            raise InvalidValue("start must be before end")
        if principal.role.manages:
            return where
        visible = await self.provisioning.list_sensors(principal)
        return replace(where, sensor_ids=frozenset(s.id for s in visible))

    async def alerts(self, principal: Principal, where: AlertFilter) -> list[IoTAlert]:
        return await self._alerts.select(principal.organization_id, await self._scoped(principal, where))

    async def alert(self, principal: Principal, alert_id: UUID) -> IoTAlert:
        """One alert the caller may see; another organization's, or an owner's neighbour's, looks absent."""
        alert = await self._alerts.get(principal.organization_id, alert_id)
        if not principal.role.manages:
            sensor = await self.provisioning.sensors.get(principal.organization_id, alert.sensor_id)
            if not principal.can_read(sensor):
                raise NotFound(f"alert {alert_id} not found")
        return alert

    async def alert_statistics(self, principal: Principal, where: AlertFilter) -> AlertStatistics:
        return await self._alerts.statistics(principal.organization_id, await self._scoped(principal, where))

    async def dead_letters(self, principal: Principal, reason: str | None, limit: int) -> list[DeadLetter]:
        """A syndic sees their organization's; a superadmin operates the platform and sees everyone's."""
        principal.require_manager()
        scope = None if principal.role is Role.SUPERADMIN else principal.organization_id
        return await self._letters.recent(scope, reason, limit)

    async def dead_letter_counts(self, principal: Principal) -> dict[str, int]:
        principal.require_manager()
        scope = None if principal.role is Role.SUPERADMIN else principal.organization_id
        return await self._letters.counts(scope)

    async def acknowledge(self, principal: Principal, alert_id: UUID, note: str | None) -> IoTAlert:
        """The first acknowledgment is kept, and logged; a later one changes nothing and logs nothing."""
        principal.require_manager()
        now = utcnow()
        alert = await self._alerts.acknowledge(principal.organization_id, alert_id, principal.user_id, note, now)
        if alert.acknowledged_at == now and alert.acknowledged_by == principal.user_id:
            details = {"note": note, "sensor_id": alert.sensor_id, "alert_type": alert.alert_type}
            await self._audit.record(principal, AuditEntity.ALERT, alert_id, AuditAction.ACKNOWLEDGED, details)
        return alert
