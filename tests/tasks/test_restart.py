"""Tasks survive a restart; tasks that were mid-flight come back failed with a reason."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

from a2a_gateway.app import create_gateway_app
from a2a_gateway.protocol import v1
from a2a_gateway.storage import engine as db
from a2a_gateway.storage.task_repository import SqlTaskRepository
from a2a_gateway.tasks import state
from a2a_gateway.tasks.models import TaskWrite
from a2a_gateway.tasks.service import RESTARTED, SHUT_DOWN
from agents_examples.echo import ECHO_AGENT
from tests.conftest import make_settings
from tests.factories import rpc, send_text


async def test_graceful_restart_keeps_tasks_and_fails_paused_ones(tmp_path: Path) -> None:
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
        failed = (await rpc(c, "GetTask", {"id": paused["id"]}))["result"]
        assert failed["status"]["state"] == "TASK_STATE_FAILED"
        assert failed["status"]["message"]["parts"][0]["text"] == SHUT_DOWN
        listed = (await rpc(c, "ListTasks", {}))["result"]
        assert listed["totalSize"] == 2


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
