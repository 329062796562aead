"""The relay, below the HTTP layer: every upstream event is passed on as it arrives, task snapshots turn
into what they hold beyond what was relayed, a resumed relay loses and repeats nothing, and every upstream
request carries a caller assertion of its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from a2a_gateway.agent import AgentEvent, ArtifactChunk, InputRequired, SkillContext, Status
from a2a_gateway.agent.caller import Caller
from a2a_gateway.errors import Unavailable, UnsupportedOperation
from a2a_gateway.protocol import v1
from a2a_gateway.routing.calls import RoutedCall
from a2a_gateway.routing.models import Upstream
from a2a_gateway.routing.relay import RelayRun
from tests.fakes import FakeAssertions, Issued

T0 = datetime(2026, 1, 1, tzinfo=UTC)
WORKING, COMPLETED = v1.TaskState.WORKING, v1.TaskState.COMPLETED


def text(value: str) -> v1.Part:
    return v1.Part(text=value)


def agent_says(value: str, message_id: str) -> v1.Message:
    return v1.Message(message_id=message_id, role=v1.Role.AGENT, parts=[text(value)])


def task(state: v1.TaskState, artifacts: dict[str, list[str]] | None = None, **extra: Any) -> v1.Task:
    arts = [v1.Artifact(artifact_id=k, parts=[text(p) for p in v]) for k, v in (artifacts or {}).items()]
    return v1.Task(id="up-1", context_id="up-ctx", status=v1.TaskStatus(state=state), artifacts=arts, **extra)


def snapshot(
    state: v1.TaskState, artifacts: dict[str, list[str]] | None = None, **extra: Any
) -> v1.StreamResponse:
    return v1.StreamResponse(task=task(state, artifacts, **extra))


def status(state: v1.TaskState, said: str | None = None, message_id: str = "s") -> v1.StreamResponse:
    message = agent_says(said, message_id) if said else None
    event = v1.TaskStatusUpdateEvent(
        task_id="up-1", context_id="up-ctx", status=v1.TaskStatus(state=state, message=message)
    )
    return v1.StreamResponse(status_update=event)


def chunk(artifact_id: str, *parts: str, append: bool = False) -> v1.StreamResponse:
    event = v1.TaskArtifactUpdateEvent(
        task_id="up-1",
        context_id="up-ctx",
        artifact=v1.Artifact(artifact_id=artifact_id, parts=[text(p) for p in parts]),
        append=append or None,
    )
    return v1.StreamResponse(artifact_update=event)


class Gate:
    """Marks a point in a scripted stream where the upstream waits until the test lets it go on."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.opened = asyncio.Event()


Script = list[v1.StreamResponse | Gate]


class ScriptedUpstream:
    """An UpstreamClient whose streams, subscriptions and reads follow a script; it records the calls and,
    in the same order, the assertion each one carried."""

    def __init__(
        self,
        stream: Script | None = None,
        subscribe: Script | Exception | None = None,
        reads: list[v1.Task] | None = None,
        answer: v1.StreamResponse | None = None,
    ) -> None:
        self._stream, self._subscribe, self._reads, self._answer = stream, subscribe, reads or [], answer
        self.calls: list[str] = []
        self.assertions: list[str | None] = []

    def _called(self, method: str, assertion: str | None) -> None:
        self.calls.append(method)
        self.assertions.append(assertion)

    async def _play(self, script: Script) -> AsyncIterator[v1.StreamResponse]:
        for step in script:
            if isinstance(step, Gate):
                step.reached.set()
                await step.opened.wait()
            else:
                yield step

    async def stream(
        self, url: str, version: str, request: v1.SendMessageRequest, *, assertion: str | None = None
    ) -> AsyncGenerator[v1.StreamResponse, None]:
        self._called("stream", assertion)
        async for event in self._play(self._stream or []):
            yield event

    async def subscribe(
        self, url: str, version: str, task_id: str, *, assertion: str | None = None
    ) -> AsyncGenerator[v1.StreamResponse, None]:
        self._called("subscribe", assertion)
        if isinstance(self._subscribe, Exception):
            raise self._subscribe
        async for event in self._play(self._subscribe or []):
            yield event

    async def send(
        self, url: str, version: str, request: v1.SendMessageRequest, *, assertion: str | None = None
    ) -> v1.StreamResponse:
        self._called("send", assertion)
        assert self._answer is not None
        return self._answer

    async def get_task(
        self, url: str, version: str, task_id: str, *, assertion: str | None = None
    ) -> v1.Task:
        self._called("get", assertion)
        return self._reads.pop(0)

    async def cancel(self, url: str, version: str, task_id: str, *, assertion: str | None = None) -> None:
        self._called("cancel", assertion)

    async def aclose(self) -> None:
        pass


