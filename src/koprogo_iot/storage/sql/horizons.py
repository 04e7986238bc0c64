"""`iot_raw_horizons`: per organization, the instant before which its raw readings are gone (retention).

Written by the retention (`retention.py`) before it deletes anything, so that a run cut short never leaves raw
readings missing where the horizon says they are kept. Read by the reading source (a period before it answers
from rollups), by the rollups' rebuild and verification (rows before it have no readings to be checked against,
and are kept as they are), and by ingestion (a reading before it marks no hour stale).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from koprogo_iot.storage.sql.database import Executor
from koprogo_iot.storage.sql.rows import as_time, as_uuid, placeholders


async def kept_from(ex: Executor, organization_id: UUID) -> datetime | None:
    """The organization's horizon; None: none of its raw readings were ever expired."""
    row = await ex.fetchrow("SELECT kept_from FROM iot_raw_horizons WHERE organization_id = $1", organization_id)
    return None if row is None else as_time(row["kept_from"])


async def of_sensors(ex: Executor, sensor_ids: Sequence[UUID]) -> dict[UUID, datetime]:
    """The horizon of each sensor's organization, for the sensors whose organization has one."""
    if not sensor_ids:
        return {}
    rows = await ex.fetch(
        "SELECT s.id, h.kept_from FROM iot_sensors s JOIN iot_raw_horizons h ON h.organization_id = s.organization_id "
        f"WHERE s.id IN ({placeholders(len(sensor_ids))})",
        *sensor_ids,
    )
    return {as_uuid(r["id"]): as_time(r["kept_from"]) for r in rows}


async def advance(ex: Executor, organization_id: UUID, cutoff: datetime) -> None:
    """Move the organization's horizon to `cutoff`, never back: readings deleted stay gone when an organization
    lengthens its retention."""
    current = await kept_from(ex, organization_id)
    if current is None:
        await ex.execute(
            "INSERT INTO iot_raw_horizons (organization_id, kept_from) VALUES ($1, $2)", organization_id, cutoff
        )
    elif cutoff > current:
        await ex.execute(
            "UPDATE iot_raw_horizons SET kept_from = $2 WHERE organization_id = $1", organization_id, cutoff
        )
