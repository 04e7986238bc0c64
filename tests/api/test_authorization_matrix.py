"""Every operation of the OpenAPI schema x every kind of caller x their own organization's ids or another's.

Callers: a superadmin, a syndic and an owner of organization A; nobody; an expired token; a token signed with
another key. Ids: A's (own) or B's (foreign). Each cell asserts the status code and that no id of B appears in
the response, except the ids the request itself carried (a 404 names what was asked for) and where `sees_foreign`
allows it: a superadmin on the platform operator's operations, anyone logging in with B's credentials.
The table must name every operation of the schema: a new endpoint without an entry fails
`test_every_operation_has_an_entry`.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import jwt

from koprogo_iot.domain import credentials
from koprogo_iot.domain.bacnet import BacnetPoint, ObjectType
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.dead_letters import DeadLetter
from koprogo_iot.domain.integrations import IntegrationKind, LnsIntegration
from koprogo_iot.domain.notices import NotificationRoute
from koprogo_iot.domain.sensors import IoTSensor, SensorType
from koprogo_iot.domain.tenancy import Role, User
from koprogo_iot.ista.csv_format import COLUMNS
from tests.api.conftest import SECRET, Api
from tests.api.test_inputs import build_services_for_schema
from tests.conftest import PASSWORD, Tenant
from tests.notify.conftest import insert_alert

ROLES = ("superadmin", "syndic", "owner")
NOBODY = ("anonymous", "expired token", "another key's token")
SIDES = ("own", "foreign")
_serial = itertools.count()


@dataclass
class Call:
    path: str
    params: dict[str, str] = field(default_factory=dict)
    json: Any = None
    content: bytes | None = None  # a CSV body (ISTA imports)


@dataclass
class Ids:
    """One organization's world: its tenant, and one of each kind of entity the routes take."""

    tenant: Tenant
    alert_id: UUID
    integration_id: UUID
    route_id: UUID
    meter_number: str
    credential_id: UUID
    point_id: UUID


@dataclass
class World:
    api: Api
    own: Ids
    foreign: Ids
    foreign_ids: set[str]  # every id of B's, grown as cells create B entities

    def ids(self, side: str) -> Ids:
        return self.own if side == "own" else self.foreign

    async def sensor(self, side: str) -> UUID:
        """A new sensor, for a cell that deletes one."""
        t = self.ids(side).tenant
        sensor = IoTSensor(
            organization_id=t.organization.id,
            building_id=t.building.id,
            sensor_id=f"matrix-{next(_serial)}",
            sensor_type=SensorType.GAS,
            manufacturer="Itron",
            model="G4",
            location="cellar",
            unit_of_measure="m³",
        )
        await self.api.storage.sensors.add(sensor)
        return self._track(side, sensor.id)

    async def user(self, side: str) -> UUID:
        """A new syndic, for a cell that resets a password or deactivates (the table's callers stay as they are)."""
        t = self.ids(side).tenant
        user = User(t.organization.id, f"matrix-{next(_serial)}@example.org", "Matrix", Role.SYNDIC, "hash")
        await self.api.storage.tenancy.add_user(user)
        return self._track(side, user.id)

    async def integration(self, side: str) -> UUID:
        return self._track(side, await _integration(self.api, self.ids(side).tenant))

    async def route(self, side: str) -> UUID:
        return self._track(side, await _route(self.api, self.ids(side).tenant))

    async def credential(self, side: str) -> UUID:
        return self._track(side, await _credential(self.api, self.ids(side).tenant))

    async def point(self, side: str) -> UUID:
        return self._track(side, await _point(self.api, self.ids(side).tenant, await self.sensor(side)))

    def _track(self, side: str, entity_id: UUID) -> UUID:
        if side == "foreign":
            self.foreign_ids.add(str(entity_id))
        return entity_id


Build = Callable[[World, str], Awaitable[Call]]


@dataclass(frozen=True)
class Op:
    build: Build
    expect: dict[str, tuple[int, int]]  # role -> (status with own ids, status with foreign ids)
    public: bool = False  # answered without a token
    sees_foreign: tuple[str, ...] = ()  # callers whose answer may hold B's ids


