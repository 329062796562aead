"""SqlWorkflowStore: workflows, runs and run events in SQL (implements workflows.ports.WorkflowStore).

A run's steps and inputs are JSON columns; a save updates the run row only if its ``seq`` is still the
one the driver saved last, and inserts the run's new events in the same transaction. Given the task
writer, saves ride its group commits (with the step tasks' own writes) instead of a transaction each.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from a2a_gateway.storage.tables import workflow_run_events, workflow_runs, workflows
from a2a_gateway.storage.task_writer import RUN_COLUMNS, RunSave, TaskWriter
from a2a_gateway.storage.timestamps import from_micros, micros
from a2a_gateway.workflows.models import (
    EventKind,
    RetryPolicy,
    Run,
    RunEvent,
    RunStatus,
    StepRun,
    StepSpec,
    StepStatus,
    Workflow,
)

W, R, E = workflows.c, workflow_runs.c, workflow_run_events.c


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _at(value: datetime | None) -> int | None:
    return micros(value) if value is not None else None


def _step_spec(raw: dict[str, Any]) -> StepSpec:
    return StepSpec(
        name=raw["name"],
        agent_id=raw["agentId"],
        skill_id=raw["skillId"],
        input=raw["input"],
        depends_on=tuple(raw["dependsOn"]),
        timeout_s=raw["timeout"],
        retry=RetryPolicy(raw["maxRetries"], raw["backoffMs"]),
        price=raw["price"],
    )


def _spec_json(step: StepSpec) -> dict[str, Any]:
    return {
        "name": step.name,
        "agentId": step.agent_id,
        "skillId": step.skill_id,
        "input": step.input,
        "dependsOn": list(step.depends_on),
        "timeout": step.timeout_s,
        "maxRetries": step.retry.max_retries,
        "backoffMs": step.retry.backoff_ms,
        "price": step.price,
    }


def _step_json(step: StepRun) -> dict[str, Any]:
    return {
        "index": step.index,
        "status": step.status.value,
        "attempt": step.attempt,
        "taskId": step.task_id,
        "taskIds": step.task_ids,
        "startedUs": _at(step.started_at),
        "endedUs": _at(step.ended_at),
        "retryUs": _at(step.retry_at),
        "error": step.error,
        "question": step.question,
        "output": step.output,
    }


def _step_run(raw: dict[str, Any]) -> StepRun:
    return StepRun(
        index=raw["index"],
        status=StepStatus(raw["status"]),
        attempt=raw["attempt"],
        task_id=raw["taskId"],
        task_ids=list(raw["taskIds"]),
        started_at=from_micros(raw["startedUs"]),
        ended_at=from_micros(raw["endedUs"]),
        retry_at=from_micros(raw["retryUs"]),
        error=raw["error"],
        question=raw["question"],
        output=raw["output"],
    )


def _workflow(row: Row[Any]) -> Workflow:
    created = from_micros(row.created_us)
    assert created is not None
    return Workflow(
        id=row.id,
        owner_id=row.owner_id,
        name=row.name,
        description=row.description,
        steps=tuple(_step_spec(s) for s in orjson.loads(row.steps)),
        created_at=created,
    )


def _run(row: Row[Any]) -> Run:
    created = from_micros(row.created_us)
    assert created is not None
    return Run(
        id=row.id,
        workflow_id=row.workflow_id,
        owner_id=row.owner_id,
        status=RunStatus(row.status),
        steps=[_step_run(s) for s in orjson.loads(row.steps)],
        created_at=created,
        budget=row.budget,
        ended_at=from_micros(row.ended_us),
        error=row.error,
        seq=row.seq,
        inputs=orjson.loads(row.inputs),
    )


def _run_values(run: Run) -> dict[str, Any]:
    return {
        "status": run.status.value,
        "steps": _dumps([_step_json(s) for s in run.steps]),
        "inputs": _dumps(run.inputs),
        "budget": run.budget,
        "seq": run.seq,
        "error": run.error,
        "ended_us": _at(run.ended_at),
    }


def _event_rows(events: Sequence[RunEvent]) -> list[dict[str, Any]]:
    return [
        {
            "run_id": e.run_id,
            "seq": e.seq,
            "kind": e.kind.value,
            "at_us": micros(e.at),
            "data": _dumps(e.data),
        }
        for e in events
    ]


class SqlWorkflowStore:
    """Implements workflows.ports.WorkflowStore on SQLite or PostgreSQL."""

    def __init__(self, engine: AsyncEngine, writer: TaskWriter | None = None) -> None:
        self._engine = engine
        self._writer = writer

    async def add_workflow(self, workflow: Workflow) -> None:
        """Store a new workflow."""
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(workflows).values(
                    id=workflow.id,
                    owner_id=workflow.owner_id,
                    name=workflow.name,
                    description=workflow.description,
                    steps=_dumps([_spec_json(s) for s in workflow.steps]),
                    created_us=micros(workflow.created_at),
                )
            )

    async def get_workflow(self, owner_id: str | None, workflow_id: str) -> Workflow | None:
        """A workflow if ``owner_id`` owns it (any owner when None)."""
        query = select(workflows).where(W.id == workflow_id)
        if owner_id is not None:
            query = query.where(W.owner_id == owner_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _workflow(row) if row is not None else None

    async def list_workflows(self, owner_id: str, limit: int, offset: int) -> list[Workflow]:
        """The owner's workflows, newest first."""
        query = (
            select(workflows)
            .where(W.owner_id == owner_id)
            .order_by(W.created_us.desc(), W.id)
            .limit(limit)
            .offset(offset)
        )
        async with self._engine.connect() as conn:
            return [_workflow(r) for r in await conn.execute(query)]

    async def add_run(self, run: Run, events: Sequence[RunEvent]) -> None:
        """Store a new run and its first events."""
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(workflow_runs).values(
                    id=run.id,
                    workflow_id=run.workflow_id,
                    owner_id=run.owner_id,
                    created_us=micros(run.created_at),
                    **_run_values(run),
                )
            )
            if events:
                await conn.execute(insert(workflow_run_events), _event_rows(events))

    async def save_run(self, run: Run, events: Sequence[RunEvent], expected_seq: int) -> bool:
        """Store the run's state and new events if its stored ``seq`` is still ``expected_seq``."""
        if self._writer is not None:
            values = _run_values(run)
            save = RunSave(run.id, expected_seq, {c: values[c] for c in RUN_COLUMNS}, _event_rows(events))
            return await self._writer.submit_run(save)
        async with self._engine.begin() as conn:
            updated = await conn.execute(
                update(workflow_runs).where(R.id == run.id, R.seq == expected_seq).values(**_run_values(run))
            )
            if updated.rowcount != 1:
                return False
            if events:
                await conn.execute(insert(workflow_run_events), _event_rows(events))
        return True

    async def get_run(self, owner_id: str | None, run_id: str) -> Run | None:
        """A run if ``owner_id`` owns it (any owner when None)."""
        query = select(workflow_runs).where(R.id == run_id)
        if owner_id is not None:
            query = query.where(R.owner_id == owner_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _run(row) if row is not None else None

    async def runs_of(self, workflow_id: str, limit: int) -> list[Run]:
        """A workflow's most recent runs, newest first."""
        query = (
            select(workflow_runs)
            .where(R.workflow_id == workflow_id)
            .order_by(R.created_us.desc(), R.id)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [_run(r) for r in await conn.execute(query)]

    async def open_runs(self) -> list[Run]:
        """Runs that have not ended, oldest first."""
        query = select(workflow_runs).where(R.status == RunStatus.RUNNING.value).order_by(R.created_us)
        async with self._engine.connect() as conn:
            return [_run(r) for r in await conn.execute(query)]

    async def events_after(self, run_id: str, after_seq: int, limit: int) -> list[RunEvent]:
        """A run's events numbered above ``after_seq``, in order."""
        query = (
            select(workflow_run_events)
            .where(E.run_id == run_id, E.seq > after_seq)
            .order_by(E.seq)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            rows = list(await conn.execute(query))
        out = []
        for r in rows:
            at = from_micros(r.at_us)
            assert at is not None
            out.append(RunEvent(r.run_id, r.seq, EventKind(r.kind), at, orjson.loads(r.data)))
        return out
