"""TaskService over in-memory fakes: send, resume, cancel, list, expire and restart recovery, with no app,
socket or database. A "restart" is a second service over the same repository."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

import pytest

from a2a_gateway.agent import (
    AgentDefinition,
    AgentEvent,
    ArtifactChunk,
    InputRequired,
    Reply,
    Skill,
    SkillContext,
    Status,
)
from a2a_gateway.agent.caller import ANONYMOUS, Caller
from a2a_gateway.agent.skill import message_text
from a2a_gateway.errors import (
    InvalidParams,
    TaskNotCancelable,
    TaskNotFound,
    Unavailable,
    UnsupportedOperation,
    UpstreamUnavailable,
)
from a2a_gateway.protocol import v1
from a2a_gateway.protocol.ids import new_id
from a2a_gateway.tasks.broker import TaskEventBroker
from a2a_gateway.tasks.replay import NOT_RESUMED
from a2a_gateway.tasks.service import RESTARTED, SHUT_DOWN, TaskService
from tests.factories import Clock
from tests.fakes import FakePushNotifier, FakeTaskRepository

Events = AsyncGenerator[AgentEvent, v1.Message | None]
S = v1.TaskState


@dataclass
class World:
    """What the test skills touch: gates they wait on and the side effects they have."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    orders: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    refusal: Exception | None = None
    ends_early: bool = False
    callers: list[Caller] = field(default_factory=list)


def make_agent(world: World) -> AgentDefinition:
    """Skills covering each kind of run: one shot, direct reply, slow start, refusal, questions."""

    async def echo(ctx: SkillContext) -> Events:
        yield ArtifactChunk.of_text(ctx.text, name="echo")

    async def reply(ctx: SkillContext) -> Events:
        yield Reply.of_text(f"re: {ctx.text}")

    async def slow(ctx: SkillContext) -> Events:
        # Stands for a relay waiting for the upstream's first event.
        try:
            world.started.set()
            await world.gate.wait()
            if world.refusal is not None:
                raise world.refusal
            yield ArtifactChunk.of_text("late", name="slow")
        finally:
            world.closed.append(ctx.task_id)

    async def order(ctx: SkillContext) -> Events:
        # Two questions, with a side effect between them that must happen once, not again on replay.
        yield Status(S.WORKING, "Pricing")
        size = yield InputRequired("How many?")
        yield ArtifactChunk.of_text(f"quote for {message_text(size) if size else '?'}", name="quote")
        if not ctx.replaying:
            world.orders.append(message_text(size) if size else "")
        if world.ends_early:
            return  # a skill that does not retrace its steps
        confirm = yield InputRequired("Sign in to confirm", auth=True)
        yield ArtifactChunk.of_text(
            f"ordered {message_text(size) if size else '?'} ({message_text(confirm) if confirm else '-'})",
            name="order",
        )

    async def who(ctx: SkillContext) -> Events:
        # Notes who the task is made for, before its question and after the answer.
        world.callers.append(ctx.caller)
        yield InputRequired("Anything else?")
        world.callers.append(ctx.caller)
        yield ArtifactChunk.of_text(ctx.caller.user or "-", name="who")

    skills = [
        Skill("echo", "Echo", "echo", echo),
        Skill("who", "Who", "names its caller", who),
        Skill("reply", "Reply", "direct reply", reply),
        Skill("slow", "Slow", "slow first event", slow),
        Skill("order", "Order", "asks twice", order),
    ]
    return AgentDefinition(name="test", description="test agent", skills=skills)


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def repo() -> FakeTaskRepository:
    return FakeTaskRepository()


def service_over(repo: FakeTaskRepository, world: World, clock: Clock | None = None) -> TaskService:
    return TaskService(
        make_agent(world),
        repo,
        TaskEventBroker(),
        FakePushNotifier({"http://blocked/"}),
        clock=clock or Clock(),
    )


@pytest.fixture
async def service(repo: FakeTaskRepository, world: World) -> AsyncGenerator[TaskService, None]:
    svc = service_over(repo, world)
    yield svc
    world.gate.set()
    await svc.shutdown()


def request(
    text: str = "hi",
    skill: str = "echo",
    *,
    task_id: str | None = None,
    immediate: bool = False,
    push_url: str | None = None,
) -> v1.SendMessageRequest:
    message = v1.Message(message_id=new_id(), role=v1.Role.USER, parts=[v1.Part(text=text)], task_id=task_id)
    push = v1.TaskPushNotificationConfig(url=push_url) if push_url else None
    config = v1.SendMessageConfiguration(
        return_immediately=immediate or None, task_push_notification_config=push
    )
    return v1.SendMessageRequest(message=message, configuration=config, metadata={"skillId": skill})


