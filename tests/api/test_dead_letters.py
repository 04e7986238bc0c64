"""Dead letters through the API: syndics see their organization's, the platform operator sees all."""

from koprogo_iot.domain.clock import utcnow
from koprogo_iot.ingest.pipeline import Message, Pipeline
from tests.api.conftest import Api


async def test_dead_letters_are_scoped_and_counted(api: Api) -> None:
    pipeline = Pipeline(api.storage)
    now = utcnow()
    valid = f'{{"timestamp": "{now.isoformat()}", "value": 1}}'.encode()
    await pipeline.handle(
        [
            Message(api.a.unit_sensor.mqtt_topic, b"{broken", now),
            Message(f"koprogo/{api.a.organization.id}/{api.a.building.id}/ghost/readings", valid, now),
            Message(api.b.unit_sensor.mqtt_topic, b"[]", now),
        ]
    )
    syndic_a = await api.token(api.a.syndic.email)
    listed = (await api.client.get("/api/v1/ingest/dead-letters", headers=syndic_a)).json()
    assert {d["reason"] for d in listed} == {"invalid_json", "unknown_sensor"}
    assert all(d["organization_id"] == str(api.a.organization.id) for d in listed)
    assert listed[0]["payload_excerpt"] and listed[0]["topic"].startswith("koprogo/")
    only = await api.client.get("/api/v1/ingest/dead-letters?reason=invalid_json", headers=syndic_a)
    assert [d["payload_excerpt"] for d in only.json()] == ["{broken"]
    counts = await api.client.get("/api/v1/ingest/dead-letters/counts", headers=syndic_a)
    assert counts.json() == {"invalid_json": 1, "unknown_sensor": 1}

    syndic_b = await api.token(api.b.syndic.email)
    assert [d["reason"] for d in (await api.client.get("/api/v1/ingest/dead-letters", headers=syndic_b)).json()] == [
        "schema_violation"
    ]
    admin = await api.token(api.admin.email)
    assert len((await api.client.get("/api/v1/ingest/dead-letters", headers=admin)).json()) == 3
    owner = await api.token(api.a.owner.email)
    assert (await api.client.get("/api/v1/ingest/dead-letters", headers=owner)).status_code == 403