class Hooks:
    """RelayHooks that keep what they are told."""

    def __init__(self, version: str = "1.0") -> None:
        self.stopping = False
        self.version = version
        self.records: list[str | None] = []
        self.settled: list[RoutedCall] = []

    async def lookup(self, agent_id: str) -> Upstream:
        return Upstream("http://agent.test/a2a", self.version)

    def record(self, call: RoutedCall) -> None:
        self.records.append(call.outcome)

    def settle(self, call: RoutedCall) -> None:
        self.settled.append(call)


ALICE = Caller(user="alice", key_kind="session")


def context(streaming: bool = True, caller: Caller = ALICE) -> SkillContext:
    message = v1.Message(
        message_id="m1", role=v1.Role.USER, parts=[text("go")], task_id="gw-1", context_id="gw-c"
    )
    return SkillContext(
        task_id="gw-1",
        context_id="gw-c",
        message=message,
        metadata={},
        streaming=streaming,
        owner="alice",
        caller=caller,
    )


def run_of(
    upstream: ScriptedUpstream,
    hooks: Hooks,
    *,
    upstream_task: str | None = None,
    assertions: FakeAssertions | None = None,
    caller: Caller | None = None,
) -> RelayRun:
    call = RoutedCall(task_id="gw-1", requester="alice", agent_id="a", skill_id="sk", started_at=T0)
    call.upstream_task_id = upstream_task
    return RelayRun(upstream, call, hooks, assertions or FakeAssertions(), caller=caller)


async def collect(gen: AsyncGenerator[AgentEvent, v1.Message | None]) -> list[AgentEvent]:
    events: list[AgentEvent] = []
    async for event in gen:
        events.append(event)
        if isinstance(event, InputRequired) or (isinstance(event, Status) and event.state.terminal):
            break
    await gen.aclose()
    return events


def shape(events: list[AgentEvent]) -> list[tuple[Any, ...]]:
    """Events as comparable tuples: (kind, state or artifact id, texts, append)."""
    out: list[tuple[Any, ...]] = []
    for e in events:
        if isinstance(e, Status):
            out.append(("status", e.state.name, e.text))
        elif isinstance(e, ArtifactChunk):
            out.append(("artifact", e.artifact_id, [p.text for p in e.parts], e.append))
        else:
            out.append((type(e).__name__,))
    return out


async def test_the_first_upstream_event_is_passed_on_before_the_upstream_goes_on() -> None:
    gate = Gate()
    upstream = ScriptedUpstream(
        stream=[snapshot(v1.TaskState.SUBMITTED), gate, status(WORKING), chunk("a", "1"), status(COMPLETED)]
    )
    gen = run_of(upstream, Hooks()).run(context())
    # The upstream now waits at the gate: the relay must have passed its task on already.
    first = await asyncio.wait_for(gen.__anext__(), timeout=5)
    assert not gate.opened.is_set()
    assert isinstance(first, Status) and first.state is v1.TaskState.SUBMITTED  # accepted, not started
    gate.opened.set()
    rest = await collect(gen)
    assert shape(rest) == [
        ("status", "WORKING", None),  # the upstream's WORKING without text is passed on too
        ("artifact", "a", ["1"], False),
        ("status", "COMPLETED", None),
    ]


async def test_task_snapshots_become_the_updates_they_hold() -> None:
    upstream = ScriptedUpstream(
        stream=[
            snapshot(WORKING, {"a": ["1"]}),
            snapshot(WORKING, {"a": ["1", "2"], "b": ["x"]}),
            snapshot(WORKING, {"a": ["1", "2"], "b": ["x"]}),  # nothing new: nothing relayed
            v1.StreamResponse(
                task=task(COMPLETED, {"a": ["1", "2"], "b": ["x"]}, history=[agent_says("done soon", "h1")])
            ),
        ]
    )
    events = await collect(run_of(upstream, Hooks()).run(context()))
    assert shape(events) == [
        ("artifact", "a", ["1"], False),
        ("status", "WORKING", None),
        ("artifact", "a", ["2"], True),
        ("artifact", "b", ["x"], False),
        ("status", "WORKING", "done soon"),  # an agent message of the upstream history
        ("status", "COMPLETED", None),
    ]


