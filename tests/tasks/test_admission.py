"""A skill's admission runs before its task exists: a refusal stores nothing, a reservation is given back
when no task comes of the call, and a held task's end (a subscription's start) settles it in its write."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

import pytest

from a2a_gateway.agent import AgentDefinition, AgentEvent, ArtifactChunk, Reply, Skill, SkillContext, Status
from a2a_gateway.agent.skill import SUBSCRIPTION_TAG, Admission
from a2a_gateway.errors import InsufficientCredits, UpstreamUnavailable
from a2a_gateway.protocol import v1
from a2a_gateway.protocol.ids import new_id
from a2a_gateway.tasks.broker import TaskEventBroker
from a2a_gateway.tasks.service import TaskService
from tests.fakes import FakeTaskRepository

Events = AsyncGenerator[AgentEvent, v1.Message | None]


@dataclass
class Till:
    """Reservations made and given back, by task id."""

    refuse: bool = False
    held: list[str] = field(default_factory=list)
    undone: list[str] = field(default_factory=list)

    async def admit(self, ctx: SkillContext) -> Admission:
        if self.refuse:
            raise InsufficientCredits(price=5, available=1)
        self.held.append(ctx.task_id)
        task_id = ctx.task_id

        async def undo() -> None:
            self.undone.append(task_id)

        return Admission(held=True, undo=undo)


def service_with(till: Till) -> tuple[TaskService, FakeTaskRepository]:
    async def done(ctx: SkillContext) -> Events:
        yield ArtifactChunk.of_text("ok")

    async def reply(ctx: SkillContext) -> Events:
        yield Reply.of_text("just words")

    async def broken(ctx: SkillContext) -> Events:
        raise UpstreamUnavailable("The agent could not be reached")
        yield  # pragma: no cover

    async def fails(ctx: SkillContext) -> Events:
        yield Status(v1.TaskState.FAILED, "it broke")

    async def feed(ctx: SkillContext) -> Events:
        yield Status(v1.TaskState.WORKING, "streaming")
        yield ArtifactChunk.of_text("tick")
        yield Status(v1.TaskState.CANCELED, "stopped")

    def paid(skill_id: str, handler: Any, tags: list[str] | None = None) -> Skill:
        return Skill(skill_id, skill_id, skill_id, handler, tags=tags or [], admit=till.admit)

    agent = AgentDefinition(
        name="A",
        description="",
        skills=[paid("done", done), paid("reply", reply), paid("broken", broken), paid("fails", fails),
                paid("feed", feed, [SUBSCRIPTION_TAG])],
    )  # fmt: skip
    repo = FakeTaskRepository()
    return TaskService(agent, repo, TaskEventBroker()), repo


def request(skill: str, *, immediate: bool = False) -> v1.SendMessageRequest:
    message = v1.Message(message_id=new_id(), role=v1.Role.USER, parts=[v1.Part(text="hi")])
    config = v1.SendMessageConfiguration(return_immediately=True) if immediate else None
    return v1.SendMessageRequest(message=message, metadata={"skillId": skill}, configuration=config)


@pytest.mark.parametrize("immediate", [False, True])
async def test_a_refused_admission_stores_nothing(immediate: bool) -> None:
    service, repo = service_with(Till(refuse=True))
    with pytest.raises(InsufficientCredits):
        await service.send("u", request("done", immediate=immediate), streaming=False)
    assert repo.rows == {} and repo.writes == 0


async def test_a_completed_held_task_is_captured_in_its_terminal_write() -> None:
    till = Till()
    service, repo = service_with(till)
    task = (await service.send("u", request("done"), streaming=False)).task
    assert task is not None and task.status.state is v1.TaskState.COMPLETED
    assert till.held == [task.id] and till.undone == []
    assert repo.settlements == [(task.id, "capture")]


async def test_a_failed_held_task_is_released_once() -> None:
    service, repo = service_with(Till())
    task = (await service.send("u", request("fails"), streaming=False)).task
    assert task is not None and repo.settlements == [(task.id, "release")]


async def test_no_task_no_charge_a_direct_reply_or_an_early_refusal_gives_the_hold_back() -> None:
    till = Till()
    service, repo = service_with(till)
    answered = await service.send("u", request("reply"), streaming=False)
    assert answered.message is not None
    with pytest.raises(UpstreamUnavailable):
        await service.send("u", request("broken"), streaming=False)
    assert till.undone == till.held and len(till.held) == 2
    assert repo.rows == {} and repo.settlements == []


async def test_a_subscription_is_captured_when_it_starts_streaming_not_released_at_its_end() -> None:
    service, repo = service_with(Till())
    result = await service.send("u", request("feed"), streaming=True)
    assert result.stream is not None and result.task is not None
    async for _ in result.stream:
        pass
    assert repo.settlements == [(result.task.id, "capture")]
    assert repo.rows[result.task.id].task.status.state is v1.TaskState.CANCELED