def everyone(own: int, foreign: int | None = None) -> dict[str, tuple[int, int]]:
    return dict.fromkeys(ROLES, (own, own if foreign is None else foreign))


def managers(own: int, foreign: int | None = None, owner: tuple[int, int] = (403, 403)) -> dict[str, tuple[int, int]]:
    return dict.fromkeys(ROLES[:2], (own, own if foreign is None else foreign)) | {"owner": owner}


def fixed(path: str, **params: str) -> Build:
    async def build(world: World, side: str) -> Call:
        return Call(path, dict(params))

    return build


def at(template: str, key: Callable[[Ids], object], **params: str) -> Build:
    """`template` with `{}` filled by the side's id, e.g. at("/iot/sensors/{}", sensor)."""

    async def build(world: World, side: str) -> Call:
        return Call(template.format(key(world.ids(side))), dict(params))

    return build


def query(path: str, name: str, key: Callable[[Ids], object], **params: str) -> Build:
    """`path?name=<the side's id>`."""

    async def build(world: World, side: str) -> Call:
        return Call(path, {name: str(key(world.ids(side))), **params})

    return build


def body(path: str, make: Callable[[Ids], Any], template_key: Callable[[Ids], object] | None = None) -> Build:
    async def build(world: World, side: str) -> Call:
        ids = world.ids(side)
        return Call(path.format(template_key(ids)) if template_key else path, json=make(ids))

    return build


def fresh(template: str, make: str) -> Build:
    """A path naming a new entity of the side's (for deletions: each cell deletes its own)."""

    async def build(world: World, side: str) -> Call:
        return Call(template.format(await getattr(world, make)(side)))

    return build


async def password_reset(world: World, side: str) -> Call:
    return Call(f"/users/{await world.user(side)}/password", json={"new_password": "matrix-password"})


async def deactivation(world: World, side: str) -> Call:
    return Call(f"/users/{await world.user(side)}/active", json={"active": False})


def building(i: Ids) -> UUID:
    return i.tenant.building.id


def sensor(i: Ids) -> UUID:
    return i.tenant.unit_sensor.id  # the owner's own unit's: readable by every role of its organization


def sensor_body(i: Ids) -> dict[str, Any]:
    return {
        "building_id": str(building(i)),
        "sensor_id": f"matrix-new-{next(_serial)}",
        "sensor_type": "gas",
        "manufacturer": "Itron",
        "model": "G4",
        "location": "cellar",
        "unit_of_measure": "m³",
    }


def user_body(i: Ids) -> dict[str, Any]:
    return {
        "email": f"matrix-{next(_serial)}@example.org",
        "password": PASSWORD,
        "full_name": "Matrix",
        "role": "syndic",
        "organization_id": str(i.tenant.organization.id),
    }


def ista_file(t: Tenant, meter_number: str) -> bytes:
    """One reading of a common cold water meter of the tenant's building."""
    row = [t.building.name, "", meter_number, "WATER_COLD", "2025-01-01", "12", "m³", "ACTUAL"]
    return (";".join(COLUMNS) + "\n" + ";".join(row) + "\n").encode()


async def bacnet_point(world: World, side: str) -> Call:
    """A point for a new sensor (a sensor has at most one)."""
    body = {
        "building_id": str(building(world.ids(side))),
        "sensor_id": str(await world.sensor(side)),
        "address": "192.0.2.10",
        "object_type": "analog-input",
        "object_instance": 3,
    }
    return Call("/iot/bacnet/points", json=body)


async def ista_import(world: World, side: str) -> Call:
    return Call("/ista/imports", content=ista_file(world.ids(side).tenant, f"M-{next(_serial)}"))


