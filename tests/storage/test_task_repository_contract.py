"""The task repository contract, run on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from a2a_gateway.protocol import v1
from a2a_gateway.storage import engine as db
from a2a_gateway.storage.task_repository import SqlTaskRepository
from a2a_gateway.tasks import state
from a2a_gateway.tasks.models import TaskOrigin, TaskQuery, TaskWrite

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
async def repo(database_url: str) -> AsyncIterator[SqlTaskRepository]:
    engine = db.create_engine(database_url)
    await db.upgrade(engine)
    repository = SqlTaskRepository(engine)
    yield repository
    await repository.close()
    await engine.dispose()


def message(text: str, task_id: str, context_id: str = "ctx") -> v1.Message:
    return v1.Message(
        message_id=f"m-{text}",
        role=v1.Role.USER,
        parts=[v1.Part(text=text)],
        task_id=task_id,
        context_id=context_id,
    )


def new(task_id: str, at: datetime = T0, context_id: str = "ctx") -> v1.Task:
    return state.new_task(task_id, context_id, message("hi", task_id, context_id), at)


async def write(
    repo: SqlTaskRepository,
    task: v1.Task,
    owner: str = "alice",
    saved: int = 0,
    artifacts: set[str] | None = None,
    origin: TaskOrigin | None = None,
) -> None:
    await repo.submit(
        TaskWrite(
            task=task,
            owner=owner,
            created_at=T0,
            messages_from=saved,
            artifact_ids=artifacts or set(),
            origin=origin,
        )
    )


async def test_schema_is_at_head(database_url: str) -> None:
    engine = db.create_engine(database_url)
    try:
        assert await db.current_revision(engine) is None
        await db.upgrade(engine)
        await db.upgrade(engine)  # idempotent
        assert await db.current_revision(engine) == "0013"
    finally:
        await engine.dispose()


async def test_round_trip_with_history_and_artifacts(repo: SqlTaskRepository) -> None:
    task = new("t1")
    await write(repo, task)
    state.set_status(task, v1.TaskState.WORKING, T0 + timedelta(seconds=1))
    art = v1.Artifact(artifact_id="a1", name="out", parts=[v1.Part(text="one")])
    state.put_artifact(task, art, append=False)
    state.put_artifact(task, v1.Artifact(artifact_id="a1", parts=[v1.Part(text="two")]), append=True)
    done = state.agent_message(task, [v1.Part(text="done")])
    state.set_status(task, v1.TaskState.COMPLETED, T0 + timedelta(seconds=2), done)
    await write(repo, task, saved=1, artifacts={"a1"})

    got = await repo.get("t1", "alice", None)
    assert got is not None
    assert got.wire() == task.wire()
    assert got.status.state is v1.TaskState.COMPLETED
    assert [p.text for p in got.artifacts[0].parts] == ["one", "two"]  # type: ignore[index]
    trimmed = await repo.get("t1", "alice", 1)
    assert trimmed is not None and [m.message_id for m in trimmed.history or []] == [done.message_id]
    none = await repo.get("t1", "alice", 0)
    assert none is not None and none.history is None


async def test_reads_are_owner_scoped(repo: SqlTaskRepository) -> None:
    await write(repo, new("t-own"), owner="alice")
    assert await repo.get("t-own", "bob", None) is None
    page = await repo.list_tasks(TaskQuery(owner="bob"))
    assert page.tasks == [] and page.total_size == 0


async def test_concurrent_writes_coalesce_and_all_commit(repo: SqlTaskRepository) -> None:
    tasks = [new(f"c{i}", T0 + timedelta(seconds=i)) for i in range(10)]
    writes = [repo.submit(TaskWrite(task=t, owner="alice", created_at=T0, messages_from=0)) for t in tasks]
    for t in tasks:
        state.set_status(t, v1.TaskState.COMPLETED, T0 + timedelta(minutes=1))
        writes.append(repo.submit(TaskWrite(task=t, owner="alice", created_at=T0, messages_from=1)))
    for w in writes:
        await w
    page = await repo.list_tasks(TaskQuery(owner="alice", page_size=100))
    assert page.total_size == 10
    assert {t.status.state for t in page.tasks} == {v1.TaskState.COMPLETED}
    assert all(len(t.history or []) == 1 for t in page.tasks)


async def test_listing_filters_and_keyset_pages(repo: SqlTaskRepository) -> None:
    for i in range(7):
        task = new(f"l{i}", T0 + timedelta(seconds=i), context_id="even" if i % 2 == 0 else "odd")
        await write(repo, task)
    seen: list[str] = []
    token = ""
    while True:
        page = await repo.list_tasks(TaskQuery(owner="alice", page_size=3, page_token=token or None))
        seen += [t.id for t in page.tasks]
        token = page.next_page_token
        assert page.total_size == 7
        if not token:
            break
    assert seen == [f"l{i}" for i in range(6, -1, -1)]
    even = await repo.list_tasks(TaskQuery(owner="alice", context_id="even"))
    assert [t.id for t in even.tasks] == ["l6", "l4", "l2", "l0"]
    recent = await repo.list_tasks(TaskQuery(owner="alice", status_after=T0 + timedelta(seconds=5)))
    assert [t.id for t in recent.tasks] == ["l6", "l5"]
    working = await repo.list_tasks(TaskQuery(owner="alice", state=v1.TaskState.WORKING))
    assert working.total_size == 0


async def test_fail_inflight_marks_only_unfinished_tasks(repo: SqlTaskRepository) -> None:
    running = new("r1")
    await write(repo, running)
    finished = new("f1")
    state.set_status(finished, v1.TaskState.COMPLETED, T0)
    await write(repo, finished)
    note = v1.Message(message_id="restart", role=v1.Role.AGENT, parts=[v1.Part(text="restarted")])
    count = await repo.fail_inflight(v1.TaskStatus(state=v1.TaskState.FAILED, message=note, timestamp=T0))
    assert count == 1
    got = await repo.get("r1", "alice", None)
    assert got is not None and got.status.state is v1.TaskState.FAILED
    assert got.status.message is not None and got.status.message.task_id == "r1"
    assert got.history is not None and got.history[-1].parts[0].text == "restarted"
    kept = await repo.get("f1", "alice", None)
    assert kept is not None and kept.status.state is v1.TaskState.COMPLETED
    assert await repo.count_by_state() == {"TASK_STATE_FAILED": 1, "TASK_STATE_COMPLETED": 1}


async def test_push_configs(repo: SqlTaskRepository) -> None:
    await write(repo, new("p1"))
    first = v1.TaskPushNotificationConfig(id="a", task_id="p1", url="https://example.com/a", token="tok")
    second = v1.TaskPushNotificationConfig(id="b", task_id="p1", url="https://example.com/b")
    await repo.put_push_config("p1", first)
    await repo.put_push_config("p1", second)
    await repo.put_push_config("p1", first.model_copy(update={"token": "new"}))
    assert (await repo.get_push_config("p1", "a")).token == "new"  # type: ignore[union-attr]
    assert {c.id for c in await repo.list_push_configs("p1")} == {"a", "b"}
    assert await repo.delete_push_config("p1", "a") is True
    assert await repo.delete_push_config("p1", "a") is False
    assert await repo.get_push_config("p1", "a") is None


async def test_origin_is_stored_with_the_first_write_and_read_by_its_owner(repo: SqlTaskRepository) -> None:
    task = new("o1")
    origin = TaskOrigin("ask", {"skillId": "ask", "nested": {"n": [1, 2]}}, streaming=True)
    await write(repo, task, origin=origin)
    state.set_status(task, v1.TaskState.INPUT_REQUIRED, T0)
    await write(repo, task, saved=1, origin=TaskOrigin("other"))  # a later write does not replace it
    assert await repo.origin("o1", "alice") == origin
    assert await repo.origin("o1", "bob") is None
    await write(repo, new("o2"))
    assert await repo.origin("o2", "alice") is None


async def test_fail_inflight_spares_paused_tasks_of_the_named_skills(repo: SqlTaskRepository) -> None:
    def paused(task_id: str, wanted: v1.TaskState = v1.TaskState.INPUT_REQUIRED) -> v1.Task:
        task = new(task_id)
        state.set_status(task, wanted, T0)
        return task

    await write(repo, paused("ask"), origin=TaskOrigin("ask"))
    await write(repo, paused("auth", v1.TaskState.AUTH_REQUIRED), origin=TaskOrigin("ask"))
    await write(repo, paused("gone"), origin=TaskOrigin("removed-skill"))
    await write(repo, paused("old"))  # written before origins were stored
    await write(repo, paused("relay"))  # kept: resumed elsewhere
    working = new("working")
    state.set_status(working, v1.TaskState.WORKING, T0)
    await write(repo, working, origin=TaskOrigin("ask"))
    failed = v1.TaskStatus(state=v1.TaskState.FAILED, timestamp=T0)
    assert await repo.fail_inflight(failed, keep=["relay"], paused_skills=["ask"]) == 3
    states = {t.id: t.status.state for t in (await repo.list_tasks(TaskQuery(owner="alice"))).tasks}
    assert states == {
        "ask": v1.TaskState.INPUT_REQUIRED,
        "auth": v1.TaskState.AUTH_REQUIRED,
        "relay": v1.TaskState.INPUT_REQUIRED,
        "gone": v1.TaskState.FAILED,
        "old": v1.TaskState.FAILED,
        "working": v1.TaskState.FAILED,
    }


async def test_a_windowed_task_drops_its_oldest_artifacts_and_keeps_the_rest_in_order(
    repo: SqlTaskRepository,
) -> None:
    task = new("w1")
    assert task.artifacts is not None
    for n in range(1, 6):
        task.artifacts.append(v1.Artifact(artifact_id=f"a{n}", parts=[v1.Part(text=str(n))]))
    await write(repo, task, artifacts={f"a{n}" for n in range(1, 6)})
    # The window moves on: a1 and a2 go, a6 arrives; a3..a5 are not rewritten and keep their place.
    del task.artifacts[:2]
    task.artifacts.append(v1.Artifact(artifact_id="a6", parts=[v1.Part(text="6")]))
    await repo.submit(
        TaskWrite(
            task=task,
            owner="alice",
            created_at=T0,
            messages_from=1,
            artifact_ids={"a6"},
            dropped_artifact_ids={"a1", "a2"},
            artifact_seq_base=2,
        )
    )
    stored = await repo.get("w1", "alice", None)
    assert stored is not None
    assert [a.artifact_id for a in stored.artifacts or []] == ["a3", "a4", "a5", "a6"]