async def send(service: TaskService, *args: object, owner: str = "alice", **kwargs: object) -> v1.Task:
    result = await service.send(owner, request(*args, **kwargs), streaming=False)  # type: ignore[arg-type]
    assert result.task is not None
    return result.task


async def settled(service: TaskService, task_id: str, owner: str = "alice") -> v1.Task:
    """The task once its runner has stopped (terminal or paused)."""
    async with asyncio.timeout(5):
        while service.live_count() and not (await service.get(owner, task_id, None)).status.state.terminal:
            await asyncio.sleep(0)
    return await service.get(owner, task_id, None)


def texts(task: v1.Task) -> list[str]:
    return [p.text or "" for a in task.artifacts or [] for p in a.parts]


# --- send ---------------------------------------------------------------------------------------------


async def test_blocking_send_runs_the_skill_to_its_end_and_stores_it(
    service: TaskService, repo: FakeTaskRepository
) -> None:
    task = await send(service, "hello")
    assert task.status.state is S.COMPLETED
    assert texts(task) == ["hello"]
    stored = await repo.get(task.id, "alice", None)
    assert stored is not None and stored.status.state is S.COMPLETED and texts(stored) == ["hello"]
    assert await repo.get(task.id, "mallory", None) is None


async def test_a_direct_reply_is_a_message_and_no_task(
    service: TaskService, repo: FakeTaskRepository
) -> None:
    result = await service.send("alice", request("x", "reply"), streaming=False)
    assert result.task is None and result.message is not None
    assert result.message.parts[0].text == "re: x"
    assert repo.rows == {}


async def test_agent_messages_are_refused(service: TaskService) -> None:
    bad = request()
    bad.message.role = v1.Role.AGENT
    with pytest.raises(InvalidParams):
        await service.send("alice", bad, streaming=False)


async def test_a_blocking_refusal_is_an_error_and_creates_no_task(
    service: TaskService, repo: FakeTaskRepository, world: World
) -> None:
    world.refusal = UpstreamUnavailable("The agent could not be reached")
    world.gate.set()
    with pytest.raises(UpstreamUnavailable):
        await send(service, "x", "slow")
    assert repo.rows == {}


async def test_return_immediately_answers_before_the_first_event(
    service: TaskService, repo: FakeTaskRepository, world: World
) -> None:
    async with asyncio.timeout(5):  # before the fix, the send waited for the skill's first event
        task = await send(service, "x", "slow", immediate=True)
    # Regression (issue 8, 1.8): the skill has not produced anything, and the task already exists.
    assert task.status.state is S.SUBMITTED
    await world.started.wait()
    stored = await repo.get(task.id, "alice", None)
    assert stored is not None and stored.status.state is S.SUBMITTED
    world.gate.set()
    done = await settled(service, task.id)
    assert done.status.state is S.COMPLETED and texts(done) == ["late"]


@pytest.mark.parametrize(
    ("refusal", "wanted"),
    [(InvalidParams("That is not a number"), S.REJECTED), (UpstreamUnavailable("Agent down"), S.FAILED)],
)
async def test_a_refusal_after_returning_at_once_becomes_the_task_state(
    service: TaskService, world: World, refusal: Exception, wanted: v1.TaskState
) -> None:
    world.refusal = refusal
    task = await send(service, "x", "slow", immediate=True)
    world.gate.set()
    done = await settled(service, task.id)
    assert done.status.state is wanted
    assert done.status.message is not None and done.status.message.parts[0].text == str(refusal)


async def test_a_direct_reply_after_returning_at_once_completes_the_task(service: TaskService) -> None:
    task = await send(service, "x", "reply", immediate=True)
    assert task.status.state is S.SUBMITTED
    done = await settled(service, task.id)
    assert done.status.state is S.COMPLETED
    assert done.status.message is not None and done.status.message.parts[0].text == "re: x"
    assert [m.role for m in done.history or []] == [v1.Role.USER, v1.Role.AGENT]


async def test_expire_fails_a_task_whose_skill_has_not_answered_yet(
    service: TaskService, repo: FakeTaskRepository, world: World
) -> None:
    task = await send(service, "x", "slow", immediate=True)
    await world.started.wait()
    # Regression (issue 8, 1.8): a deadline running from creation reaches a task still waiting.
    assert await service.expire("alice", task.id, "The task timed out after 1 s")
    stored = await repo.get(task.id, "alice", None)
    assert stored is not None and stored.status.state is S.FAILED
    assert stored.status.message is not None
    assert stored.status.message.parts[0].text == "The task timed out after 1 s"
    assert world.closed == [task.id]  # the skill was stopped (a relay cancels upstream there)
    assert not await service.expire("alice", task.id, "again")


