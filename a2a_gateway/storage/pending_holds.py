"""What the sweeper looks at: pending holds with their tasks' states, open run budgets with their runs'
(reads only; settling and closing go through the ledger)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from a2a_gateway.billing.sweep import OpenBudget, PendingHold
from a2a_gateway.storage.tables import ledger_budgets, ledger_holds, tasks, workflow_runs
from a2a_gateway.storage.timestamps import from_micros


class SqlPendingHolds:
    """Reads pending holds, oldest first, joined to their tasks."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def pending(self, limit: int = 500) -> list[PendingHold]:
        """Up to ``limit`` pending holds, oldest first."""
        query = (
            select(
                ledger_holds.c.task_id,
                ledger_holds.c.created_us,
                tasks.c.state,
                tasks.c.owner,
                tasks.c.status_ts,
            )
            .select_from(ledger_holds.outerjoin(tasks, tasks.c.id == ledger_holds.c.task_id))
            .where(ledger_holds.c.state == "pending")
            .order_by(ledger_holds.c.created_us, ledger_holds.c.task_id)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        found: list[PendingHold] = []
        for task_id, created_us, state, owner, status_ts in rows:
            created = from_micros(created_us)
            assert created is not None
            found.append(PendingHold(task_id, created, state, owner, from_micros(status_ts)))
        return found

    async def open_budgets(self, limit: int = 500) -> list[OpenBudget]:
        """Up to ``limit`` open run budgets, oldest first, with whether their runs have ended."""
        b, r = ledger_budgets.c, workflow_runs.c
        query = (
            select(b.run_id, b.created_us, r.status)
            .select_from(ledger_budgets.outerjoin(workflow_runs, r.id == b.run_id))
            .where(b.state == "open")
            .order_by(b.created_us, b.run_id)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        found: list[OpenBudget] = []
        for run_id, created_us, status in rows:
            created = from_micros(created_us)
            assert created is not None
            found.append(OpenBudget(run_id, created, None if status is None else status != "running"))
        return found

    async def totals(self) -> dict[str, tuple[int, int]]:
        """Holds by state: (how many, credits), for the metrics."""
        query = select(ledger_holds.c.state, func.count(), func.coalesce(func.sum(ledger_holds.c.price), 0))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query.group_by(ledger_holds.c.state))).all()
        return {state: (int(count), int(credits)) for state, count, credits in rows}