P = "/iot/sensors/{}"
MATRIX: dict[str, Op] = {
    "POST /auth/login": Op(
        body("/auth/login", lambda i: {"email": i.tenant.syndic.email, "password": PASSWORD}),
        everyone(200),
        public=True,
        sees_foreign=(*ROLES, *NOBODY),  # with B's credentials, the caller is B's syndic
    ),
    "POST /auth/refresh": Op(fixed("/auth/refresh"), everyone(200)),
    "GET /auth/me": Op(fixed("/auth/me"), everyone(200)),
    # A wrong current password: refused for every caller, and nothing changes for the rest of the table.
    "POST /auth/password": Op(
        body("/auth/password", lambda i: {"current_password": "not it", "new_password": "new-password-1"}),
        everyone(422),
    ),
    "GET /organizations": Op(fixed("/organizations"), everyone(200), sees_foreign=("superadmin",)),
    "POST /organizations": Op(
        body("/organizations", lambda i: {"name": f"New {next(_serial)}"}),
        {"superadmin": (201, 201), "syndic": (403, 403), "owner": (403, 403)},
    ),
    "PUT /organizations/{organization_id}/retention": Op(
        body("/organizations/{}/retention", lambda i: {"raw_retention_months": 24}, lambda i: i.tenant.organization.id),
        {"superadmin": (200, 200), "syndic": (200, 404), "owner": (403, 404)},
        sees_foreign=("superadmin",),  # the platform operator sets any organization's
    ),
    "GET /buildings": Op(fixed("/buildings"), everyone(200)),
    "POST /buildings": Op(body("/buildings", lambda i: {"name": "Annexe"}), managers(201)),
    "GET /buildings/{building_id}": Op(at("/buildings/{}", building), everyone(200, 404)),
    "PUT /buildings/{building_id}": Op(
        body("/buildings/{}", lambda i: {"name": i.tenant.building.name, "address": "Rue 1"}, building),
        managers(200, 404),
    ),
    "PUT /units/{unit_id}": Op(
        body("/units/{}", lambda i: {"name": i.tenant.units[1].name, "floor": 2}, lambda i: i.tenant.units[1].id),
        managers(200, 404),
    ),
    "POST /units": Op(body("/units", lambda i: {"building_id": str(building(i)), "name": "Lot"}), managers(201, 404)),
    "GET /units": Op(query("/units", "building_id", building), everyone(200)),
    "GET /users": Op(fixed("/users"), managers(200)),
    "POST /users": Op(body("/users", user_body), {"superadmin": (201, 201), "syndic": (201, 403), "owner": (403, 403)}),
    "PUT /users/{user_id}/contacts": Op(
        body("/users/{}/contacts", lambda i: {"push_topic": "matrix"}, lambda i: i.tenant.owner.id),
        managers(200, 404, owner=(200, 403)),  # an owner sets their own contacts
    ),
    "PUT /users/{user_id}/password": Op(password_reset, managers(204, 404)),
    "PUT /users/{user_id}/active": Op(deactivation, managers(200, 404)),
    "PUT /users/{user_id}/units": Op(
        body("/users/{}/units", lambda i: {"unit_ids": [str(i.tenant.units[0].id)]}, lambda i: i.tenant.owner.id),
        managers(200, 404),
    ),
    "POST /iot/sensors": Op(body("/iot/sensors", sensor_body), managers(201, 404)),
    "GET /iot/sensors": Op(query("/iot/sensors", "building_id", building), everyone(200)),
    "GET /iot/sensors/{sensor_id}": Op(at(P, sensor), everyone(200, 404)),
    "PUT /iot/sensors/{sensor_id}": Op(body(P, lambda i: {"location": "roof"}, sensor), managers(200, 404)),
    "DELETE /iot/sensors/{sensor_id}": Op(fresh(P, "sensor"), managers(204, 404)),
    "POST /iot/sensors/{sensor_id}/calibrate": Op(
        body(P + "/calibrate", lambda i: {"calibration_factor": 1.0}, sensor), managers(200, 404)
    ),
    "GET /iot/sensors/{sensor_id}/readings": Op(at(P + "/readings", sensor), everyone(200, 404)),
    "GET /iot/devices/formats": Op(fixed("/iot/devices/formats"), everyone(200)),
    "GET /iot/devices/unclaimed": Op(query("/iot/devices/unclaimed", "building_id", building), managers(200, 404)),
    "GET /iot/integrations": Op(fixed("/iot/integrations"), managers(200)),
    "POST /iot/integrations": Op(
        body("/iot/integrations", lambda i: {"kind": "chirpstack", "name": "LNS", "broker_url": "mqtt://lns:1883"}),
        managers(201),
    ),
    "GET /iot/integrations/{integration_id}": Op(
        at("/iot/integrations/{}", lambda i: i.integration_id), managers(200, 404)
    ),
    "PUT /iot/integrations/{integration_id}": Op(
        body("/iot/integrations/{}", lambda i: {"enabled": False}, lambda i: i.integration_id), managers(200, 404)
    ),
    "DELETE /iot/integrations/{integration_id}": Op(fresh("/iot/integrations/{}", "integration"), managers(204, 404)),
    "GET /iot/alerts": Op(query("/iot/alerts", "building_id", building), everyone(200)),
    "GET /iot/alerts/statistics": Op(query("/iot/alerts/statistics", "building_id", building), everyone(200)),
    "GET /iot/alerts/{alert_id}": Op(at("/iot/alerts/{}", lambda i: i.alert_id), everyone(200, 404)),
    "POST /iot/alerts/{alert_id}/acknowledge": Op(
        body("/iot/alerts/{}/acknowledge", lambda i: {"note": "seen"}, lambda i: i.alert_id), managers(200, 404)
    ),
    "GET /iot/alert-rules": Op(fixed("/iot/alert-rules"), everyone(200)),
    "GET /iot/alert-rules/{sensor_type}": Op(fixed("/iot/alert-rules/gas"), everyone(200)),
    "PUT /iot/alert-rules/{sensor_type}": Op(
        body("/iot/alert-rules/gas", lambda i: {"threshold": {"maximum": 9}}), managers(200)
    ),
    "DELETE /iot/alert-rules/{sensor_type}": Op(fixed("/iot/alert-rules/gas"), managers(204)),
    "GET /iot/sensors/{sensor_id}/alert-rules": Op(at(P + "/alert-rules", sensor), everyone(200, 404)),
    "PUT /iot/sensors/{sensor_id}/alert-rules": Op(
        body(P + "/alert-rules", lambda i: {"leak": {"enabled": False}}, sensor), managers(200, 404)
    ),
    "DELETE /iot/sensors/{sensor_id}/alert-rules": Op(at(P + "/alert-rules", sensor), managers(204, 404)),
    "GET /iot/sensors/{sensor_id}/alert-rules/effective": Op(
        at(P + "/alert-rules/effective", sensor), everyone(200, 404)
    ),
    "GET /iot/notifications/settings": Op(fixed("/iot/notifications/settings"), managers(200)),
    "PUT /iot/notifications/settings": Op(
        body("/iot/notifications/settings", lambda i: {"reminder_interval_s": 3600}), managers(200)
    ),
    "GET /iot/notifications/routes": Op(fixed("/iot/notifications/routes"), managers(200)),
    "POST /iot/notifications/routes": Op(
        body("/iot/notifications/routes", lambda i: {"role": "syndic", "building_id": str(building(i))}),
        managers(201, 404),
    ),
    "DELETE /iot/notifications/routes/{route_id}": Op(
        fresh("/iot/notifications/routes/{}", "route"), managers(204, 404)
    ),
    "GET /iot/notifications": Op(query("/iot/notifications", "alert_id", lambda i: i.alert_id), managers(200, 404)),
    "GET /ingest/dead-letters": Op(fixed("/ingest/dead-letters"), managers(200), sees_foreign=("superadmin",)),
    "GET /ingest/dead-letters/counts": Op(
        fixed("/ingest/dead-letters/counts"), managers(200), sees_foreign=("superadmin",)
    ),
    "GET /iot/sensors/{sensor_id}/time-series": Op(at(P + "/time-series", sensor), everyone(200, 404)),
    "GET /iot/consumption": Op(query("/iot/consumption", "building_id", building), everyone(200, 404)),
    "GET /iot/consumption/units-vs-median": Op(
        query("/iot/consumption/units-vs-median", "building_id", building, sensor_type="cold_water"),
        managers(200, 404),
    ),
    "GET /iot/buildings/{building_id}/balance": Op(at("/iot/buildings/{}/balance", building), managers(200, 404)),
    "GET /iot/consumption/period-comparison": Op(
        query("/iot/consumption/period-comparison", "building_id", building), everyone(200, 404)
    ),
    "GET /iot/forecast": Op(query("/iot/forecast", "building_id", building), everyone(200, 404)),
    "POST /ista/imports": Op(ista_import, managers(200)),
    "GET /ista/meters": Op(query("/ista/meters", "building_id", building), managers(200, 404)),
    "PUT /ista/meters/{meter_number}/sensor": Op(
        body("/ista/meters/{}/sensor", lambda i: {"sensor_id": None}, lambda i: i.meter_number), managers(200, 404)
    ),
    "GET /ista/report": Op(query("/ista/report", "building_id", building), managers(200, 404)),
    "GET /iot/insights": Op(query("/iot/insights", "building_id", building), everyone(200, 404)),
    "GET /audit": Op(query("/audit", "entity_id", sensor), managers(200)),
    "POST /iot/device-credentials": Op(
        body("/iot/device-credentials", lambda i: {"name": "Gateway", "building_id": str(building(i))}),
        managers(201, 404),
    ),
    "GET /iot/device-credentials": Op(fixed("/iot/device-credentials"), managers(200)),
    "GET /iot/device-credentials/{credential_id}": Op(
        at("/iot/device-credentials/{}", lambda i: i.credential_id), managers(200, 404)
    ),
    "POST /iot/device-credentials/{credential_id}/rotate": Op(
        at("/iot/device-credentials/{}/rotate", lambda i: i.credential_id), managers(200, 404)
    ),
    "DELETE /iot/device-credentials/{credential_id}": Op(
        fresh("/iot/device-credentials/{}", "credential"), managers(200, 404)
    ),
    "POST /iot/bacnet/points": Op(bacnet_point, managers(201, 404)),
    "GET /iot/bacnet/points": Op(query("/iot/bacnet/points", "building_id", building), managers(200, 404)),
    "GET /iot/bacnet/points/{point_id}": Op(at("/iot/bacnet/points/{}", lambda i: i.point_id), managers(200, 404)),
    "PUT /iot/bacnet/points/{point_id}": Op(
        body("/iot/bacnet/points/{}", lambda i: {"scale": 2.0}, lambda i: i.point_id), managers(200, 404)
    ),
    "DELETE /iot/bacnet/points/{point_id}": Op(fresh("/iot/bacnet/points/{}", "point"), managers(204, 404)),
    "GET /health": Op(fixed("/health"), everyone(200), public=True),
    "GET /healthz": Op(fixed("/healthz"), everyone(200), public=True),
    "GET /readyz": Op(fixed("/readyz"), everyone(200), public=True),
}


