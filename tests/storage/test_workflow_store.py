"""The SQL workflow store and leases on SQLite and (when configured) PostgreSQL: runs round-trip with
their steps, a save from a driver that is behind is refused and writes nothing, events page in order,
reads are owner-scoped, whether saves run in their own transactions or ride the task writer's group
commits; of concurrent takers of one lease exactly one wins, an expired lease is taken
over, and only its holder lets it go."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from a2a_gateway.storage import engine as db
from a2a_gateway.storage.lease import SqlLease
from a2a_gateway.storage.task_writer import TaskWriter
from a2a_gateway.storage.workflow_repository import SqlWorkflowStore
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
from tests.workflows.fakes import T0, Clock


@dataclass
class Env:
    engine: AsyncEngine
    store: SqlWorkflowStore
    clock: Clock


@pytest.fixture(params=["own", "writer"])
async def env(database_url: str, request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    engine = db.create_engine(database_url)
    await db.upgrade(engine)
    writer = TaskWriter(engine) if request.param == "writer" else None
    yield Env(engine, SqlWorkflowStore(engine, writer), Clock())
    if writer is not None:
        await writer.close()
    await engine.dispose()


def workflow(owner: str = "u1", wid: str = "00000000-0000-0000-0000-000000000001") -> Workflow:
    steps = (
        StepSpec("fetch", "a1", "fetch", {"url": "https://x.example"}, (), 120, RetryPolicy(2, 500), 7),
        StepSpec("sum", "a2", "summarize", {"x": {"$ref": "steps.0.output"}}, (0,), 300, RetryPolicy(), 0),
    )
    return Workflow(wid, owner, "Research", "two steps", steps, T0)


def event(run_id: str, seq: int) -> RunEvent:
    return RunEvent(run_id, seq, EventKind.STEP_STARTED, T0, {"runId": run_id, "step": 0})


async def test_workflows_and_runs_round_trip_and_reads_are_owner_scoped(env: Env) -> None:
    wf = workflow()
    await env.store.add_workflow(wf)
    assert await env.store.get_workflow("u1", wf.id) == wf
    assert await env.store.get_workflow("u2", wf.id) is None
    assert await env.store.get_workflow(None, wf.id) == wf
    assert [w.id for w in await env.store.list_workflows("u1", 10, 0)] == [wf.id]
    assert await env.store.list_workflows("u2", 10, 0) == []
    run = Run(
        "r1", wf.id, "u1", RunStatus.RUNNING, [StepRun(0), StepRun(1)], T0, budget=7, inputs={"1": {"a": 1}}
    )
    await env.store.add_run(run, [])
    run.steps[0] = StepRun(
        0,
        StepStatus.COMPLETED,
        2,
        "t2",
        ["t1", "t2"],
        T0,
        T0,
        None,
        None,
        None,
        [{"artifactId": "a", "parts": []}],
    )
    run.seq = 2
    assert await env.store.save_run(run, [event("r1", 1), event("r1", 2)], expected_seq=0)
    assert await env.store.get_run("u1", "r1") == run
    assert await env.store.get_run("u2", "r1") is None
    assert [r.id for r in await env.store.open_runs()] == ["r1"]
    assert [r.id for r in await env.store.runs_of(wf.id, 5)] == ["r1"]
    assert [e.seq for e in await env.store.events_after("r1", 0, 10)] == [1, 2]
    assert [e.seq for e in await env.store.events_after("r1", 1, 10)] == [2]


async def test_a_save_from_a_driver_that_is_behind_writes_nothing(env: Env) -> None:
    wf = workflow()
    await env.store.add_workflow(wf)
    run = Run("r1", wf.id, "u1", RunStatus.RUNNING, [StepRun(0)], T0)
    await env.store.add_run(run, [])
    run.seq = 1
    assert await env.store.save_run(run, [event("r1", 1)], expected_seq=0)
    stale = run.copy()
    stale.status = RunStatus.CANCELED
    stale.seq = 1
    assert not await env.store.save_run(stale, [event("r1", 1)], expected_seq=0)  # another moved it on
    stored = await env.store.get_run(None, "r1")
    assert stored is not None and stored.status is RunStatus.RUNNING
    assert len(await env.store.events_after("r1", 0, 10)) == 1


async def test_one_of_many_concurrent_takers_gets_a_lease(env: Env) -> None:
    lease = SqlLease(env.engine, clock=env.clock)
    won = await asyncio.gather(*(lease.acquire("run:1", f"p{i}", 30) for i in range(8)))
    assert sum(won) == 1
    holder = f"p{won.index(True)}"
    assert await lease.acquire("run:1", holder, 30)  # its holder extends it
    assert not await lease.acquire("run:1", "other", 30)
    await lease.release("run:1", "other")  # not the holder's: nothing happens
    assert not await lease.acquire("run:1", "other", 30)
    env.clock.advance(31)
    assert await lease.acquire("run:1", "other", 30)  # expired: taken over
    assert not await lease.acquire("run:1", holder, 30)
    await lease.release("run:1", "other")
    assert await lease.acquire("run:1", holder, 30)


async def test_concurrent_saves_of_many_runs_each_keep_their_own_outcome(env: Env) -> None:
    wf = workflow()
    await env.store.add_workflow(wf)
    runs = [Run(f"r{i}", wf.id, "u1", RunStatus.RUNNING, [StepRun(0)], T0) for i in range(4)]
    for run in runs:
        await env.store.add_run(run, [])
        run.seq = 1
    # r2's driver is behind (it expects seq 5): its save is refused, the others' in the same batch stand.
    expected = [0, 0, 5, 0]
    saved = await asyncio.gather(
        *(env.store.save_run(r, [event(r.id, 1)], seq) for r, seq in zip(runs, expected, strict=True))
    )
    assert saved == [True, True, False, True]
    for run, ok in zip(runs, saved, strict=True):
        stored = await env.store.get_run(None, run.id)
        assert stored is not None and stored.seq == (1 if ok else 0)
        assert len(await env.store.events_after(run.id, 0, 10)) == (1 if ok else 0)
