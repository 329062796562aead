"""How large a task may grow, over in-memory fakes: past its artifacts, history or bytes limit a task fails
with the reason and its skill is stopped; a subscription keeps a rolling window and never fails."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest

from a2a_gateway.agent import (
    AgentDefinition,
    AgentEvent,
    ArtifactChunk,
    InputRequired,
    SkillContext,
    Status,
    skill,
)
from a2a_gateway.protocol import v1
from a2a_gateway.tasks.broker import TaskEventBroker
from a2a_gateway.tasks.limits import TaskLimits
from a2a_gateway.tasks.service import TaskService
from tests.factories import Clock
from tests.fakes import FakeTaskRepository

Events = AsyncGenerator[AgentEvent, v1.Message | None]
LIMITS = TaskLimits(max_artifacts=5, max_history=6, max_bytes=2_000, window=3)
stopped: list[str] = []
release = asyncio.Event()


@skill("flood", "Flood", "A new artifact per event, forever")
async def flood(ctx: SkillContext) -> Events:
    try:
        n = 0
        while True:
            n += 1
            yield ArtifactChunk.of_text(f"#{n}", artifact_id=f"a{n}")
    finally:
        stopped.append(ctx.task_id)


@skill("grow", "Grow", "Appends to one artifact, forever")
async def grow(ctx: SkillContext) -> Events:
    try:
        while True:
            yield ArtifactChunk.of_text("x" * 100, artifact_id="big", append=True)
    finally:
        stopped.append(ctx.task_id)


@skill("chatty", "Chatty", "A progress message per event, forever")
async def chatty(ctx: SkillContext) -> Events:
    try:
        while True:
            yield Status(v1.TaskState.WORKING, "still here")
    finally:
        stopped.append(ctx.task_id)


@skill("ticks", "Ticks", "Quotes that never end", subscription=True)
async def ticks(ctx: SkillContext) -> Events:
    try:
        for n in range(1, 51):
            yield ArtifactChunk.of_text(f"tick {n}", artifact_id=f"t{n}")
            yield Status(v1.TaskState.WORKING, f"quote {n}")
        await release.wait()  # a subscription only ends when its caller cancels it
    finally:
        stopped.append(ctx.task_id)


AGENT = AgentDefinition(name="Big", description="Grows", skills=[flood, grow, chatty, ticks])


@pytest.fixture
def service() -> TaskService:
    stopped.clear()
    return TaskService(AGENT, FakeTaskRepository(), TaskEventBroker(), clock=Clock(), limits=LIMITS)


async def run(service: TaskService, skill_id: str) -> v1.Task:
    message = v1.Message(message_id="m", role=v1.Role.USER, parts=[v1.Part(text="go")])
    request = v1.SendMessageRequest(message=message, metadata={"skillId": skill_id})
    result = await service.send("alice", request, streaming=False)
    assert result.task is not None
    return result.task


@pytest.mark.parametrize(
    ("skill_id", "reason"),
    [
        ("flood", "The task exceeded its limit of 5 artifacts"),
        ("grow", "The task exceeded its limit of 2000 stored bytes"),
        ("chatty", "The task exceeded its limit of 6 history messages"),
    ],
)
async def test_a_task_past_a_limit_fails_with_the_reason_and_its_skill_stops(
    service: TaskService, skill_id: str, reason: str
) -> None:
    task = await run(service, skill_id)
    assert task.status.state is v1.TaskState.FAILED
    assert task.status.message is not None and task.status.message.parts[0].text == reason
    assert stopped == [task.id]
    assert len(task.artifacts or []) <= LIMITS.max_artifacts
    assert len(task.history or []) <= LIMITS.max_history + 1  # the failure's own message


async def test_a_subscription_keeps_its_window_and_runs_until_cancelled(service: TaskService) -> None:
    message = v1.Message(message_id="m", role=v1.Role.USER, parts=[v1.Part(text="go")])
    request = v1.SendMessageRequest(message=message, metadata={"skillId": "ticks"})
    result = await service.send("alice", request, streaming=True)
    assert result.task is not None and result.stream is not None
    seen = 0
    async for event in result.stream:
        if event.artifact_update is not None:
            seen += 1
            if seen == 50:
                break
    assert seen == 50  # every event was relayed live
    task = await service.get("alice", result.task.id, None)
    assert task.status.state is v1.TaskState.WORKING
    assert [a.artifact_id for a in task.artifacts or []] == ["t48", "t49", "t50"]
    assert len(task.history or []) == LIMITS.window
    assert task.status.message is not None and task.status.message.parts[0].text.startswith("quote")
    canceled = await service.cancel("alice", result.task.id)
    assert canceled.status.state is v1.TaskState.CANCELED and stopped == [result.task.id]


@skill("big", "Big", "A large artifact, a question, then another large artifact")
async def big(ctx: SkillContext) -> Events:
    yield ArtifactChunk.of_text("x" * 1_200, artifact_id="first")
    yield InputRequired("more?")
    yield ArtifactChunk.of_text("y" * 1_200, artifact_id="second")


async def test_a_task_brought_back_after_a_restart_counts_on_from_what_it_stored() -> None:
    repo = FakeTaskRepository()
    agent = AgentDefinition(name="Big", description="Grows", skills=[big])
    before = TaskService(agent, repo, TaskEventBroker(), clock=Clock(), limits=LIMITS)
    asked = await run(before, "big")
    assert asked.status.state is v1.TaskState.INPUT_REQUIRED
    await before.shutdown()
    after = TaskService(agent, repo, TaskEventBroker(), clock=Clock(), limits=LIMITS)
    reply = v1.Message(message_id="r", role=v1.Role.USER, parts=[v1.Part(text="yes")], task_id=asked.id)
    done = (await after.send("alice", v1.SendMessageRequest(message=reply), streaming=False)).task
    assert done is not None and done.status.state is v1.TaskState.FAILED  # 2,400 bytes > 2,000
    assert done.status.message is not None
    assert done.status.message.parts[0].text == "The task exceeded its limit of 2000 stored bytes"
    await after.shutdown()