def _operations() -> set[str]:
    from koprogo_iot.api.app import API_PREFIX, create_app

    spec = create_app(build_services_for_schema()).openapi()
    return {
        f"{method.upper()} {path.removeprefix(API_PREFIX)}" for path, ops in spec["paths"].items() for method in ops
    }


def test_every_operation_has_an_entry() -> None:
    """An endpoint added without its row in MATRIX (or a row left for a removed one) fails here."""
    operations = _operations()
    assert sorted(operations - MATRIX.keys()) == [], "operations without a MATRIX entry"
    assert sorted(MATRIX.keys() - operations) == [], "MATRIX entries of no operation"


# --- the world: two organizations with one entity of each kind


async def _integration(api: Api, t: Tenant) -> UUID:
    integration = LnsIntegration(t.organization.id, IntegrationKind.CHIRPSTACK, "LNS", "mqtt://lns.example:1883")
    await api.storage.integrations.add(integration)
    return integration.id


async def _route(api: Api, t: Tenant) -> UUID:
    route = NotificationRoute(t.organization.id, email=f"route-{next(_serial)}@example.org")
    await api.storage.notifications.add_route(route)
    return route.id


async def _credential(api: Api, t: Tenant) -> UUID:
    credential, _ = credentials.issue(t.organization.id, f"device {next(_serial)}")
    await api.storage.credentials.add(credential)
    return credential.id


