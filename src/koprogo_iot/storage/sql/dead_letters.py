"""Dead letters: `DeadLetterRepository` in portable SQL, and their insertion within ingestion's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from koprogo_iot.domain.dead_letters import DeadLetter
from koprogo_iot.storage.sql.database import Database, Executor
from koprogo_iot.storage.sql.rows import Table

DEAD_LETTERS = Table("dead_letters", DeadLetter, exclude=("id",))  # the id is the database's sequence


async def insert(tx: Executor, letters: Sequence[DeadLetter]) -> None:
    for letter in letters:
        await tx.execute(DEAD_LETTERS.insert(), *DEAD_LETTERS.values(letter))


class SqlDeadLetters:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def recent(
        self, organization_id: UUID | None, reason: str | None = None, limit: int = 100
    ) -> list[DeadLetter]:
        clauses: list[str] = []
        args: list[object] = []
        for column, value in (("organization_id", organization_id), ("reason", reason)):
            if value is not None:
                args.append(value)
                clauses.append(f"{column} = ${len(args)}")
        args.append(limit)
        where = f"WHERE {' AND '.join(clauses)} " if clauses else ""
        rows = await self.db.fetch(
            f"SELECT id, {DEAD_LETTERS.column_list()} FROM dead_letters {where}ORDER BY id DESC LIMIT ${len(args)}",
            *args,
        )
        return [DEAD_LETTERS.decode(r, id=r["id"]) for r in rows]

    async def counts(self, organization_id: UUID | None) -> dict[str, int]:
        if organization_id is None:
            rows = await self.db.fetch("SELECT reason, COUNT(*) AS n FROM dead_letters GROUP BY reason")
        else:
            rows = await self.db.fetch(
                "SELECT reason, COUNT(*) AS n FROM dead_letters WHERE organization_id = $1 GROUP BY reason",
                organization_id,
            )
        return {r["reason"]: int(r["n"]) for r in rows}
