"""Tasks survive a restart: finished ones as they were, paused ones still paused and answerable; only
work that was really running comes back failed, with a reason."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

from a2a_gateway.app import create_agent_app, create_gateway_app
from a2a_gateway.protocol import v1
from a2a_gateway.storage import engine as db
from a2a_gateway.storage.task_repository import SqlTaskRepository
from a2a_gateway.tasks import state
from a2a_gateway.tasks.models import TaskWrite
from a2a_gateway.tasks.service import RESTARTED
from agents_examples.echo import ECHO_AGENT
from tests.conftest import make_settings
from tests.factories import rpc, send_text, user_message


async def answer(c: httpx.AsyncClient, task_id: str, text: str) -> dict[str, object]:
    body = await rpc(c, "SendMessage", {"message": user_message(text, taskId=task_id)})
    assert "result" in body, body
    task: dict[str, object] = body["result"]["task"]
    return task


async def test_graceful_restart_keeps_tasks_and_paused_ones_stay_answerable(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    first = create_gateway_app(settings, local_skills=ECHO_AGENT.skills)
    async with (
        LifespanManager(first),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=first), base_url="http://t") as c,
    ):
        done = await send_text(c, "kept")
        paused = await send_text(c, skill="ask")
    second = create_gateway_app(settings, local_skills=ECHO_AGENT.skills)
    async with (
        LifespanManager(second),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=second), base_url="http://t") as c,
    ):
        got = (await rpc(c, "GetTask", {"id": done["id"]}))["result"]
        assert got["status"]["state"] == "TASK_STATE_COMPLETED"
        assert got["artifacts"][0]["parts"] == [{"text": "kept"}]
        # Regression (issue 8, 2.1): the paused task came back failed ("shut down while in flight").
        still = (await rpc(c, "GetTask", {"id": paused["id"]}))["result"]
        assert still["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
        greeted = await answer(c, paused["id"], "Ada")
        assert greeted["status"]["state"] == "TASK_STATE_COMPLETED"
        assert greeted["artifacts"] == [
            {
                "artifactId": greeted["artifacts"][0]["artifactId"],
                "name": "greeting",
                "parts": [{"text": "Hello, Ada!"}],
            }  # type: ignore[index]
        ]
        listed = (await rpc(c, "ListTasks", {}))["result"]
        assert listed["totalSize"] == 2


async def test_a_kit_agent_keeps_paused_tasks_through_a_hard_restart(tmp_path: Path) -> None:
    live_dir, crash_dir = tmp_path / "live", tmp_path / "crash"
    first = create_agent_app(ECHO_AGENT, make_settings(live_dir))
    async with (
        LifespanManager(first),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=first), base_url="http://t") as c,
    ):
        paused = await send_text(c, skill="ask")
        running = await send_text(c, "50", skill="countdown", returnImmediately=True)
        # What a kill -9 leaves behind: the data folder as it is now, database and write-ahead log.
        shutil.copytree(live_dir, crash_dir, ignore=shutil.ignore_patterns("*.lock"))
    second = create_agent_app(ECHO_AGENT, make_settings(crash_dir))
    async with (
        LifespanManager(second),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=second), base_url="http://t") as c,
    ):
        lost = (await rpc(c, "GetTask", {"id": running["id"]}))["result"]
        assert lost["status"]["state"] == "TASK_STATE_FAILED"
        assert lost["status"]["message"]["parts"][0]["text"] == RESTARTED
        still = (await rpc(c, "GetTask", {"id": paused["id"]}))["result"]
        assert still["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
        greeted = await answer(c, paused["id"], "Grace")
        assert greeted["status"]["state"] == "TASK_STATE_COMPLETED"
        assert greeted["artifacts"][0]["parts"] == [{"text": "Hello, Grace!"}]  # type: ignore[index]
        history = (await rpc(c, "GetTask", {"id": paused["id"]}))["result"]["history"]
        assert [m["role"] for m in history] == ["ROLE_USER", "ROLE_AGENT", "ROLE_USER"]


async def test_crash_leaves_tasks_that_the_next_start_marks_failed(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    # A previous process wrote a working task and died without shutting down.
    engine = db.create_engine(settings.resolved_database_url())
    await db.upgrade(engine)
    repo = SqlTaskRepository(engine)
    msg = v1.Message(
        message_id="m", role=v1.Role.USER, parts=[v1.Part(text="x")], task_id="crashed", context_id="c"
    )
    now = datetime.now(UTC)
    task = state.new_task("crashed", "c", msg, now)
    state.set_status(task, v1.TaskState.WORKING, now)
    await repo.submit(TaskWrite(task=task, owner="anonymous", created_at=now, messages_from=0))
    await repo.close()
    await engine.dispose()

    app = create_gateway_app(settings, local_skills=ECHO_AGENT.skills)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        got = (await rpc(c, "GetTask", {"id": "crashed"}))["result"]
        assert got["status"]["state"] == "TASK_STATE_FAILED"
        assert got["status"]["message"]["parts"][0]["text"] == RESTARTED
        assert got["history"][-1]["parts"][0]["text"] == RESTARTED