async def test_push_config_in_the_request(service: TaskService) -> None:
    with pytest.raises(InvalidParams):
        await send(service, push_url="http://blocked/")
    notifier = FakePushNotifier()
    svc = TaskService(make_agent(World()), FakeTaskRepository(), TaskEventBroker(), notifier, clock=Clock())
    task = await send(svc, "hello", push_url="http://hook/")
    states = [e.status_update.status.state for _, e in notifier.sent if e.status_update]
    assert states[-1] is S.COMPLETED and task.status.state is S.COMPLETED
    assert {c.url for c, _ in notifier.sent} == {"http://hook/"}


async def test_a_task_whose_push_config_cannot_be_stored_is_ended_not_left_waiting(world: World) -> None:
    repo = FakeTaskRepository()
    svc = TaskService(make_agent(world), repo, TaskEventBroker(), FakePushNotifier(), clock=Clock())

    async def store_down(task_id: str, config: v1.TaskPushNotificationConfig) -> None:
        raise UpstreamUnavailable("the store is down")

    repo.put_push_config = store_down  # type: ignore[method-assign]
    world.gate.set()
    with pytest.raises(UpstreamUnavailable):
        await send(svc, "x", "slow", push_url="http://hook/")
    assert svc.live_count() == 0 and len(world.closed) == 1  # the skill was closed, nothing waits
    (stored,) = repo.rows.values()
    assert stored.task.status.state is S.FAILED
    await svc.shutdown()


async def test_an_id_that_could_not_be_stored_is_not_handed_out(world: World) -> None:
    class Refusing(FakeTaskRepository):
        def submit(self, change: Any) -> Any:
            self.refuse.add(change.task.id)  # every write of every task is refused
            return super().submit(change)

    svc = TaskService(make_agent(world), Refusing(), TaskEventBroker(), clock=Clock())
    with pytest.raises(Unavailable):
        await send(svc, "x", "slow", immediate=True)
    for _ in range(5):
        await asyncio.sleep(0)  # turns of the loop: a run left behind would start the skill here
    assert svc.live_count() == 0 and not world.started.is_set()  # stopped, not left running unseen
    await svc.shutdown()


# --- the caller --------------------------------------------------------------------------------------


async def test_the_skill_sees_the_caller_the_task_is_sent_for(service: TaskService, world: World) -> None:
    session = Caller(user="alice", key_kind="session")
    asked = await service.send("alice", request("hi", "who"), streaming=False, caller=session)
    assert asked.task is not None and asked.task.status.state is S.INPUT_REQUIRED
    assert world.callers == [session]


async def test_without_a_caller_the_owner_is_the_caller_and_anonymous_stays_anonymous(
    service: TaskService, world: World
) -> None:
    await send(service, "hi", "who")
    await send(service, "hi", "who", owner="anonymous")
    assert world.callers == [Caller(user="alice"), ANONYMOUS]


async def test_a_follow_up_keeps_the_caller_its_task_started_with(service: TaskService, world: World) -> None:
    session = Caller(user="alice", key_kind="session", key_id=None)
    asked = await service.send("alice", request("hi", "who"), streaming=False, caller=session)
    assert asked.task is not None
    key = Caller(user="alice", key_kind="user", key_id="k1")
    follow_up = request("more", "who", task_id=asked.task.id)
    done = await service.send("alice", follow_up, streaming=False, caller=key)
    assert done.task is not None and done.task.status.state is S.COMPLETED
    assert world.callers == [session, session]


async def test_a_task_brought_back_after_a_restart_is_made_for_its_owner(
    repo: FakeTaskRepository, world: World
) -> None:
    before = service_over(repo, world)
    session = Caller(user="alice", key_kind="session")
    asked = await before.send("alice", request("hi", "who"), streaming=False, caller=session)
    assert asked.task is not None
    await before.shutdown()
    after = service_over(repo, world)
    done = await send(after, "more", "who", task_id=asked.task.id)
    assert texts(done) == ["alice"]
    # Replayed to its pause, then answered: the key it came with is not stored, its owner is.
    assert world.callers == [session, Caller(user="alice"), Caller(user="alice")]
    await after.shutdown()


# --- resume, cancel, list -------------------------------------------------------------------------------


