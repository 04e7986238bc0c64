"""Creating and changing organizations, buildings, units, users and sensors, with tenancy checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any
from uuid import UUID

from koprogo_iot.devices import catalog
from koprogo_iot.domain.access import Principal
from koprogo_iot.domain.audit import AuditAction, AuditEntity, differences
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.errors import Conflict, InvalidValue, NotFound
from koprogo_iot.domain.sensors import DeviceFormat, IoTSensor
from koprogo_iot.domain.tenancy import Building, Channel, Organization, Role, Unit, User
from koprogo_iot.domain.units import conversion_factor
from koprogo_iot.services.accounts import MIN_PASSWORD_LENGTH, change_instant, hash_password
from koprogo_iot.services.audit import AuditLog
from koprogo_iot.storage.ports import SensorFilter, SensorRepository, TenancyRepository

SensorListener = Callable[[IoTSensor], None]


class Provisioning:
    def __init__(self, tenancy: TenancyRepository, sensors: SensorRepository, audit: AuditLog) -> None:
        self.tenancy = tenancy
        self.sensors = sensors
        self.audit = audit
        # Called after a sensor changes; in one process, ingestion forgets its cached copy at once.
        self.sensor_listeners: list[SensorListener] = []

    def _changed(self, sensor: IoTSensor) -> None:
        for listener in self.sensor_listeners:
            listener(sensor)

    # --- organizations (platform operators only)

    async def create_organization(self, principal: Principal, name: str) -> Organization:
        principal.require_superadmin()
        organization = Organization(name=name)
        await self.tenancy.add_organization(organization)
        await self.audit.record(
            principal,
            AuditEntity.ORGANIZATION,
            organization.id,
            AuditAction.CREATED,
            {"name": name},
            organization_id=organization.id,
        )
        return organization

    async def list_organizations(self, principal: Principal) -> list[Organization]:
        if principal.role is Role.SUPERADMIN:
            return await self.tenancy.list_organizations()
        return [await self.tenancy.get_organization(principal.organization_id)]

    async def set_raw_retention(self, principal: Principal, organization_id: UUID, months: int | None) -> Organization:
        """How many months the organization's raw readings are kept (None: the platform's setting): its syndics,
        or a superadmin for any organization. Another organization's id is not found."""
        if organization_id != principal.organization_id and principal.role is not Role.SUPERADMIN:
            raise NotFound(f"organization {organization_id} not found")
        principal.require_manager()
        before = await self.tenancy.get_organization(organization_id)
        after = await self.tenancy.set_raw_retention(organization_id, months)
        await self.audit.record(
            principal,
            AuditEntity.ORGANIZATION,
            organization_id,
            AuditAction.CHANGED,
            differences(before, after),
            organization_id=organization_id,
        )
        return after

    # --- buildings and units

    async def create_building(self, principal: Principal, name: str, address: str = "") -> Building:
        principal.require_manager()
        building = Building(organization_id=principal.organization_id, name=name, address=address)
        await self.tenancy.add_building(building)
        details = {"name": building.name, "address": building.address}
        await self.audit.record(principal, AuditEntity.BUILDING, building.id, AuditAction.CREATED, details)
        return building

    async def update_building(self, principal: Principal, building_id: UUID, name: str, address: str) -> Building:
        """A building's name and address (a typo, a name the residents use)."""
        principal.require_manager()
        before = await self.tenancy.get_building(principal.organization_id, building_id)
        after = replace(before, name=name, address=address)
        await self.tenancy.update_building(after)
        await self.audit.record(
            principal, AuditEntity.BUILDING, building_id, AuditAction.CHANGED, differences(before, after)
        )
        return after

    async def list_buildings(self, principal: Principal) -> list[Building]:
        buildings = await self.tenancy.list_buildings(principal.organization_id)
        if principal.role.manages:
            return buildings
        return [b for b in buildings if b.id in principal.building_ids]

    async def get_building(self, principal: Principal, building_id: UUID) -> Building:
        building = await self.tenancy.get_building(principal.organization_id, building_id)
        if not principal.role.manages and building.id not in principal.building_ids:
            raise NotFound(f"building {building_id} not found")
        return building

    async def create_unit(self, principal: Principal, building_id: UUID, name: str, floor: int | None) -> Unit:
        principal.require_manager()
        await self.tenancy.get_building(principal.organization_id, building_id)
        unit = Unit(organization_id=principal.organization_id, building_id=building_id, name=name, floor=floor)
        await self.tenancy.add_unit(unit)
        details = {"name": unit.name, "building_id": building_id, "floor": floor}
        await self.audit.record(principal, AuditEntity.UNIT, unit.id, AuditAction.CREATED, details)
        return unit

    async def update_unit(self, principal: Principal, unit_id: UUID, name: str, floor: int | None) -> Unit:
        """A unit's name and floor; its building, sensors, owners and history stay."""
        principal.require_manager()
        before = await self.tenancy.get_unit(principal.organization_id, unit_id)
        after = replace(before, name=name, floor=floor)
        await self.tenancy.update_unit(after)
        await self.audit.record(principal, AuditEntity.UNIT, unit_id, AuditAction.CHANGED, differences(before, after))
        return after

    async def list_units(self, principal: Principal, building_id: UUID | None = None) -> list[Unit]:
        units = await self.tenancy.list_units(principal.organization_id, building_id)
        if principal.role.manages:
            return units
        return [u for u in units if u.id in principal.unit_ids]

    # --- users

    async def create_user(
        self,
        principal: Principal,
        email: str,
        password: str,
        full_name: str,
        role: Role,
        unit_ids: frozenset[UUID] = frozenset(),
        organization_id: UUID | None = None,
        phone: str | None = None,
        push_topic: str | None = None,
    ) -> User:
        """Syndics add users to their organization; a superadmin may add them to any organization."""
        principal.require_manager()
        target = organization_id or principal.organization_id
        if target != principal.organization_id or role is Role.SUPERADMIN:
            principal.require_superadmin()
        await self.tenancy.get_organization(target)
        if len(password) < MIN_PASSWORD_LENGTH:
            raise InvalidValue(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
        for unit_id in unit_ids:
            await self.tenancy.get_unit(target, unit_id)
        user = User(
            organization_id=target,
            email=email,
            full_name=full_name,
            role=role,
            password_hash=hash_password(password),
            unit_ids=unit_ids,
            phone=phone,
            push_topic=push_topic,
        )
        if await self.tenancy.find_user_by_email(user.email) is not None:
            raise Conflict(f"a user with email {user.email} already exists")
        await self.tenancy.add_user(user)
        details = {"email": user.email, "role": user.role, "unit_ids": user.unit_ids}
        await self.audit.record(
            principal, AuditEntity.USER, user.id, AuditAction.CREATED, details, organization_id=target
        )
        return user

    async def list_users(self, principal: Principal) -> list[User]:
        principal.require_manager()
        return await self.tenancy.list_users(principal.organization_id)

    async def set_contacts(
        self,
        principal: Principal,
        user_id: UUID,
        phone: str | None,
        push_topic: str | None,
        muted: frozenset[Channel] | None = None,
    ) -> User:
        """Where alerts reach a user by SMS and push, and the channels they muted (None: unchanged): users set
        their own, managers anyone's in their organization."""
        if user_id != principal.user_id:
            principal.require_manager()
        before = await self.tenancy.get_user(principal.organization_id, user_id)
        after = await self.tenancy.set_contacts(principal.organization_id, user_id, phone, push_topic, muted)
        await self.audit.record(principal, AuditEntity.USER, user_id, AuditAction.CHANGED, differences(before, after))
        return after

    async def set_active(self, principal: Principal, user_id: UUID, active: bool) -> User:
        """Deactivate a user (an owner who sold their flat: their logins and tokens are refused, no alert reaches
        them, their history stays) or reactivate them. Not oneself; only a superadmin a superadmin."""
        user = await self._managed_user(principal, user_id, "deactivate or reactivate yourself")
        if user.active == active:
            return user
        user = await self.tenancy.set_deactivated(user.organization_id, user.id, None if active else utcnow())
        details = {"active": active}
        await self.audit.record(principal, AuditEntity.USER, user.id, AuditAction.CHANGED, details)
        return user

    async def set_units(self, principal: Principal, user_id: UUID, unit_ids: frozenset[UUID]) -> User:
        """An owner's units, when they buy or sell a flat (at least one: an owner without any is deactivated)."""
        principal.require_manager()
        before = await self.tenancy.get_user(principal.organization_id, user_id)
        if before.role is not Role.OWNER:
            raise InvalidValue("only owners are linked to units")
        if not unit_ids:
            raise InvalidValue("an owner must be linked to at least one unit (deactivate one who left)")
        for unit_id in unit_ids:
            await self.tenancy.get_unit(principal.organization_id, unit_id)
        after = await self.tenancy.set_units(principal.organization_id, user_id, unit_ids)
        await self.audit.record(principal, AuditEntity.USER, user_id, AuditAction.CHANGED, differences(before, after))
        return after

    async def _managed_user(self, principal: Principal, user_id: UUID, not_yourself: str) -> User:
        """Another user of the caller's organization that the caller may manage."""
        principal.require_manager()
        user = await self.tenancy.get_user(principal.organization_id, user_id)
        if user.id == principal.user_id:
            raise InvalidValue(f"you cannot {not_yourself}")
        if user.role is Role.SUPERADMIN:
            principal.require_superadmin()
        return user

    async def reset_password(self, principal: Principal, user_id: UUID, password: str) -> User:
        """A manager sets another user's password (they forgot theirs): the user's sessions end. One's own is
        changed with the current one (`Accounts.change_password`); only a superadmin resets a superadmin's."""
        user = await self._managed_user(
            principal, user_id, "reset your own password: change it with your current one (POST /api/v1/auth/password)"
        )
        if len(password) < MIN_PASSWORD_LENGTH:
            raise InvalidValue(f"new_password: at least {MIN_PASSWORD_LENGTH} characters")
        changed_at = change_instant(utcnow())
        user = await self.tenancy.set_password(user.organization_id, user.id, hash_password(password), changed_at)
        await self.audit.record(principal, AuditEntity.USER, user.id, AuditAction.CHANGED, {"password": "reset"})
        return user

    # --- sensors

    async def _check_placement(self, principal: Principal, building_id: UUID, unit_id: UUID | None) -> None:
        await self.tenancy.get_building(principal.organization_id, building_id)
        if unit_id is not None:
            unit = await self.tenancy.get_unit(principal.organization_id, unit_id)
            if unit.building_id != building_id:
                raise InvalidValue(f"unit {unit_id} is not in building {building_id}")

    async def _check_main_meter(self, sensor: IoTSensor) -> None:
        """One main meter per building and sensor type (the database refuses a second one too, less clearly)."""
        if not sensor.main_meter:
            return
        for other in await self.sensors.select(sensor.organization_id, SensorFilter(sensor.building_id)):
            if other.main_meter and other.sensor_type is sensor.sensor_type and other.id != sensor.id:
                raise Conflict(
                    f"main_meter: sensor {other.sensor_id!r} is already the building's main "
                    f"{sensor.sensor_type.value} meter"
                )

    @staticmethod
    def _check_device(sensor: IoTSensor) -> None:
        """A device-format sensor reads a field that format has, in a unit its own converts from."""
        if sensor.device_format is DeviceFormat.NATIVE:
            return
        field = catalog.describe(sensor.device_format, sensor.device_field)
        if conversion_factor(field.unit, sensor.unit_of_measure) is None:
            raise InvalidValue(
                f"unit_of_measure: {field.field} is in {field.unit}, which does not convert to "
                f"{sensor.unit_of_measure!r}"
            )

    async def create_sensor(self, principal: Principal, fields: dict[str, Any]) -> IoTSensor:
        principal.require_manager()
        sensor = IoTSensor(organization_id=principal.organization_id, **fields)
        self._check_device(sensor)
        await self._check_placement(principal, sensor.building_id, sensor.unit_id)
        await self._check_main_meter(sensor)
        if await self.sensors.find(principal.organization_id, sensor.sensor_id, sensor.device_field) is not None:
            raise Conflict(f"sensor id {sensor.sensor_id!r} is already registered in this organization")
        await self.sensors.add(sensor)
        self._changed(sensor)  # a device heard just before may be cached as unknown: forget it
        details = {"sensor_id": sensor.sensor_id, "building_id": sensor.building_id, "unit_id": sensor.unit_id}
        await self.audit.record(principal, AuditEntity.SENSOR, sensor.id, AuditAction.CREATED, details)
        return sensor

    async def get_sensor(self, principal: Principal, sensor_id: UUID) -> IoTSensor:
        """A sensor the caller may read; any other looks absent (404), never forbidden."""
        sensor = await self.sensors.get(principal.organization_id, sensor_id)
        if not principal.can_read(sensor):
            raise NotFound(f"sensor {sensor_id} not found")
        return sensor

    async def list_sensors(
        self, principal: Principal, building_id: UUID | None = None, unit_id: UUID | None = None
    ) -> list[IoTSensor]:
        scope = (
            SensorFilter(building_id, unit_id)
            if principal.role.manages
            else SensorFilter(building_id, unit_id, principal.unit_ids, principal.building_ids)
        )
        return await self.sensors.select(principal.organization_id, scope)

    async def update_sensor(self, principal: Principal, sensor_id: UUID, changes: dict[str, Any]) -> IoTSensor:
        principal.require_manager()
        before = await self.get_sensor(principal, sensor_id)
        sensor = before.changed(**changes)
        self._check_device(sensor)
        await self._check_placement(principal, sensor.building_id, sensor.unit_id)
        await self._check_main_meter(sensor)
        other = await self.sensors.find(principal.organization_id, sensor.sensor_id, sensor.device_field)
        if other is not None and other.id != sensor.id:
            raise Conflict(f"sensor id {sensor.sensor_id!r} is already registered in this organization")
        await self.sensors.update(sensor)
        self._changed(before)  # its device id may have changed: both keys must be forgotten
        self._changed(sensor)
        # Thresholds and the calibration factor are among the fields: their changes show here.
        details = differences(before, sensor, ignore=frozenset({"updated_at"}))
        await self.audit.record(principal, AuditEntity.SENSOR, sensor.id, AuditAction.CHANGED, details)
        return sensor

    async def calibrate_sensor(self, principal: Principal, sensor_id: UUID, factor: float) -> IoTSensor:
        return await self.update_sensor(principal, sensor_id, {"calibration_factor": factor})

    async def delete_sensor(self, principal: Principal, sensor_id: UUID) -> None:
        principal.require_manager()
        sensor = await self.get_sensor(principal, sensor_id)
        await self.sensors.delete(principal.organization_id, sensor_id)
        self._changed(sensor)
        details = {"sensor_id": sensor.sensor_id, "building_id": sensor.building_id}
        await self.audit.record(principal, AuditEntity.SENSOR, sensor_id, AuditAction.DELETED, details)
