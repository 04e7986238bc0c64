"""What ingestion refused: dead letters, for operators and syndics."""

from fastapi import APIRouter, Query

from koprogo_iot.api.deps import PrincipalDep, ServicesDep
from koprogo_iot.api.inputs import Text
from koprogo_iot.api.schemas import DeadLetterOut

router = APIRouter(prefix="/ingest", tags=["ingestion"])


@router.get("/dead-letters", response_model=list[DeadLetterOut])
async def list_dead_letters(
    principal: PrincipalDep,
    services: ServicesDep,
    reason: Text | None = Query(None, description="e.g. invalid_json, unknown_sensor, rate_limited"),
    limit: int = Query(100, ge=1, le=1000),
) -> object:
    """Newest first: the topic, the start of the payload, the reason and its explanation."""
    return await services.monitoring.dead_letters(principal, reason, limit)


@router.get("/dead-letters/counts")
async def count_dead_letters(principal: PrincipalDep, services: ServicesDep) -> dict[str, int]:
    """Dead letters kept, by reason."""
    return await services.monitoring.dead_letter_counts(principal)
