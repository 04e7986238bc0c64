"""Alert rules: an organization's defaults per sensor type, and per-sensor overrides.

Bodies are partial rules documents (only the fields to change, e.g. `{"threshold": {"maximum": 50}}`); what a sensor
gets is built-in defaults < the type's defaults < its override < its own alert_threshold_min/max.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Body, Response, status
from pydantic import BaseModel, Field

from koprogo_iot.api.deps import PrincipalDep, ServicesDep
from koprogo_iot.api.inputs import Text
from koprogo_iot.domain.sensors import SensorType
from koprogo_iot.services.alert_rules import SensorRules, TypeRules

router = APIRouter(tags=["alert rules"])

RulesBody = Body(
    description="partial alert rules: only the fields to change",
    examples=[{"threshold": {"maximum": 50, "clear_maximum": 45, "duration_s": 600}, "leak": {"enabled": False}}],
)


class TypeRulesOut(BaseModel):
    sensor_type: SensorType
    builtin: dict[str, Any] = Field(description="the platform's rules for the type")
    defaults: dict[str, Any] | None = Field(description="the organization's partial rules; null: built-in ones")
    effective: dict[str, Any] = Field(description="built-in rules with the organization's on top")

    @classmethod
    def of(cls, rules: TypeRules) -> TypeRulesOut:
        return cls(
            sensor_type=rules.sensor_type,
            builtin=rules.builtin.as_dict(),
            defaults=rules.defaults,
            effective=rules.effective.as_dict(),
        )


class OverrideOut(BaseModel):
    sensor_id: UUID
    override: dict[str, Any] | None = Field(description="the sensor's partial rules; null: none")


class EffectiveRulesOut(BaseModel):
    sensor_id: UUID
    sensor_type: SensorType
    alert_threshold_min: float | None
    alert_threshold_max: float | None
    builtin: dict[str, Any]
    type_defaults: dict[str, Any] | None
    override: dict[str, Any] | None
    effective: dict[str, Any] = Field(description="the rules detection applies to this sensor")

    @classmethod
    def of(cls, rules: SensorRules) -> EffectiveRulesOut:
        s = rules.sensor
        return cls(
            sensor_id=s.id,
            sensor_type=s.sensor_type,
            alert_threshold_min=s.alert_threshold_min,
            alert_threshold_max=s.alert_threshold_max,
            builtin=rules.builtin,
            type_defaults=rules.type_defaults,
            override=rules.override,
            effective=rules.effective.as_dict(),
        )


# --- the organization's defaults per sensor type


@router.get("/iot/alert-rules")
async def list_type_rules(principal: PrincipalDep, services: ServicesDep) -> list[TypeRulesOut]:
    """Every sensor type: built-in rules, the organization's defaults, and the two layered."""
    return [TypeRulesOut.of(r) for r in await services.alert_rules.type_rules(principal)]


@router.get("/iot/alert-rules/{sensor_type}")
async def get_type_rules(sensor_type: SensorType, principal: PrincipalDep, services: ServicesDep) -> TypeRulesOut:
    return TypeRulesOut.of(await services.alert_rules.type_rule(principal, sensor_type))


@router.put("/iot/alert-rules/{sensor_type}")
async def put_type_rules(
    sensor_type: SensorType,
    principal: PrincipalDep,
    services: ServicesDep,
    body: dict[Text, Any] = RulesBody,
) -> TypeRulesOut:
    """Replace the organization's defaults for the type (syndics); refused when they contradict a sensor's
    override or thresholds."""
    return TypeRulesOut.of(await services.alert_rules.set_type_rules(principal, sensor_type, body))


@router.delete("/iot/alert-rules/{sensor_type}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_type_rules(sensor_type: SensorType, principal: PrincipalDep, services: ServicesDep) -> Response:
    """Back to the built-in rules for the type (syndics)."""
    await services.alert_rules.delete_type_rules(principal, sensor_type)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- one sensor's override


@router.get("/iot/sensors/{sensor_id}/alert-rules")
async def get_sensor_override(sensor_id: UUID, principal: PrincipalDep, services: ServicesDep) -> OverrideOut:
    rules = await services.alert_rules.sensor_rules(principal, sensor_id)
    return OverrideOut(sensor_id=sensor_id, override=rules.override)


@router.put("/iot/sensors/{sensor_id}/alert-rules")
async def put_sensor_override(
    sensor_id: UUID,
    principal: PrincipalDep,
    services: ServicesDep,
    body: dict[Text, Any] = RulesBody,
) -> OverrideOut:
    """Replace the sensor's override (syndics)."""
    rules = await services.alert_rules.set_sensor_override(principal, sensor_id, body)
    return OverrideOut(sensor_id=sensor_id, override=rules.override)


@router.delete("/iot/sensors/{sensor_id}/alert-rules", status_code=status.HTTP_204_NO_CONTENT)
async def delete_sensor_override(sensor_id: UUID, principal: PrincipalDep, services: ServicesDep) -> Response:
    """Back to the type's defaults (syndics)."""
    await services.alert_rules.delete_sensor_override(principal, sensor_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/iot/sensors/{sensor_id}/alert-rules/effective")
async def get_effective_rules(sensor_id: UUID, principal: PrincipalDep, services: ServicesDep) -> EffectiveRulesOut:
    """The rules detection applies to the sensor, with the layers they come from."""
    return EffectiveRulesOut.of(await services.alert_rules.sensor_rules(principal, sensor_id))