async def test_follow_ups_continue_a_paused_task(service: TaskService, world: World) -> None:
    asked = await send(service, "buy", "order")
    assert asked.status.state is S.INPUT_REQUIRED
    with pytest.raises(TaskNotFound):
        await send(service, "3", "order", task_id=asked.id, owner="mallory")
    confirm = await send(service, "3", "order", task_id=asked.id)
    assert confirm.status.state is S.AUTH_REQUIRED and world.orders == ["3"]
    done = await send(service, "yes", "order", task_id=asked.id)
    assert done.status.state is S.COMPLETED
    assert texts(done) == ["quote for 3", "ordered 3 (yes)"]
    with pytest.raises(UnsupportedOperation):
        await send(service, "again", "order", task_id=asked.id)


async def test_a_working_task_takes_no_message(service: TaskService, world: World) -> None:
    task = await send(service, "x", "slow", immediate=True)
    with pytest.raises(UnsupportedOperation):
        await send(service, "more", task_id=task.id)


async def test_cancel(service: TaskService) -> None:
    asked = await send(service, "buy", "order")
    canceled = await service.cancel("alice", asked.id)
    assert canceled.status.state is S.CANCELED
    with pytest.raises(TaskNotCancelable):
        await service.cancel("alice", asked.id)
    with pytest.raises(TaskNotFound):
        await service.cancel("alice", "missing")


async def test_list_is_scoped_filtered_and_paged(service: TaskService, world: World) -> None:
    clock = Clock()
    svc = TaskService(make_agent(world), FakeTaskRepository(), TaskEventBroker(), clock=clock)
    ids = []
    for n in range(3):
        clock.now = clock.now.replace(minute=n)
        ids.append((await send(svc, f"t{n}")).id)
    await send(svc, "buy", "order")
    await send(svc, "other", owner="bob")
    first = await svc.list_tasks("alice", v1.ListTasksRequest(status=S.COMPLETED, page_size=2))
    assert [t.id for t in first.tasks] == [ids[2], ids[1]] and first.total_size == 3
    rest = await svc.list_tasks(
        "alice", v1.ListTasksRequest(status=S.COMPLETED, page_size=2, page_token=first.next_page_token)
    )
    assert [t.id for t in rest.tasks] == [ids[0]] and rest.next_page_token == ""
    assert (await svc.list_tasks("bob", v1.ListTasksRequest())).total_size == 1
    await svc.shutdown()


# --- restart ----------------------------------------------------------------------------------------------


async def test_a_paused_task_survives_a_clean_restart_and_is_answered(
    repo: FakeTaskRepository, world: World
) -> None:
    before = service_over(repo, world)
    asked = await send(before, "buy", "order")
    await send(before, "3", "order", task_id=asked.id)
    running = await send(before, "x", "slow", immediate=True)
    await world.started.wait()
    await before.shutdown()
    stored = await repo.get(asked.id, "alice", None)
    # Regression (issue 8, 2.1): the paused task was marked failed at shutdown.
    assert stored is not None and stored.status.state is S.AUTH_REQUIRED
    failed = await repo.get(running.id, "alice", None)
    assert failed is not None and failed.status.state is S.FAILED
    assert failed.status.message is not None and failed.status.message.parts[0].text == SHUT_DOWN

    after = service_over(repo, world)
    assert await after.recover() == 0
    history_before = len(stored.history or [])
    done = await send(after, "yes", "order", task_id=asked.id)
    assert done.status.state is S.COMPLETED
    # The replay re-emitted the quote and both questions; none of it was added again.
    assert texts(done) == ["quote for 3", "ordered 3 (yes)"]
    assert len(done.history or []) == history_before + 1  # the reply; no agent message twice
    assert world.orders == ["3"]  # ctx.replaying kept the side effect from happening twice
    await after.shutdown()


async def test_a_hard_restart_keeps_paused_tasks_and_fails_running_ones(
    repo: FakeTaskRepository, world: World
) -> None:
    crashed = service_over(repo, world)
    asked = await send(crashed, "buy", "order")
    working = await send(crashed, "x", "slow", immediate=True)
    await world.started.wait()
    # The process dies here: no shutdown. The next one recovers from what the store holds.
    after = service_over(repo, world)
    assert await after.recover() == 1
    lost = await after.get("alice", working.id, None)
    assert lost.status.state is S.FAILED
    assert lost.status.message is not None and lost.status.message.parts[0].text == RESTARTED
    paused = await after.get("alice", asked.id, None)
    assert paused.status.state is S.INPUT_REQUIRED
    confirm = await send(after, "2", "order", task_id=asked.id)
    assert confirm.status.state is S.AUTH_REQUIRED and texts(confirm) == ["quote for 2"]
    done = await send(after, "ok", "order", task_id=asked.id)
    assert texts(done) == ["quote for 2", "ordered 2 (ok)"]
    world.gate.set()
    await after.shutdown()
    await crashed.shutdown()


