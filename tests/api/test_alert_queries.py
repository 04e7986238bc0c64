"""Alert queries through the API: filters, one alert, statistics, and who sees which alerts."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from koprogo_iot.domain.alerts import AlertSeverity, AlertType, IoTAlert
from koprogo_iot.domain.sensors import IoTSensor, SensorType
from koprogo_iot.domain.tenancy import Building
from koprogo_iot.storage.sql import alerts as alert_rows
from koprogo_iot.storage.sql.database import Database
from tests.api.conftest import Api

ALERTS = "/api/v1/iot/alerts"
T0 = datetime(2025, 3, 1, tzinfo=UTC)


async def insert(db: Database, alert: IoTAlert) -> IoTAlert:
    """Store an alert as it stands, acknowledged or cleared (ingestion's decisions are tested elsewhere)."""
    await db.execute(alert_rows.ALERTS.insert(), *alert_rows.ALERTS.values(alert))
    return alert


def alert(
    sensor: IoTSensor,
    alert_type: AlertType,
    severity: AlertSeverity,
    triggered: timedelta,
    cleared: timedelta | None = None,
    acknowledged: timedelta | None = None,  # after the trigger
    by: uuid.UUID | None = None,
    rule: str | None = None,
) -> IoTAlert:
    at = T0 + triggered
    return IoTAlert(
        organization_id=sensor.organization_id,
        sensor_id=sensor.id,
        building_id=sensor.building_id,
        unit_id=sensor.unit_id,
        alert_type=alert_type,
        severity=severity,
        message=f"{alert_type} on {sensor.sensor_id}",
        triggered_at=at,
        last_triggered_at=at,
        cleared_at=None if cleared is None else T0 + cleared,
        acknowledged_by=by if acknowledged is not None else None,
        acknowledged_at=None if acknowledged is None else at + acknowledged,
        rule=rule,
    )


class Scene:
    """Tenant A's alerts over a few days, plus one of tenant B's.

    | # | sensor           | type       | severity | triggered | cleared | acknowledged after |
    | 1 | common (b1)      | threshold  | critical | T0+1h     | -       | 600.25 s           |
    | 2 | common (b1)      | offline    | warning  | T0+2h     | T0+3h   | 1800 s             |
    | 3 | unit 1 (b1)      | leak       | critical | T0+5h     | -       | -                  |
    | 4 | unit 2 (b1)      | battery    | info     | T0+1d     | T0+1d1h | -                  |
    | 5 | other building   | threshold  | warning  | T0+2d     | -       | 3600 s             |
    """

    def __init__(self, api: Api, other_building: Building, other_sensor: IoTSensor) -> None:
        a, by = api.a, api.a.syndic.id
        self.other_building = other_building
        h = timedelta(hours=1)
        self.alerts = [
            alert(
                a.common_sensor,
                AlertType.THRESHOLD_EXCEEDED,
                AlertSeverity.CRITICAL,
                h,
                acknowledged=timedelta(seconds=600.25),
                by=by,
                rule="threshold",
            ),
            alert(
                a.common_sensor,
                AlertType.SENSOR_OFFLINE,
                AlertSeverity.WARNING,
                2 * h,
                cleared=3 * h,
                acknowledged=timedelta(seconds=1800),
                by=by,
                rule="offline",
            ),
            alert(a.unit_sensor, AlertType.LEAK_DETECTED, AlertSeverity.CRITICAL, 5 * h, rule="night_flow"),
            alert(a.other_unit_sensor, AlertType.LOW_BATTERY, AlertSeverity.INFO, 24 * h, cleared=25 * h),
            alert(
                other_sensor,
                AlertType.THRESHOLD_EXCEEDED,
                AlertSeverity.WARNING,
                48 * h,
                acknowledged=timedelta(seconds=3600),
                by=by,
            ),
        ]
        self.foreign = alert(api.b.common_sensor, AlertType.THRESHOLD_EXCEEDED, AlertSeverity.CRITICAL, h)

    def ids(self, *numbers: int) -> list[str]:
        return [str(self.alerts[n - 1].id) for n in numbers]


@pytest.fixture
async def scene(api: Api) -> Scene:
    org = api.a.organization.id
    building = Building(organization_id=org, name="Annex")
    await api.storage.tenancy.add_building(building)
    sensor = IoTSensor(
        organization_id=org,
        building_id=building.id,
        sensor_id=f"annex-{uuid.uuid4().hex[:6]}",
        sensor_type=SensorType.COLD_WATER,
        kind="instantaneous",
        manufacturer="Kamstrup",
        model="MULTICAL 21",
        location="annex",
        unit_of_measure="L/h",
    )
    await api.storage.sensors.add(sensor)
    found = Scene(api, building, sensor)
    for a in [*found.alerts, found.foreign]:
        await insert(api.db, a)
    return found


async def listed(api: Api, headers: dict[str, str], **params: Any) -> list[str]:
    response = await api.client.get(ALERTS, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [a["id"] for a in response.json()]


async def test_filters_combine(api: Api, scene: Scene) -> None:
    headers = await api.token(api.a.syndic.email)
    assert await listed(api, headers) == scene.ids(5, 4, 3, 2, 1)  # newest first, B's not among them
    assert await listed(api, headers, alert_type="leak_detected") == scene.ids(3)
    assert await listed(api, headers, severity="critical") == scene.ids(3, 1)
    assert await listed(api, headers, alert_type="threshold_exceeded", status="active") == scene.ids(5, 1)
    assert await listed(api, headers, status="active", acknowledged="false") == scene.ids(3)
    assert await listed(api, headers, status="cleared") == scene.ids(4, 2)
    assert await listed(api, headers, building_id=str(scene.other_building.id)) == scene.ids(5)
    assert await listed(api, headers, sensor_id=str(api.a.common_sensor.id), acknowledged="true") == scene.ids(2, 1)
    # The period is on triggered_at, start included and end excluded.
    start, end = (T0 + timedelta(hours=2)).isoformat(), (T0 + timedelta(hours=24)).isoformat()
    assert await listed(api, headers, start=start, end=end) == scene.ids(3, 2)
    assert await listed(api, headers, start=start, end=end, severity="warning") == scene.ids(2)
    assert await listed(api, headers, start=(T0 + timedelta(days=3)).isoformat()) == []
    assert await listed(api, headers, limit=2) == scene.ids(5, 4)

    for bad in ({"severity": "apocalyptic"}, {"alert_type": "ghost"}, {"start": end, "end": start}, {"start": "soon"}):
        response = await api.client.get(ALERTS, params=bad, headers=headers)
        assert response.status_code == 422, (bad, response.text)


async def test_one_alert_with_its_rule(api: Api, scene: Scene) -> None:
    headers = await api.token(api.a.syndic.email)
    response = await api.client.get(f"{ALERTS}/{scene.alerts[0].id}", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert body["rule"] == "threshold" and body["severity"] == "critical" and body["status"] == "active"
    assert body["acknowledged"] is True and body["acknowledged_by"] == str(api.a.syndic.id)
    assert datetime.fromisoformat(body["acknowledged_at"]) == T0 + timedelta(hours=1, seconds=600.25)
    assert (await api.client.get(f"{ALERTS}/{scene.alerts[3].id}", headers=headers)).json()["rule"] is None
    assert (await api.client.get(f"{ALERTS}/{uuid.uuid4()}", headers=headers)).status_code == 404


async def test_the_store_round_trips_rule_and_notification_state(api: Api, scene: Scene) -> None:
    notified = alert(
        api.a.other_unit_sensor, AlertType.SENSOR_FAULTY, AlertSeverity.WARNING, timedelta(hours=3), rule="stuck"
    )
    notified = replace(
        notified, notified_at=T0 + timedelta(hours=3, minutes=1), notified_severity=AlertSeverity.WARNING
    )
    await insert(api.db, notified)
    stored = await api.storage.alerts.get(api.a.organization.id, notified.id)
    assert stored == notified
    assert (stored.rule, stored.notified_severity) == ("stuck", AlertSeverity.WARNING)


async def test_statistics(api: Api, scene: Scene) -> None:
    headers = await api.token(api.a.syndic.email)
    url = f"{ALERTS}/statistics"
    b1, b2 = str(api.a.building.id), str(scene.other_building.id)

    everything = (await api.client.get(url, headers=headers)).json()
    assert everything == {
        "total": 5,
        "by_type": {"threshold_exceeded": 2, "sensor_offline": 1, "leak_detected": 1, "low_battery": 1},
        "by_severity": {"critical": 2, "warning": 2, "info": 1},
        "by_building": {b1: 4, b2: 1},
        "active": 3,  # 1, 3, 5
        "active_unacknowledged": 1,  # 3
        "acknowledged": 3,  # 1, 2, 5
        "mean_time_to_acknowledge_s": 2000.083,  # (600.25 + 1800 + 3600) / 3
    }

    first_day = {"start": T0.isoformat(), "end": (T0 + timedelta(days=1)).isoformat()}
    day = (await api.client.get(url, params=first_day, headers=headers)).json()
    assert day == {
        "total": 3,
        "by_type": {"threshold_exceeded": 1, "sensor_offline": 1, "leak_detected": 1},
        "by_severity": {"critical": 2, "warning": 1},
        "by_building": {b1: 3},
        "active": 2,
        "active_unacknowledged": 1,
        "acknowledged": 2,
        "mean_time_to_acknowledge_s": 1200.125,  # (600.25 + 1800) / 2
    }

    annex = (await api.client.get(url, params={"building_id": b2}, headers=headers)).json()
    assert (annex["total"], annex["by_building"], annex["mean_time_to_acknowledge_s"]) == (1, {b2: 1}, 3600.0)

    nothing = (
        await api.client.get(url, params={"start": (T0 + timedelta(days=9)).isoformat()}, headers=headers)
    ).json()
    assert nothing == {
        "total": 0,
        "by_type": {},
        "by_severity": {},
        "by_building": {},
        "active": 0,
        "active_unacknowledged": 0,
        "acknowledged": 0,
        "mean_time_to_acknowledge_s": None,
    }

    other = (await api.client.get(url, headers=await api.token(api.b.syndic.email))).json()
    assert (other["total"], other["by_building"]) == (1, {str(api.b.building.id): 1})
    bad = await api.client.get(url, params={"start": first_day["end"], "end": first_day["start"]}, headers=headers)
    assert bad.status_code == 422


async def test_owners_see_their_units_and_the_common_sensors_alerts_only(api: Api, scene: Scene) -> None:
    owner = await api.token(api.a.owner.email)  # owns unit 1 of the first building
    assert await listed(api, owner) == scene.ids(3, 2, 1)
    assert await listed(api, owner, severity="critical") == scene.ids(3, 1)
    assert await listed(api, owner, limit=1) == scene.ids(3)  # the limit counts what the owner may see
    assert await listed(api, owner, building_id=str(scene.other_building.id)) == []

    stats = (await api.client.get(f"{ALERTS}/statistics", headers=owner)).json()
    assert (stats["total"], stats["active"], stats["acknowledged"]) == (3, 2, 2)
    assert stats["by_type"] == {"threshold_exceeded": 1, "sensor_offline": 1, "leak_detected": 1}
    assert stats["mean_time_to_acknowledge_s"] == 1200.125

    assert (await api.client.get(f"{ALERTS}/{scene.alerts[2].id}", headers=owner)).status_code == 200
    for neighbour in (scene.alerts[3], scene.alerts[4]):  # the other unit's, the other building's
        assert (await api.client.get(f"{ALERTS}/{neighbour.id}", headers=owner)).status_code == 404
    acknowledge = await api.client.post(f"{ALERTS}/{scene.alerts[2].id}/acknowledge", json={}, headers=owner)
    assert acknowledge.status_code == 403


async def test_another_organizations_alerts_are_absent(api: Api, scene: Scene) -> None:
    b = await api.token(api.b.syndic.email)
    assert await listed(api, b) == [str(scene.foreign.id)]
    mine = scene.alerts[2].id
    assert (await api.client.get(f"{ALERTS}/{mine}", headers=b)).status_code == 404
    assert (await api.client.post(f"{ALERTS}/{mine}/acknowledge", json={"note": "x"}, headers=b)).status_code == 404
    a = await api.token(api.a.syndic.email)
    assert (await api.client.get(f"{ALERTS}/{scene.foreign.id}", headers=a)).status_code == 404
    assert await listed(api, a, sensor_id=str(api.b.common_sensor.id)) == []
    assert (await api.client.get(f"{ALERTS}/{mine}", headers=a)).json()["acknowledged"] is False
