"""Log lines about one organization or sensor carry their ids, as JSON fields or at the end of a text line."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator

import pytest

from koprogo_iot import logs
from koprogo_iot.domain.clock import utcnow
from koprogo_iot.ingest.pipeline import Message, Pipeline
from koprogo_iot.storage.ports import Storage
from tests.conftest import make_tenant


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


async def reject_unknown_sensor(storage: Storage) -> tuple[str, str]:
    tenant = await make_tenant(storage, "Logs")
    org, building = tenant.organization.id, tenant.building.id
    topic = f"koprogo/{org}/{building}/NOT-REGISTERED-{uuid.uuid4().hex[:6]}/readings"
    payload = json.dumps({"timestamp": utcnow().isoformat(), "value": 1.0}).encode()
    await Pipeline(storage).handle([Message(topic, payload, utcnow())])
    return str(org), topic.split("/")[3]


async def test_json_lines_name_the_organization_and_sensor(
    storage: Storage, restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure(logs.LogFormat.JSON, force=True)
    org, sensor = await reject_unknown_sensor(storage)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    [rejected] = [line for line in lines if line["message"].startswith("rejected a value")]
    assert rejected["organization_id"] == org and rejected["sensor_id"] == sensor
    assert rejected["level"] == "INFO" and rejected["logger"] == "koprogo_iot.ingest.pipeline" and "time" in rejected


async def test_text_lines_end_with_the_organization_and_sensor(
    storage: Storage, restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure(logs.LogFormat.TEXT, force=True)
    org, sensor = await reject_unknown_sensor(storage)
    [line] = [line for line in capsys.readouterr().err.splitlines() if "rejected a value" in line]
    assert f"[organization_id={org} building_id=" in line and f"sensor_id={sensor} topic=" in line
