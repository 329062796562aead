"""A task taken back from the store is first brought level with the events its stopped process had
published on the bus past its last write: artifacts and agent messages both land in the store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from a2a_gateway.protocol import v1
from a2a_gateway.storage import engine as db
from a2a_gateway.storage.task_repository import SqlTaskRepository
from a2a_gateway.tasks import state
from a2a_gateway.tasks.broker import Delivery, TaskEventBroker
from a2a_gateway.tasks.models import TaskWrite
from a2a_gateway.tasks.replay import Reviver
from a2a_gateway.tasks.runner import TaskRunner
from agents_examples.echo import ECHO_AGENT

NOW = datetime(2026, 12, 4, tzinfo=UTC)


class Bus:
    """Holds what the stopped process published: events 2 and 3, past its last write (event 1)."""

    def __init__(self, events: list[Delivery]) -> None:
        self.events = events

    def publish(self, task_id: str, delivery: Delivery) -> None:
        raise AssertionError("nothing is published here")

    async def flush(self) -> None:
        return None

    async def since(self, task_id: str, after: int) -> list[Delivery]:
        return [d for d in self.events if d.seq >= after]

    async def last(self, task_id: str) -> int:
        return max(d.seq for d in self.events)

    def follow(self, task_id: str, after: int) -> None:
        return None


@pytest.fixture
async def repo(database_url: str) -> AsyncIterator[SqlTaskRepository]:
    engine = db.create_engine(database_url)
    await db.upgrade(engine)
    repository = SqlTaskRepository(engine)
    yield repository
    await repository.close()
    await engine.dispose()


async def test_what_the_bus_holds_past_the_last_write_is_applied_and_stored(repo: SqlTaskRepository) -> None:
    message = v1.Message(message_id="m1", role=v1.Role.USER, parts=[v1.Part(text="go")])
    task = state.new_task("t1", "c1", message, NOW)
    state.set_status(task, v1.TaskState.WORKING, NOW)
    await repo.submit(TaskWrite(task=task, owner="u1", created_at=NOW, messages_from=0, seq=1))
    said = v1.Message(message_id="a1", role=v1.Role.AGENT, parts=[v1.Part(text="half way")], task_id="t1")
    status = v1.TaskStatusUpdateEvent(
        task_id="t1",
        context_id="c1",
        status=v1.TaskStatus(state=v1.TaskState.WORKING, message=said, timestamp=NOW),
    )
    chunk = v1.TaskArtifactUpdateEvent(
        task_id="t1", context_id="c1", artifact=v1.Artifact(artifact_id="x", parts=[v1.Part(text="42")])
    )
    bus = Bus(
        [
            Delivery(v1.StreamResponse(status_update=status), seq=2),
            Delivery(v1.StreamResponse(artifact_update=chunk), seq=3),
        ]
    )
    broker = TaskEventBroker()
    runner = TaskRunner(repo, broker, None, lambda: NOW, lambda live: None, bus=bus)
    reviver = Reviver(ECHO_AGENT, repo, runner, {}, lambda: NOW, bus=bus)
    stored = await repo.positioned("t1", "u1", None)
    assert stored is not None and stored.seq == 1
    live = await reviver.hold(stored.task, "u1", seq=stored.seq)
    assert live.seq == 3  # the next event is numbered 4
    await repo.flush()
    after = await repo.positioned("t1", "u1", None)
    assert after is not None
    assert [p.text for a in after.task.artifacts or [] for p in a.parts] == ["42"]
    assert [m.message_id for m in after.task.history or []] == ["m1", "a1"]
