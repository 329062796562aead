"""The task writer. On SQLite it commits on the event loop: it must not stall the loop, or fail, while
another connection holds the write lock (that connection may need the loop to finish its transaction).
On every database, a row that cannot be written fails its own write, not the batch it shares."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from a2a_gateway.errors import Unavailable
from a2a_gateway.protocol import v1
from a2a_gateway.routing.calls import RoutedCall
from a2a_gateway.storage import engine as db
from a2a_gateway.storage.task_repository import SqlTaskRepository
from a2a_gateway.storage.task_writer import RunSave
from a2a_gateway.tasks import state
from a2a_gateway.tasks.models import TaskWrite


def _write(task_id: str) -> TaskWrite:
    msg = v1.Message(
        message_id="m", role=v1.Role.USER, parts=[v1.Part(text="x")], task_id=task_id, context_id="c"
    )
    now = datetime.now(UTC)
    return TaskWrite(task=state.new_task(task_id, "c", msg, now), owner="o", created_at=now, messages_from=0)


async def test_writer_waits_for_another_connections_write_lock(tmp_path: Path) -> None:
    engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    await db.upgrade(engine)
    repo = SqlTaskRepository(engine)
    try:
        async with engine.begin() as conn:
            # This transaction holds SQLite's write lock across awaits, as any async write does.
            await conn.execute(text("INSERT INTO login_failures (identifier, at_us) VALUES ('x', 1)"))
            written = repo.submit(_write("t1"))
            # The loop keeps running while the writer waits for the lock.
            for _ in range(5):
                await asyncio.sleep(0.01)
            assert not written.done()  # type: ignore[attr-defined]
        await asyncio.wait_for(written, 5)
        assert await repo.get("t1", "o", None) is not None
    finally:
        await repo.close()
        await engine.dispose()


def _nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.fixture
async def repo(database_url: str) -> AsyncIterator[SqlTaskRepository]:
    engine = db.create_engine(database_url)
    await db.upgrade(engine)
    repository = SqlTaskRepository(engine)
    yield repository
    await repository.close()
    await engine.dispose()


async def test_a_row_the_database_refuses_fails_only_its_own_write(repo: SqlTaskRepository) -> None:
    refused = _write("bad")
    refused.owner = None  # type: ignore[assignment]  # NOT NULL: the database refuses this row
    writes = [repo.submit(_write("ok1")), repo.submit(refused), repo.submit(_write("ok2"))]
    outcomes = await asyncio.gather(*writes, return_exceptions=True)
    # Regression (issue 8, 1.10): the whole batch failed, other callers' tasks with it.
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], Unavailable)
    assert await repo.get("ok1", "o", None) is not None
    assert await repo.get("ok2", "o", None) is not None
    assert await repo.get("bad", "o", None) is None


async def test_a_write_that_cannot_be_serialized_fails_alone(repo: SqlTaskRepository) -> None:
    deep = _write("deep")
    assert deep.task.history is not None
    deep.task.history.append(
        v1.Message(message_id="d", role=v1.Role.USER, parts=[v1.Part(data=_nested(400))], task_id="deep")
    )
    outcomes = await asyncio.gather(repo.submit(_write("fine")), repo.submit(deep), return_exceptions=True)
    assert outcomes[0] is None and isinstance(outcomes[1], Unavailable)
    assert await repo.get("fine", "o", None) is not None


async def test_a_refused_call_record_fails_alone(repo: SqlTaskRepository) -> None:
    writer = repo.writer
    now = datetime.now(UTC)
    good = RoutedCall(task_id="c1", requester="o", agent_id="a", skill_id=None, started_at=now)
    bad = RoutedCall(task_id="c2", requester=None, agent_id="a", skill_id=None, started_at=now)  # type: ignore[arg-type]
    outcomes = await asyncio.gather(
        writer.submit_call(good), writer.submit_call(bad), repo.submit(_write("t")), return_exceptions=True
    )
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], Unavailable)


async def test_run_saves_share_batches_and_a_refused_one_fails_alone(repo: SqlTaskRepository) -> None:
    engine = repo.writer._engine
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO workflows (id, owner_id, name, description, steps, created_us)"
                " VALUES ('w', 'o', 'n', '', '[]', 1)"
            )
        )
        for run_id in ("r1", "r2"):
            await conn.execute(
                text(
                    "INSERT INTO workflow_runs"
                    " (id, workflow_id, owner_id, status, steps, inputs, budget, seq, created_us)"
                    f" VALUES ('{run_id}', 'w', 'o', 'running', '[]', '{{}}', 0, 0, 1)"
                )
            )
    values = {"status": "running", "steps": "[]", "inputs": "{}", "budget": 0, "seq": 1, "error": None}
    event = {"run_id": "r1", "seq": 1, "kind": "step.started", "at_us": 1, "data": "{}"}
    good = RunSave("r1", 0, {**values, "ended_us": None}, [event])
    bad = RunSave("r2", 0, {**values, "status": None, "ended_us": None})  # NOT NULL: refused
    writer = repo.writer
    outcomes = await asyncio.gather(
        writer.submit_run(good), writer.submit_run(bad), repo.submit(_write("t")), return_exceptions=True
    )
    assert outcomes[0] is True and outcomes[2] is None
    assert isinstance(outcomes[1], Unavailable)
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT id, seq FROM workflow_runs"))).all()
        seqs = {run_id: seq for run_id, seq in rows}
        events = (await conn.execute(text("SELECT count(*) FROM workflow_run_events"))).scalar_one()
    assert seqs == {"r1": 1, "r2": 0} and events == 1
    assert await repo.get("t", "o", None) is not None
