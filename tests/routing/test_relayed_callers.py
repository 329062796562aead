"""Who a relayed call is made for, through the task service and the router on in-memory fakes: every
upstream call of a relayed task (a stream or a send, a follow-up, a cancel, a deadline's cancel, the
re-attachment after a restart) carries an assertion of its own, for that agent, that task and the task's
caller. No app, socket or database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from a2a_gateway.agent import AgentDefinition, Reply, skill
from a2a_gateway.agent.caller import ANONYMOUS, Caller
from a2a_gateway.auth.models import Principal
from a2a_gateway.protocol import v1
from a2a_gateway.protocol.ids import new_id
from a2a_gateway.registry.service import RegistryService
from a2a_gateway.registry.spec import AgentRegistration
from a2a_gateway.routing.agent import RoutingAgent
from a2a_gateway.routing.deadlines import Deadlines
from a2a_gateway.routing.service import Router
from a2a_gateway.tasks.broker import TaskEventBroker
from a2a_gateway.tasks.service import TaskService
from tests.factories import Clock
from tests.fakes import (
    FakeAgentRepository,
    FakeAssertions,
    FakeCallLog,
    FakeCardSource,
    FakeEndpointCheck,
    FakeTaskRepository,
    FakeUpstream,
    Issued,
    ManualSleep,
)

OWNER = Principal(id="owner", kind="user", scopes=frozenset({"*"}))
ALICE = Caller(user="alice", key_kind="session")
S = v1.TaskState


@skill("local", "Local", "The gateway's own skill")
async def local(ctx):  # type: ignore[no-untyped-def]
    yield Reply.of_text("local")


def upstream_task(state: v1.TaskState) -> v1.StreamResponse:
    return v1.StreamResponse(task=v1.Task(id="up-1", context_id="up-ctx", status=v1.TaskStatus(state=state)))


def message(text: str, task_id: str | None = None) -> v1.Message:
    return v1.Message(message_id=new_id(), role=v1.Role.USER, parts=[v1.Part(text=text)], task_id=task_id)


@dataclass
class Net:
    """One registered agent behind a scripted upstream, and the gateway's stores, all fakes; a "restart"
    is a second router and task service over the same stores."""

    agents: FakeAgentRepository = field(default_factory=FakeAgentRepository)
    upstream: FakeUpstream = field(default_factory=FakeUpstream)
    calls: FakeCallLog = field(default_factory=FakeCallLog)
    tasks: FakeTaskRepository = field(default_factory=FakeTaskRepository)
    assertions: FakeAssertions = field(default_factory=FakeAssertions)
    registry: RegistryService = field(init=False)
    agent_id: str = ""

    def __post_init__(self) -> None:
        self.registry = RegistryService(self.agents, FakeEndpointCheck(), FakeCardSource(), clock=Clock())

    async def register(self) -> None:
        spec = AgentRegistration.model_validate(
            {
                "name": "worker",
                "endpoint": "https://worker.example/a2a",
                "skills": [{"id": "ask", "name": "Ask"}],
            }
        )
        self.agent_id = (await self.registry.register(OWNER, spec)).id

    def gateway(self) -> tuple[Router, TaskService]:
        router = Router(self.registry, self.upstream, self.calls, self.assertions)
        own = AgentDefinition(name="gw", description="gw", skills=[local])
        return router, TaskService(
            RoutingAgent.around(own, router), self.tasks, TaskEventBroker(), clock=Clock()
        )

    def request(self, *, immediate: bool = False) -> v1.SendMessageRequest:
        config = v1.SendMessageConfiguration(return_immediately=True) if immediate else None
        metadata = {"agentId": self.agent_id, "skillId": "ask"}
        return v1.SendMessageRequest(message=message("go"), configuration=config, metadata=metadata)

    def carried(self) -> list[tuple[str, Issued]]:
        """Each upstream call with what its assertion was issued for; no assertion served twice."""
        tokens = [c.assertion for c in self.upstream.calls]
        assert None not in tokens and len(set(tokens)) == len(tokens), tokens
        return [(c.method, self.assertions.of(c.assertion)) for c in self.upstream.calls]


@pytest.fixture
async def net() -> Net:
    net = Net()
    await net.register()
    return net


async def turns_until(condition: Callable[[], bool]) -> None:
    """Let the loop run what it has scheduled until ``condition`` holds (turns of the loop, not time)."""
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


async def test_a_stream_and_its_follow_up_are_made_for_the_caller_the_task_started_with(net: Net) -> None:
    _, service = net.gateway()
    net.upstream.script(upstream_task(S.INPUT_REQUIRED))
    net.upstream.script(upstream_task(S.COMPLETED))
    started = await service.send("alice", net.request(), streaming=True, caller=ALICE)
    assert started.task is not None and started.stream is not None
    async with asyncio.timeout(5):
        states = [e.status_update.status.state async for e in started.stream if e.status_update]
    assert states[-1] is S.INPUT_REQUIRED
    task_id = started.task.id
    # The follow-up comes with another of alice's credentials: the task stays made for its first caller.
    key = Caller(user="alice", key_kind="user", key_id="k1")
    done = await service.send(
        "alice", v1.SendMessageRequest(message=message("yes", task_id)), streaming=False, caller=key
    )
    assert done.task is not None and done.task.status.state is S.COMPLETED
    assert net.carried() == [("stream", Issued(net.agent_id, ALICE, task_id, "ask", None))] * 2
    await service.shutdown()


async def test_a_blocking_send_and_the_cancel_of_its_paused_task_carry_the_caller(net: Net) -> None:
    _, service = net.gateway()
    net.upstream.script(upstream_task(S.INPUT_REQUIRED))
    asked = await service.send("alice", net.request(), streaming=False, caller=ALICE)
    assert asked.task is not None and asked.task.status.state is S.INPUT_REQUIRED
    canceled = await service.cancel("alice", asked.task.id)
    assert canceled.status.state is S.CANCELED
    expected = Issued(net.agent_id, ALICE, asked.task.id, "ask", None)
    assert net.carried() == [("send", expected), ("cancel", expected)]
    await service.shutdown()


async def test_a_deadline_cancels_upstream_for_the_tasks_caller(net: Net) -> None:
    _, service = net.gateway()
    sleep = ManualSleep()
    deadlines = Deadlines(service, sleep=sleep)
    net.upstream.script(upstream_task(S.WORKING), asyncio.Event())  # the agent works on, never done
    started = await service.send("alice", net.request(immediate=True), streaming=False, caller=ALICE)
    assert started.task is not None
    task_id = started.task.id
    await turns_until(
        lambda: task_id in net.calls.rows and net.calls.rows[task_id].upstream_task_id is not None
    )
    deadlines.set("alice", task_id, 30)
    await sleep.until_asleep(1)
    sleep.wake()
    await turns_until(lambda: not service.is_live(task_id))
    assert (await service.get("alice", task_id, None)).status.state is S.FAILED
    expected = Issued(net.agent_id, ALICE, task_id, "ask", None)
    assert net.carried() == [("stream", expected), ("cancel", expected)]
    await deadlines.close()
    await service.shutdown()


@pytest.mark.parametrize(("owner", "caller"), [("alice", Caller(user="alice")), ("anonymous", ANONYMOUS)])
async def test_a_task_picked_up_after_a_restart_is_made_for_its_requester(
    net: Net, owner: str, caller: Caller
) -> None:
    _, before = net.gateway()
    gate = asyncio.Event()
    net.upstream.script(upstream_task(S.WORKING), gate)
    first = Caller(user=owner, key_kind="session") if owner != "anonymous" else ANONYMOUS
    started = await before.send(owner, net.request(immediate=True), streaming=False, caller=first)
    assert started.task is not None
    task_id = started.task.id
    await turns_until(
        lambda: task_id in net.calls.rows and net.calls.rows[task_id].upstream_task_id is not None
    )
    # The process dies here. The next one knows only the task and its call record (who asked, no key).
    net.upstream.script(upstream_task(S.COMPLETED))
    router, after = net.gateway()
    assert await router.recover(after) == (1, 0)
    await turns_until(lambda: not after.is_live(task_id))
    assert (await after.get(owner, task_id, None)).status.state is S.COMPLETED
    carried = net.carried()
    assert [method for method, _ in carried] == ["stream", "subscribe"]
    assert carried[1][1] == Issued(net.agent_id, caller, task_id, "ask", None)
    gate.set()
    await after.shutdown()
    await before.shutdown()