async def _point(api: Api, t: Tenant, sensor_id: UUID) -> UUID:
    point = BacnetPoint(t.organization.id, t.building.id, sensor_id, "192.0.2.10", ObjectType.ANALOG_INPUT, 3, 300)
    await api.storage.bacnet.add(point)
    return point.id


async def _ids(api: Api, t: Tenant) -> Ids:
    alert_id = await insert_alert(api.storage, t.unit_sensor, utcnow())
    syndic = await api.token(t.syndic.email)
    meter_number = f"METER-{t.organization.id.hex[:8]}"
    imported = await api.client.post("/api/v1/ista/imports", content=ista_file(t, meter_number), headers=syndic | CSV)
    assert imported.status_code == 200 and imported.json()["imported"] == 1, imported.text
    # A dead letter in each organization: a syndic must see only theirs, a superadmin every one.
    letter = DeadLetter("koprogo/x", "{}", 2, "unknown_sensor", "matrix", utcnow(), t.organization.id)
    await api.storage.readings.ingest([], [letter])
    return Ids(
        t,
        alert_id,
        await _integration(api, t),
        await _route(api, t),
        meter_number,
        await _credential(api, t),
        await _point(api, t, t.common_sensor.id),
    )


CSV = {"content-type": "text/csv"}


def _foreign_ids(ids: Ids) -> set[str]:
    t = ids.tenant
    entities = [t.organization, t.building, *t.units, t.syndic, t.owner, t.common_sensor, t.unit_sensor]
    return {str(e.id) for e in [*entities, t.other_unit_sensor]} | {
        str(ids.alert_id),
        str(ids.integration_id),
        str(ids.route_id),
        ids.meter_number,
        str(ids.credential_id),
        str(ids.point_id),
    }