async def test_a_unary_answer_keeps_every_agent_message_of_the_upstream_history() -> None:
    final = task(
        COMPLETED,
        {"a": ["hi"]},
        history=[
            v1.Message(message_id="u1", role=v1.Role.USER, parts=[text("go")]),
            agent_says("thinking", "h1"),
            agent_says("all done", "h2"),
        ],
    )
    final.status = v1.TaskStatus(state=COMPLETED, message=agent_says("all done", "h2"))
    upstream = ScriptedUpstream(answer=v1.StreamResponse(task=final))
    events = await collect(run_of(upstream, Hooks()).run(context(streaming=False)))
    assert shape(events) == [
        ("status", "WORKING", "thinking"),
        ("artifact", "a", ["hi"], False),
        ("status", "COMPLETED", "all done"),
    ]


async def test_resuming_a_1_0_task_subscribes_first_and_starts_from_its_snapshot() -> None:
    upstream = ScriptedUpstream(
        subscribe=[snapshot(WORKING, {"a": ["1", "2"]}), chunk("a", "3", append=True), status(COMPLETED)]
    )
    hooks = Hooks("1.0")
    events = await collect(run_of(upstream, hooks, upstream_task="up-1").run(context(), resume=True))
    assert upstream.calls == ["subscribe"]  # no read before subscribing: nothing can fall between them
    assert shape(events) == [
        ("artifact", "a", ["1", "2"], False),
        ("status", "WORKING", None),
        ("artifact", "a", ["3"], True),
        ("status", "COMPLETED", None),
    ]


async def test_resuming_a_0_3_task_loses_no_chunk_sent_between_read_and_subscribe() -> None:
    # The chunk "2" is sent after the first read and is the subscription's first event; the second read,
    # made once the subscription is open, holds it too: it is relayed exactly once.
    upstream = ScriptedUpstream(
        reads=[task(WORKING, {"a": ["1"]}), task(WORKING, {"a": ["1", "2"]})],
        subscribe=[chunk("a", "2", append=True), chunk("a", "3", append=True), status(COMPLETED)],
    )
    events = await collect(run_of(upstream, Hooks("0.3"), upstream_task="up-1").run(context(), resume=True))
    assert upstream.calls == ["get", "subscribe", "get"]
    parts = [p for e in events if isinstance(e, ArtifactChunk) for p in [x.text for x in e.parts]]
    assert parts == ["1", "2", "3"]
    assert isinstance(events[-1], Status) and events[-1].state is COMPLETED


async def test_resuming_a_paused_task_pauses_again_without_repeating_its_history() -> None:
    paused = task(v1.TaskState.INPUT_REQUIRED, history=[agent_says("name?", "q")])
    paused.status = v1.TaskStatus(state=v1.TaskState.INPUT_REQUIRED, message=agent_says("name?", "q"))
    upstream = ScriptedUpstream(subscribe=[v1.StreamResponse(task=paused)])
    events = await collect(run_of(upstream, Hooks(), upstream_task="up-1").run(context(), resume=True))
    assert len(events) == 1 and isinstance(events[0], InputRequired) and events[0].text == "name?"


async def test_an_agent_without_resubscription_is_read_then_polled() -> None:
    upstream = ScriptedUpstream(
        subscribe=UnsupportedOperation("no"), reads=[task(COMPLETED, {"a": ["done"]})]
    )
    events = await collect(run_of(upstream, Hooks(), upstream_task="up-1").run(context(), resume=True))
    assert upstream.calls == ["subscribe", "get"]
    assert shape(events) == [("artifact", "a", ["done"], False), ("status", "COMPLETED", None)]


@pytest.mark.parametrize("version", ["1.0", "0.3"])
async def test_an_abandoned_relay_cancels_the_upstream_task(version: str) -> None:
    gate = Gate()
    upstream = ScriptedUpstream(stream=[snapshot(WORKING), gate], reads=[task(WORKING)])
    hooks = Hooks(version)
    gen = run_of(upstream, hooks).run(context())
    await gen.__anext__()
    await gen.aclose()
    assert upstream.calls[-1] == "cancel" and hooks.records[-1] == "canceled"


async def test_a_second_cancel_during_the_upstream_cancel_still_closes_the_record() -> None:
    class SlowCancel(ScriptedUpstream):
        def __init__(self) -> None:
            super().__init__(stream=[snapshot(WORKING), Gate()])
            self.cancelling = asyncio.Event()

        async def cancel(self, url: str, version: str, task_id: str, *, assertion: str | None = None) -> None:
            self.cancelling.set()
            await asyncio.Event().wait()  # the agent never answers the cancel

    upstream = SlowCancel()
    hooks = Hooks()
    gen = run_of(upstream, hooks).run(context())
    await gen.__anext__()
    closing = asyncio.create_task(gen.aclose())  # the first cancel: the relay cancels upstream
    await upstream.cancelling.wait()
    closing.cancel()  # a second cancel (an expiry at the same moment) while that call hangs
    await asyncio.gather(closing, return_exceptions=True)
    assert hooks.records[-1] == "canceled" and [c.outcome for c in hooks.settled] == ["canceled"]


