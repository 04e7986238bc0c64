"""What the OpenAPI fuzz run found (issue 12): hostile values answer 422 naming the field, never 500 or silence.

Each case is one of the fuzzer's findings or a member of its class: NUL bytes and lone surrogates in any string,
integers beyond what the databases store, floats that are not finite, dates outside the supported window.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.api.conftest import Api


@dataclass(frozen=True)
class Hostile:
    method: str
    path: Callable[[Api], str]
    field: str  # what the 422's message must name
    body: Callable[[Api], Any] | None = None
    params: dict[str, str] | None = None
    as_login: bool = False  # sent without a token (login)


def _sensor_body(api: Api, **change: Any) -> dict[str, Any]:
    return {
        "building_id": str(api.a.building.id),
        "sensor_id": "fuzz-1",
        "sensor_type": "cold_water",
        "manufacturer": "Kamstrup",
        "model": "MULTICAL 21",
        "location": "cellar",
        "unit_of_measure": "m³",
    } | change


YEAR_ONE = "0001-01-01T00:00:00Z"
CASES = {
    "nul in a query parameter": Hostile(
        "GET", lambda a: "/api/v1/ingest/dead-letters", "reason", params={"reason": "\x00x"}
    ),
    "nul in a building name": Hostile("POST", lambda a: "/api/v1/buildings", "name", lambda a: {"name": "B\x00"}),
    "nul in a unit name": Hostile(
        "POST", lambda a: "/api/v1/units", "name", lambda a: {"building_id": str(a.a.building.id), "name": "\x00"}
    ),
    "nul in a sensor location": Hostile(
        "POST", lambda a: "/api/v1/iot/sensors", "location", lambda a: _sensor_body(a, location="cellar\x00")
    ),
    "nul in an acknowledgment note": Hostile(
        "POST",
        lambda a: f"/api/v1/iot/alerts/{a.a.common_sensor.id}/acknowledge",
        "note",
        lambda a: {"note": "seen\x00"},
    ),
    "nul in a path parameter": Hostile(
        "PUT", lambda a: "/api/v1/ista/meters/M%00/sensor", "meter_number", lambda a: {"sensor_id": None}
    ),
    "nul in a login email": Hostile(
        "POST", lambda a: "/api/v1/auth/login", "email", lambda a: {"email": "x\x00@a.be", "password": "p"}, None, True
    ),
    "lone surrogate in a login email": Hostile(
        "POST", lambda a: "/api/v1/auth/login", "email", lambda a: {"email": "\ud800@a.be", "password": "p"}, None, True
    ),
    "lone surrogate in a name": Hostile("POST", lambda a: "/api/v1/buildings", "name", lambda a: {"name": "\udfff"}),
    "integer beyond 32 bits": Hostile(
        "PUT",
        lambda a: "/api/v1/iot/notifications/settings",
        "reminder_interval_s",
        lambda a: {"reminder_interval_s": 2**31},
    ),
    "integer beyond 64 bits": Hostile(
        "POST",
        lambda a: "/api/v1/units",
        "floor",
        lambda a: {"building_id": str(a.a.building.id), "name": "U", "floor": 2**70},
    ),
    "integer query beyond 32 bits": Hostile(
        "GET",
        lambda a: f"/api/v1/iot/sensors/{a.a.common_sensor.id}/time-series",
        "aggregation_interval",
        params={"aggregation_interval": str(2**63)},
    ),
    "time series from year 1": Hostile(
        "GET", lambda a: f"/api/v1/iot/sensors/{a.a.common_sensor.id}/time-series", "start", params={"start": YEAR_ONE}
    ),
    "consumption from year 1": Hostile("GET", lambda a: "/api/v1/iot/consumption", "start", params={"start": YEAR_ONE}),
    "units against the median from year 1": Hostile(
        "GET",
        lambda a: "/api/v1/iot/consumption/units-vs-median",
        "start",
        params={"start": YEAR_ONE, "building_id": "", "sensor_type": "cold_water"},
    ),
    "period comparison until year 9999": Hostile(
        "GET", lambda a: "/api/v1/iot/consumption/period-comparison", "end", params={"end": "9999-12-31T23:59:59Z"}
    ),
    "a date in a body from year 1": Hostile(
        "POST", lambda a: "/api/v1/iot/sensors", "installed_at", lambda a: _sensor_body(a, installed_at=YEAR_ONE)
    ),
    "an ISTA report date from year 1": Hostile(
        "GET", lambda a: "/api/v1/ista/report", "start", params={"start": "0001-01-01"}
    ),
    "a float that is not finite": Hostile(
        "POST",
        lambda a: f"/api/v1/iot/sensors/{a.a.common_sensor.id}/calibrate",
        "calibration_factor",
        lambda a: '{"calibration_factor": Infinity}',
    ),
}


async def test_hostile_values_get_422_naming_the_field(api: Api) -> None:
    """Every case against one app (a tenant set-up per database costs seconds; a request, milliseconds)."""
    syndic = await api.token(api.a.syndic.email)
    wrong = {}
    for name, case in CASES.items():
        params = {k: str(api.a.building.id) if v == "" else v for k, v in (case.params or {}).items()}
        body = case.body(api) if case.body else None
        # json.dumps writes lone surrogates as \\udXXX escapes, as a client would; str bodies are sent as they are.
        content = body if isinstance(body, str) else None if body is None else json.dumps(body)
        response = await api.client.request(
            case.method,
            case.path(api),
            params=params,
            content=content,
            headers=({} if case.as_login else syndic) | {"content-type": "application/json"},
        )
        error = response.json()
        if response.status_code != 422 or error["error"] != "validation_error" or case.field not in error["message"]:
            wrong[name] = f"{response.status_code} {response.text}"
    assert not wrong


async def test_a_valid_request_after_hostile_ones_is_still_answered(api: Api) -> None:
    """On SQLite the overflowing settings once left the connection without an answer: the next request must work."""
    headers = await api.token(api.a.syndic.email)
    for _ in range(2):
        await api.client.put("/api/v1/iot/notifications/settings", json={"reminder_interval_s": 2**63}, headers=headers)
    assert (await api.client.get("/api/v1/iot/sensors", headers=headers)).status_code == 200
