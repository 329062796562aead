"""SqlCallLog: routed-call records, written in the task writer's group commits."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from a2a_gateway.routing.calls import RoutedCall
from a2a_gateway.storage.tables import routed_calls
from a2a_gateway.storage.task_writer import TaskWriter
from a2a_gateway.storage.timestamps import from_micros


def _call(r: Row[Any]) -> RoutedCall:
    started = from_micros(r.started_us)
    assert started is not None
    return RoutedCall(
        task_id=r.task_id,
        requester=r.requester,
        agent_id=r.agent_id,
        skill_id=r.skill_id,
        started_at=started,
        upstream_task_id=r.upstream_task_id,
        upstream_context_id=r.upstream_context_id,
        first_response_ms=r.first_response_ms,
        finished_at=from_micros(r.finished_us),
        outcome=r.outcome,
        error=r.error,
    )


class SqlCallLog:
    """Implements routing.ports.CallLog; a record commits in the same batch as its task's writes."""

    def __init__(self, engine: AsyncEngine, writer: TaskWriter) -> None:
        self._engine = engine
        self._writer = writer

    def record(self, call: RoutedCall) -> None:
        """Queue the record (failures are logged by the writer)."""
        self._writer.submit_call(call)

    async def get(self, task_id: str) -> RoutedCall | None:
        """One record by gateway task id."""
        await self._writer.flush()
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(routed_calls).where(routed_calls.c.task_id == task_id))).first()
        return None if row is None else _call(row)

    async def unfinished(self, task_ids: Collection[str] | None = None) -> list[RoutedCall]:
        """Records without an outcome (of ``task_ids``, when given), oldest first."""
        await self._writer.flush()
        query = select(routed_calls).where(routed_calls.c.outcome.is_(None))
        if task_ids is not None:
            query = query.where(routed_calls.c.task_id.in_(list(task_ids)))
        async with self._engine.connect() as conn:
            rows = await conn.execute(query.order_by(routed_calls.c.started_us))
            return [_call(r) for r in rows]