def _tokens(api: Api, logged_in: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    now, syndic = time.time(), api.a.syndic
    claims = {"sub": str(syndic.id), "org": str(syndic.organization_id), "role": "syndic"}
    expired = jwt.encode(claims | {"iat": int(now - 7200), "exp": int(now - 60)}, SECRET, algorithm="HS256")
    forged = jwt.encode(claims | {"iat": int(now), "exp": int(now + 600)}, "another-key-" + "y" * 40)
    return logged_in | {
        "anonymous": {},
        "expired token": {"Authorization": f"Bearer {expired}"},
        "another key's token": {"Authorization": f"Bearer {forged}"},
    }


async def test_authorization_matrix(api: Api) -> None:
    own, foreign = await _ids(api, api.a), await _ids(api, api.b)
    world = World(api, own, foreign, _foreign_ids(foreign))
    logged_in = {
        "superadmin": await api.token(api.admin.email),
        "syndic": await api.token(api.a.syndic.email),
        "owner": await api.token(api.a.owner.email),
    }
    callers = _tokens(api, logged_in)
    wrong: list[str] = []
    cells = 0
    for name, op in MATRIX.items():
        method = name.split()[0]
        for caller, headers in callers.items():
            for side in SIDES:
                call = await op.build(world, side)
                expected = (
                    op.expect[caller][SIDES.index(side)]
                    if caller in ROLES
                    else op.expect["syndic"][SIDES.index(side)]
                    if op.public
                    else 401
                )
                response = await api.client.request(
                    method,
                    call.path if call.path in ("/health", "/healthz", "/readyz") else "/api/v1" + call.path,
                    params=call.params,
                    json=call.json,
                    content=call.content,
                    headers=headers | (CSV if call.content is not None else {}),
                )
                cells += 1
                where = f"{name} as {caller} with {side} ids"
                if response.status_code != expected:
                    wrong.append(f"{where}: {response.status_code} (expected {expected}) {response.text[:200]}")
                    continue
                if caller in op.sees_foreign:
                    continue
                asked = call.path + json.dumps(call.params) + json.dumps(call.json)
                leaked = {i for i in world.foreign_ids if i in response.text and i not in asked}
                if leaked:
                    wrong.append(f"{where}: B's ids in the response: {sorted(leaked)}")
    assert cells == len(MATRIX) * len(callers) * len(SIDES)
    assert not wrong, "\n".join(wrong)
