"""A repeated first message (same sender, same messageId) gets the task the first one started, live or
stored, blocking or streaming, instead of a second task and a second charge; another sender, or an
anonymous one, is never taken for the first."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest

from a2a_gateway.agent import AgentDefinition, AgentEvent, ArtifactChunk, Skill, SkillContext, Status
from a2a_gateway.auth.models import ANONYMOUS_ID
from a2a_gateway.errors import InsufficientCredits
from a2a_gateway.protocol import v1
from a2a_gateway.tasks.broker import TaskEventBroker
from a2a_gateway.tasks.service import TaskService, retry_task_id
from tests.fakes import FakeTaskRepository
from tests.tasks.test_admission import Till

Events = AsyncGenerator[AgentEvent, v1.Message | None]


class Gate:
    """A skill that works until the test opens the gate, then completes."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.started = 0

    async def handler(self, ctx: SkillContext) -> Events:
        self.started += 1
        yield Status(v1.TaskState.WORKING, "working")
        await self.opened.wait()
        yield ArtifactChunk.of_text("done")


def service_with(till: Till, gate: Gate) -> tuple[TaskService, FakeTaskRepository]:
    async def done(ctx: SkillContext) -> Events:
        yield ArtifactChunk.of_text("ok")

    agent = AgentDefinition(
        name="A",
        description="",
        skills=[
            Skill("done", "done", "done", done, admit=till.admit),
            Skill("slow", "slow", "slow", gate.handler, admit=till.admit),
        ],
    )
    repo = FakeTaskRepository()
    return TaskService(agent, repo, TaskEventBroker()), repo


def request(skill: str, message_id: str = "m-1", *, immediate: bool = False) -> v1.SendMessageRequest:
    message = v1.Message(message_id=message_id, role=v1.Role.USER, parts=[v1.Part(text="hi")])
    config = v1.SendMessageConfiguration(return_immediately=True) if immediate else None
    return v1.SendMessageRequest(message=message, metadata={"skillId": skill}, configuration=config)


async def test_a_repeated_send_gets_the_stored_task_and_is_charged_once() -> None:
    till, gate = Till(), Gate()
    service, repo = service_with(till, gate)
    first = (await service.send("u", request("done"), streaming=False)).task
    assert first is not None and not service.is_live(first.id)  # ended: only the store has it
    again = (await service.send("u", request("done"), streaming=False)).task
    assert again is not None and again.id == first.id and again.status.state is v1.TaskState.COMPLETED
    assert till.held == [first.id] and len(repo.rows) == 1
    other = (await service.send("u", request("done", "m-2"), streaming=False)).task
    assert other is not None and other.id != first.id and len(till.held) == 2


async def test_another_caller_and_anonymous_callers_are_never_deduplicated() -> None:
    till, gate = Till(), Gate()
    service, repo = service_with(till, gate)
    mine = (await service.send("u", request("done"), streaming=False)).task
    theirs = (await service.send("v", request("done"), streaming=False)).task
    assert mine is not None and theirs is not None and mine.id != theirs.id
    for _ in range(2):
        await service.send(ANONYMOUS_ID, request("done"), streaming=False)
    assert len(till.held) == 4 and len(repo.rows) == 4
    assert retry_task_id(ANONYMOUS_ID, "m-1") is None and retry_task_id("u", "m-1") == mine.id


async def test_a_retry_while_the_first_runs_waits_for_it_like_the_first_and_streams_it_live() -> None:
    till, gate = Till(), Gate()
    service, repo = service_with(till, gate)
    started = await service.send("u", request("slow", immediate=True), streaming=False)
    assert started.task is not None and service.is_live(started.task.id)
    polled = (await service.send("u", request("slow", immediate=True), streaming=False)).task
    assert polled is not None and polled.id == started.task.id and not polled.status.state.terminal
    streamed = await service.send("u", request("slow"), streaming=True)
    blocking = asyncio.create_task(service.send("u", request("slow"), streaming=False))
    assert streamed.task is not None and streamed.task.id == started.task.id and streamed.stream is not None
    gate.opened.set()
    events = [event async for event in streamed.stream]
    assert events and events[-1].status_update is not None
    assert events[-1].status_update.status.state is v1.TaskState.COMPLETED
    waited = (await blocking).task
    assert waited is not None and waited.id == started.task.id
    assert waited.status.state is v1.TaskState.COMPLETED
    assert gate.started == 1 and till.held == [started.task.id] and len(repo.rows) == 1


@pytest.mark.parametrize("streaming", [False, True])
async def test_concurrent_retries_start_one_task(streaming: bool) -> None:
    till, gate = Till(), Gate()
    service, repo = service_with(till, gate)
    sends = [service.send("u", request("slow", immediate=True), streaming=streaming) for _ in range(5)]
    results = await asyncio.gather(*sends)
    assert {r.task.id for r in results if r.task is not None} == {retry_task_id("u", "m-1")}
    gate.opened.set()
    for result in results:
        if result.stream is not None:
            async for _ in result.stream:
                pass
    await service.shutdown()
    assert gate.started == 1 and len(till.held) == 1 and len(repo.rows) == 1


async def test_a_refused_first_send_leaves_nothing_for_its_retry_to_find() -> None:
    till, gate = Till(refuse=True), Gate()
    service, repo = service_with(till, gate)
    with pytest.raises(InsufficientCredits):
        await service.send("u", request("done"), streaming=False)
    till.refuse = False
    retried = (await service.send("u", request("done"), streaming=False)).task
    assert retried is not None and retried.status.state is v1.TaskState.COMPLETED
    assert till.held == [retried.id] and list(repo.rows) == [retried.id]