async def test_the_call_is_recorded_as_the_relay_starts_before_the_agent_answers() -> None:
    gate = Gate()
    upstream = ScriptedUpstream(stream=[gate, snapshot(WORKING), status(COMPLETED)])
    hooks = Hooks()
    gen = run_of(upstream, hooks).run(context())
    first = asyncio.create_task(gen.__anext__())
    await gate.reached.wait()  # the agent has said nothing yet
    assert hooks.records == [None]  # an open record: the routed agent's key can already see the task
    gate.opened.set()
    await first
    await gen.aclose()


# --- caller assertions ---------------------------------------------------------------------------------


def issued_for(assertions: FakeAssertions, upstream: ScriptedUpstream) -> list[Issued]:
    """What each upstream request's assertion was issued for; every request had its own."""
    tokens = upstream.assertions
    assert None not in tokens and len(set(tokens)) == len(tokens)
    return [assertions.of(token) for token in tokens]


async def test_every_request_of_a_resumed_relay_carries_its_own_assertion_for_the_task() -> None:
    # A 0.3 agent: read, subscribe, and read again once the subscription is open.
    upstream = ScriptedUpstream(
        reads=[task(WORKING, {"a": ["1"]}), task(WORKING, {"a": ["1"]})],
        subscribe=[chunk("a", "2", append=True), status(COMPLETED)],
    )
    assertions = FakeAssertions()
    after_restart = Caller(user="alice")
    run = run_of(upstream, Hooks("0.3"), upstream_task="up-1", assertions=assertions, caller=after_restart)
    await collect(run.run(context(caller=ALICE), resume=True))
    assert upstream.calls == ["get", "subscribe", "get"]
    # The run's own caller (from the call record) wins over the context's.
    assert issued_for(assertions, upstream) == [Issued("a", after_restart, "gw-1", "sk", None)] * 3


async def test_a_polled_agent_gets_a_fresh_assertion_with_every_read() -> None:
    upstream = ScriptedUpstream(
        subscribe=UnsupportedOperation("no"), reads=[task(COMPLETED, {"a": ["done"]})]
    )
    assertions = FakeAssertions()
    await collect(run_of(upstream, Hooks(), upstream_task="up-1", assertions=assertions).run(context(), True))
    assert upstream.calls == ["subscribe", "get"]
    assert issued_for(assertions, upstream) == [Issued("a", ALICE, "gw-1", "sk", None)] * 2


@pytest.mark.parametrize("streaming", [True, False])
async def test_a_send_and_the_cancel_of_an_abandoned_relay_carry_the_tasks_caller(streaming: bool) -> None:
    gate = Gate()
    paused = v1.StreamResponse(task=task(v1.TaskState.INPUT_REQUIRED))
    upstream = ScriptedUpstream(stream=[snapshot(WORKING), gate], answer=paused)
    assertions = FakeAssertions()
    bob = Caller(user="bob", key_kind="user", key_id="k1")
    gen = run_of(upstream, Hooks(), assertions=assertions).run(context(streaming, caller=bob))
    await gen.__anext__()
    await gen.aclose()
    assert upstream.calls == ["stream" if streaming else "send", "cancel"]
    assert issued_for(assertions, upstream) == [Issued("a", bob, "gw-1", "sk", None)] * 2


async def test_the_caller_price_travels_in_the_assertion() -> None:
    upstream = ScriptedUpstream(answer=snapshot(COMPLETED))
    assertions = FakeAssertions()
    priced = Caller(user="alice", key_kind="session", price=25)
    await collect(run_of(upstream, Hooks(), assertions=assertions).run(context(False, caller=priced)))
    assert [i.price for i in issued_for(assertions, upstream)] == [25]


async def test_a_call_the_gateway_cannot_sign_is_not_sent_and_says_so() -> None:
    upstream = ScriptedUpstream(answer=snapshot(COMPLETED))
    assertions = FakeAssertions()
    assertions.failure = RuntimeError("key store down")
    hooks = Hooks()
    with pytest.raises(Unavailable, match="could not sign"):
        await collect(run_of(upstream, hooks, assertions=assertions).run(context(streaming=False)))
    assert upstream.calls == []
    # The gateway's own failure: recorded as such, and no evidence against the agent's health.
    assert hooks.records[-1] == "unsigned" and not hooks.settled[-1].failed