async def test_a_paused_task_is_followed_and_canceled_after_a_restart(
    repo: FakeTaskRepository, world: World
) -> None:
    before = service_over(repo, world)
    followed = await send(before, "buy", "order")
    canceled = await send(before, "buy", "order")
    await before.shutdown()
    after = service_over(repo, world)
    await after.recover()
    snapshot, sub = await after.subscribe("alice", followed.id)
    assert snapshot.status.state is S.INPUT_REQUIRED
    await send(after, "1", "order", task_id=followed.id)
    await send(after, "ok", "order", task_id=followed.id)
    async with asyncio.timeout(5):
        seen = [e.status_update.status.state async for e in sub if e.status_update is not None]
    assert seen == [S.WORKING, S.AUTH_REQUIRED, S.WORKING, S.COMPLETED]
    assert (await after.cancel("alice", canceled.id)).status.state is S.CANCELED
    with pytest.raises(TaskNotCancelable):
        await after.cancel("alice", canceled.id)
    await after.shutdown()


async def test_a_skill_that_does_not_retrace_its_steps_fails_its_task(
    repo: FakeTaskRepository, world: World
) -> None:
    before = service_over(repo, world)
    asked = await send(before, "buy", "order")
    await send(before, "3", "order", task_id=asked.id)
    await before.shutdown()
    world.ends_early = True
    after = service_over(repo, world)
    with pytest.raises(UnsupportedOperation, match="could not be resumed"):
        await send(after, "yes", "order", task_id=asked.id)
    failed = await after.get("alice", asked.id, None)
    assert failed.status.state is S.FAILED
    assert failed.status.message is not None and failed.status.message.parts[0].text == NOT_RESUMED
    await after.shutdown()


async def test_a_paused_task_of_a_skill_gone_after_the_restart_is_failed(
    repo: FakeTaskRepository, world: World
) -> None:
    before = service_over(repo, world)
    asked = await send(before, "buy", "order")
    await before.shutdown()
    agent = make_agent(world)
    agent.skills = [s for s in agent.skills if s.id != "order"]
    after = TaskService(agent, repo, TaskEventBroker(), clock=Clock())
    assert await after.recover() == 1
    assert (await after.get("alice", asked.id, None)).status.state is S.FAILED


async def test_adopt_resumes_a_stored_task_under_a_resumable_skill(
    repo: FakeTaskRepository, world: World
) -> None:
    before = service_over(repo, world)
    asked = await send(before, "buy", "order")
    await before.shutdown()

    callers: list[Caller] = []

    async def reattach(ctx: SkillContext) -> Events:
        # Like a relay: re-attach, find the upstream still waiting, then pass the answer on.
        callers.append(ctx.caller)
        answer = yield InputRequired("still waiting")
        yield ArtifactChunk.of_text(f"relayed {message_text(answer) if answer else ''}")

    relay = Skill("relay:x", "relay", "relay", reattach, resumable=True)
    after = service_over(repo, world)
    assert await after.adopt("alice", asked.id, relay)
    assert await after.recover(keep=[asked.id]) == 0
    done = await send(after, "5", "order", task_id=asked.id)
    assert done.status.state is S.COMPLETED and texts(done) == ["relayed 5"]
    assert callers == [Caller(user="alice")]  # who the task is made for, from its owner
    assert not await after.adopt("alice", "missing", relay)
    await after.shutdown()


async def test_a_paused_task_keeps_its_webhooks_through_a_restart(
    repo: FakeTaskRepository, world: World
) -> None:
    before = TaskService(make_agent(world), repo, TaskEventBroker(), FakePushNotifier(), clock=Clock())
    asked = await send(before, "buy", "order", push_url="http://hook/")
    await before.shutdown()
    notifier = FakePushNotifier()
    after = TaskService(make_agent(world), repo, TaskEventBroker(), notifier, clock=Clock())
    await send(after, "1", "order", task_id=asked.id)
    states = [e.status_update.status.state for _, e in notifier.sent if e.status_update is not None]
    assert states == [S.WORKING, S.AUTH_REQUIRED]
    assert {c.url for c, _ in notifier.sent} == {"http://hook/"}
    await after.shutdown()