async def test_an_abandoned_relay_still_cancels_upstream_when_it_cannot_sign() -> None:
    upstream = ScriptedUpstream(stream=[snapshot(WORKING), Gate()])
    assertions = FakeAssertions()
    gen = run_of(upstream, Hooks(), assertions=assertions).run(context())
    await gen.__anext__()
    assertions.failure = RuntimeError("key store down")
    await gen.aclose()
    assert upstream.calls == ["stream", "cancel"] and upstream.assertions[1] is None


# --- several pauses ------------------------------------------------------------------------------------


class TurnsUpstream(ScriptedUpstream):
    """An upstream whose every send, streamed or not, plays the next turn of a script."""

    def __init__(self, turns: list[list[v1.StreamResponse]]) -> None:
        super().__init__()
        self.turns = turns
        self.sent: list[v1.Message] = []

    async def stream(
        self, url: str, version: str, request: v1.SendMessageRequest, *, assertion: str | None = None
    ) -> AsyncGenerator[v1.StreamResponse, None]:
        self._called("stream", assertion)
        self.sent.append(request.message)
        for event in self.turns.pop(0):
            yield event

    async def send(
        self, url: str, version: str, request: v1.SendMessageRequest, *, assertion: str | None = None
    ) -> v1.StreamResponse:
        self._called("send", assertion)
        self.sent.append(request.message)
        (answer,) = self.turns.pop(0)
        return answer


ASKING = v1.TaskState.INPUT_REQUIRED


def asking(message_id: str | None, said: str, *, as_snapshot: bool) -> v1.StreamResponse:
    """The upstream asking for input: its task, or a status update; with no status message when
    ``message_id`` is None."""
    if not as_snapshot:
        return status(ASKING, said if message_id else None, message_id or "s")
    paused = task(ASKING)
    if message_id is not None:
        paused.status = v1.TaskStatus(state=ASKING, message=agent_says(said, message_id))
    return v1.StreamResponse(task=paused)


def reply(value: str) -> v1.Message:
    return v1.Message(message_id=f"r-{value}", role=v1.Role.USER, parts=[text(value)], task_id="gw-1")


@pytest.mark.parametrize(
    "ids", [(None, None), ("q1", "q2"), ("q", "q")], ids=["no status message", "fresh ids", "same id"]
)
@pytest.mark.parametrize(
    ("streaming", "as_snapshot"),
    [(True, False), (True, True), (False, True)],
    ids=["status updates", "streamed snapshots", "unary answers"],
)
async def test_an_agent_that_asks_again_after_a_reply_pauses_the_task_again(
    ids: tuple[str | None, str | None], streaming: bool, as_snapshot: bool
) -> None:
    first, second = ids
    done = snapshot(COMPLETED) if as_snapshot else status(COMPLETED)
    upstream = TurnsUpstream(
        [
            [asking(first, "Which size?", as_snapshot=as_snapshot)],
            [asking(second, "Which colour?", as_snapshot=as_snapshot)],
            [done],
        ]
    )
    hooks = Hooks()
    gen = run_of(upstream, hooks).run(context(streaming))
    asked = await gen.__anext__()
    assert isinstance(asked, InputRequired)
    asked_again = await gen.asend(reply("large"))
    assert isinstance(asked_again, InputRequired), asked_again
    assert asked_again.text == ("Which colour?" if second else "Input required")
    ended = await gen.asend(reply("red"))
    assert isinstance(ended, Status) and ended.state is COMPLETED
    await gen.aclose()
    assert [m.task_id for m in upstream.sent] == [None, "up-1", "up-1"]  # the replies went to its task
    assert [p.text for m in upstream.sent for p in m.parts] == ["go", "large", "red"]
    assert hooks.records[-1] == "completed"


@pytest.mark.parametrize("question", [None, "q"], ids=["no status message", "a question message"])
async def test_a_follow_up_stream_opening_with_the_answered_pause_does_not_pause_again(
    question: str | None,
) -> None:
    # Kit agents open the stream of a follow-up with the task as the reply found it: still asking.
    as_found = asking(question, "Which size?", as_snapshot=True)
    upstream = TurnsUpstream(
        [
            [as_found],
            [as_found, status(WORKING, "on it", "w"), chunk("a", "large"), status(COMPLETED)],
        ]
    )
    gen = run_of(upstream, Hooks()).run(context())
    assert isinstance(await gen.__anext__(), InputRequired)
    events = [await gen.asend(reply("large"))]
    events += await collect(gen)
    assert shape(events) == [
        ("status", "WORKING", "on it"),
        ("artifact", "a", ["large"], False),
        ("status", "COMPLETED", None),
    ]
