"""In-memory fakes of the domain ports, for service tests that open no app, socket or database.

One section per port; each fake keeps the port's semantics (owner-scoped reads, copies out, never the
stored objects) and exposes what it holds so a test can look inside.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Collection
from dataclasses import dataclass, field
from datetime import datetime

from a2a_gateway.agent.caller import Caller
from a2a_gateway.auth.ports import SigningKey
from a2a_gateway.errors import InvalidParams, OutboundRefused, TaskNotFound, Unavailable, UpstreamUnavailable
from a2a_gateway.protocol import v1
from a2a_gateway.registry.health import HealthChange
from a2a_gateway.registry.models import Agent, DiscoveryPage, DiscoveryQuery
from a2a_gateway.routing.calls import RoutedCall
from a2a_gateway.tasks.models import Positioned, TaskOrigin, TaskPage, TaskQuery, TaskWrite

# --- tasks.ports.TaskRepository ----------------------------------------------------------------------


@dataclass(slots=True)
class StoredTask:
    """One task as the fake repository holds it."""

    task: v1.Task
    owner: str
    created_at: datetime
    origin: TaskOrigin | None
    push_configs: dict[str, v1.TaskPushNotificationConfig] = field(default_factory=dict)
    seq: int = 0


class FakeTaskRepository:
    """Implements tasks.ports.TaskRepository in memory; a write commits the moment it is submitted.

    ``refuse`` holds task ids whose writes the store rejects (as a database refuses a bad row);
    ``routed`` maps a task id to the agent it was routed to (what routed-call records say);
    ``settlements`` the holds' settlements the writes carried, in order.
    """

    def __init__(self) -> None:
        self.rows: dict[str, StoredTask] = {}
        self.refuse: set[str] = set()
        self.routed: dict[str, str] = {}
        self.writes = 0
        self.settlements: list[tuple[str, str]] = []

    def submit(self, change: TaskWrite) -> Awaitable[None]:
        """Commit a write now; the returned future carries the outcome."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.writes += 1
        if change.task.id in self.refuse:
            done.set_exception(Unavailable("The task store is unavailable"))
            done.exception()  # most writers never look; a test that awaits still gets the error
            return done
        if change.settlement is not None:
            self.settlements.append((change.task.id, change.settlement.value))
        row = self.rows.get(change.task.id)
        copy = change.task.model_copy(deep=True)
        if row is None:
            self.rows[change.task.id] = StoredTask(copy, change.owner, change.created_at, change.origin)
        else:
            row.task = copy  # the origin is written once, with the task's first write
        self.rows[change.task.id].seq = change.seq
        done.set_result(None)
        return done

    async def flush(self) -> None:
        """Nothing is ever queued."""

    async def get(self, task_id: str, owner: str, history_length: int | None) -> v1.Task | None:
        """A copy of the task if ``owner`` has it."""
        row = self.rows.get(task_id)
        if row is None or row.owner != owner:
            return None
        return _copy(row.task, history_length, include_artifacts=True)

    async def positioned(self, task_id: str, owner: str, history_length: int | None) -> Positioned | None:
        """A copy of the task with the number of its last stored event (no holder: one process)."""
        row = self.rows.get(task_id)
        if row is None or row.owner != owner:
            return None
        return Positioned(_copy(row.task, history_length, include_artifacts=True), row.seq, None)

    async def get_routed(self, task_id: str, agent_id: str, history_length: int | None) -> v1.Task | None:
        """A copy of the task if it was routed to ``agent_id``."""
        row = self.rows.get(task_id)
        if row is None or self.routed.get(task_id) != agent_id:
            return None
        return _copy(row.task, history_length, include_artifacts=True)

    async def list_tasks(self, query: TaskQuery) -> TaskPage:
        """Newest status first; the page token is the position after the last task handed out."""
        return self._page(query, [r for r in self.rows.values() if r.owner == query.owner])

    async def list_routed(self, agent_id: str, query: TaskQuery) -> TaskPage:
        """The tasks routed to ``agent_id``, paged as ``list_tasks`` (``query.owner`` unused)."""
        return self._page(query, [r for r in self.rows.values() if self.routed.get(r.task.id) == agent_id])

    def _page(self, query: TaskQuery, rows: list[StoredTask]) -> TaskPage:
        found = [
            r.task
            for r in rows
            if (not query.context_id or r.task.context_id == query.context_id)
            and (query.state is None or r.task.status.state is query.state)
            and (query.status_after is None or _ts(r.task) >= query.status_after)
        ]
        found.sort(key=lambda t: (_ts(t), t.id), reverse=True)
        start = int(query.page_token) if query.page_token else 0
        page = found[start : start + query.page_size]
        more = start + query.page_size < len(found)
        return TaskPage(
            tasks=[_copy(t, query.history_length, query.include_artifacts) for t in page],
            next_page_token=str(start + query.page_size) if more else "",
            total_size=len(found),
        )

    async def origin(self, task_id: str, owner: str) -> TaskOrigin | None:
        """The origin stored with the task's first write."""
        row = self.rows.get(task_id)
        return row.origin if row is not None and row.owner == owner else None

    async def fail_inflight(
        self,
        status: v1.TaskStatus,
        keep: Collection[str] = (),
        paused_skills: Collection[str] = (),
    ) -> int:
        """Fail every non-terminal task but ``keep`` and the paused tasks of ``paused_skills``."""
        failed = 0
        for task_id, row in self.rows.items():
            task = row.task
            if task.status.state.terminal or task_id in keep:
                continue
            if task.status.state.interrupted and row.origin and row.origin.skill_id in paused_skills:
                continue
            task.status = status
            if status.message is not None:
                message = status.message.model_copy(
                    update={"task_id": task_id, "context_id": task.context_id}
                )
                task.status = status.model_copy(update={"message": message})
                task.history = [*(task.history or []), message]
            failed += 1
        return failed

    async def put_push_config(self, task_id: str, config: v1.TaskPushNotificationConfig) -> None:
        """Create or replace a push config of a stored task."""
        self.rows[task_id].push_configs[config.id or ""] = config

    async def get_push_config(self, task_id: str, config_id: str) -> v1.TaskPushNotificationConfig | None:
        """One push config."""
        row = self.rows.get(task_id)
        return row.push_configs.get(config_id) if row is not None else None

    async def list_push_configs(self, task_id: str) -> list[v1.TaskPushNotificationConfig]:
        """Every push config of a task, oldest first."""
        row = self.rows.get(task_id)
        return list(row.push_configs.values()) if row is not None else []

    async def delete_push_config(self, task_id: str, config_id: str) -> bool:
        """Remove a push config; False when there was none."""
        row = self.rows.get(task_id)
        return row is not None and row.push_configs.pop(config_id, None) is not None


def _ts(task: v1.Task) -> datetime:
    assert task.status.timestamp is not None
    return task.status.timestamp


def _copy(task: v1.Task, history_length: int | None, include_artifacts: bool) -> v1.Task:
    history = list(task.history or [])
    if history_length is not None:
        history = history[len(history) - history_length :] if history_length else []
    copy = task.model_copy(deep=True)
    copy.history = [m.model_copy(deep=True) for m in history] or None
    copy.artifacts = (copy.artifacts or None) if include_artifacts else None
    return copy


# --- tasks.ports.PushNotifier ------------------------------------------------------------------------


class FakePushNotifier:
    """Implements tasks.ports.PushNotifier: refuses the URLs in ``refused``, records every delivery."""

    def __init__(self, refused: Collection[str] = ()) -> None:
        self.refused = set(refused)
        self.sent: list[tuple[v1.TaskPushNotificationConfig, v1.StreamResponse]] = []

    async def check_url(self, url: str) -> None:
        """Refuse a URL listed in ``refused``."""
        if url in self.refused:
            raise OutboundRefused("endpoint not allowed")

    def enqueue(self, config: v1.TaskPushNotificationConfig, event: v1.StreamResponse) -> None:
        """Record the delivery instead of making it."""
        self.sent.append((config, event))


# --- registry.ports.AgentRepository ------------------------------------------------------------------


class FakeAgentRepository:
    """Implements registry.ports.AgentRepository in memory, with the SQL store's discovery rules.

    As in the SQL store, ``save`` leaves the server-owned health columns (failing calls, latency, the last
    probe) as they are: only ``set_health`` and ``set_probe`` write them. ``rows`` holds the stored agents
    (a test may set server-owned fields such as trust there); ``discovered`` each discovery's arguments.
    """

    def __init__(self) -> None:
        self.rows: dict[str, Agent] = {}
        self.reads = 0
        self.discovered: list[tuple[DiscoveryQuery, datetime, float]] = []
        self.health_writes: list[tuple[str, HealthChange]] = []

    async def add(self, agent: Agent) -> None:
        """Store a new agent (a second one with the same id is refused, as by a primary key)."""
        if agent.id in self.rows:
            raise ValueError(f"agent {agent.id} exists")
        self.rows[agent.id] = copy.deepcopy(agent)

    async def get(self, agent_id: str) -> Agent | None:
        """A copy of one agent."""
        self.reads += 1
        row = self.rows.get(agent_id)
        return copy.deepcopy(row) if row is not None else None

    async def save(self, agent: Agent) -> None:
        """Replace an agent's writable state; its health columns stay."""
        stored = self.rows.get(agent.id)
        if stored is None:
            return  # an UPDATE that matches no row
        fresh = copy.deepcopy(agent)
        fresh.call_failing, fresh.latency_ms = stored.call_failing, stored.latency_ms
        fresh.probe_ok, fresh.probed_at = stored.probe_ok, stored.probed_at
        fresh.trust_score = stored.trust_score
        self.rows[agent.id] = fresh

    async def save_heartbeat(self, agent: Agent) -> None:
        """Write only the status, metadata and heartbeat time."""
        stored = self.rows.get(agent.id)
        if stored is None:
            return
        stored.reported_status = agent.reported_status
        stored.metadata = copy.deepcopy(agent.metadata)
        stored.last_heartbeat = agent.last_heartbeat

    async def delete(self, agent_id: str) -> bool:
        """Remove an agent; False when there was none."""
        return self.rows.pop(agent_id, None) is not None

    async def for_owner(self, owner_id: str) -> list[Agent]:
        """An owner's agents, newest first."""
        mine = [a for a in self.rows.values() if a.owner_id == owner_id]
        return [copy.deepcopy(a) for a in sorted(mine, key=lambda a: a.created_at, reverse=True)]

    async def discover(
        self, query: DiscoveryQuery, now: datetime, offline_after_seconds: float
    ) -> DiscoveryPage:
        """Every filter must match; ranked by trust, then latest heartbeat, then newest, then id."""
        self.discovered.append((copy.deepcopy(query), now, offline_after_seconds))
        tags = {t.strip().lower() for t in query.skill_tags if t.strip()}
        words = "".join(c for c in (query.text or "").lower() if c not in "%_\\")

        def matches(a: Agent) -> bool:
            text = " ".join([a.name, a.description, *(s.name for s in a.skills)]).lower()
            return (
                tags <= {t[:50] for t in a.all_tags()}
                and (not query.category or a.category == query.category)
                and (query.min_trust_score is None or a.trust_score >= query.min_trust_score)
                and (not query.text or words in text)
                and (query.status is None or a.status(now, offline_after_seconds) == query.status)
            )

        found = [a for a in self.rows.values() if matches(a)]
        found.sort(key=lambda a: a.id)
        found.sort(key=lambda a: (a.trust_score, _beat(a), a.created_at.timestamp()), reverse=True)
        page = found[query.offset : query.offset + query.limit]
        return DiscoveryPage(agents=[copy.deepcopy(a) for a in page], total=len(found))

    async def all(self) -> list[Agent]:
        """Every agent, oldest first."""
        return [copy.deepcopy(a) for a in sorted(self.rows.values(), key=lambda a: (a.created_at, a.id))]

    async def set_health(self, agent_id: str, change: HealthChange) -> None:
        """Write only the health columns; a change without a latency keeps the stored one."""
        self.health_writes.append((agent_id, copy.copy(change)))
        row = self.rows.get(agent_id)
        if row is not None:
            row.call_failing = change.failing
            if change.latency_ms is not None:
                row.latency_ms = change.latency_ms

    async def set_probe(self, agent_id: str, ok: bool, at: datetime) -> None:
        """Write the latest health check's outcome."""
        row = self.rows.get(agent_id)
        if row is not None:
            row.probe_ok, row.probed_at = ok, at


def _beat(agent: Agent) -> float:
    return agent.last_heartbeat.timestamp() if agent.last_heartbeat is not None else 0.0


# --- registry.ports.EndpointCheck --------------------------------------------------------------------


class FakeEndpointCheck:
    """Implements registry.ports.EndpointCheck: refuses the URLs in ``refused``, records every check."""

    def __init__(self, refused: Collection[str] = ()) -> None:
        self.refused = set(refused)
        self.checked: list[str] = []

    async def check(self, url: str) -> None:
        """Refuse a URL listed in ``refused``, as the SSRF guard refuses a private address."""
        self.checked.append(url)
        if url in self.refused:
            raise OutboundRefused("destination not allowed")


# --- registry.ports.CardSource -----------------------------------------------------------------------


class FakeCardSource:
    """Implements registry.ports.CardSource from ``cards`` (URL to card); any other URL cannot be fetched."""

    def __init__(self, cards: dict[str, v1.AgentCard] | None = None) -> None:
        self.cards = dict(cards or {})
        self.fetched: list[str] = []

    async def fetch(self, url: str) -> v1.AgentCard:
        """A copy of the card published at ``url``; InvalidParams (as the fetcher says) when there is none."""
        self.fetched.append(url)
        card = self.cards.get(url)
        if card is None:
            raise InvalidParams(
                "Agent card could not be imported: the server answered HTTP 404",
                violations=[{"field": "cardUrl", "description": "the server answered HTTP 404"}],
            )
        return card.model_copy(deep=True)


# --- routing.ports.CallLog ---------------------------------------------------------------------------


class FakeCallLog:
    """Implements routing.ports.CallLog: a record is stored the moment it is queued.

    ``rows`` holds the latest state of each call; ``recorded`` every state queued, in order.
    """

    def __init__(self, calls: Collection[RoutedCall] = ()) -> None:
        self.rows: dict[str, RoutedCall] = {c.task_id: copy.copy(c) for c in calls}
        self.recorded: list[RoutedCall] = []

    def record(self, call: RoutedCall) -> None:
        """Store a copy of the call's current state."""
        self.recorded.append(copy.copy(call))
        self.rows[call.task_id] = copy.copy(call)

    async def get(self, task_id: str) -> RoutedCall | None:
        """The record of one gateway task."""
        row = self.rows.get(task_id)
        return copy.copy(row) if row is not None else None

    async def unfinished(self, task_ids: Collection[str] | None = None) -> list[RoutedCall]:
        """Records without an outcome (of ``task_ids``, when given), oldest first."""
        open_calls = sorted(
            (
                c
                for c in self.rows.values()
                if c.outcome is None and (task_ids is None or c.task_id in task_ids)
            ),
            key=lambda c: c.started_at,
        )
        return [copy.copy(c) for c in open_calls]


# --- routing.ports.UpstreamClient --------------------------------------------------------------------

Step = v1.StreamResponse | BaseException | asyncio.Event
"""One step of a scripted upstream answer: an event to hand out, an error to raise, or a gate to wait on."""


@dataclass(slots=True)
class UpstreamCall:
    """One call the fake upstream received, with the caller assertion it carried."""

    method: str  # stream, subscribe, send, get_task or cancel
    url: str
    version: str
    request: v1.SendMessageRequest | None = None
    task_id: str | None = None
    assertion: str | None = None


class FakeUpstream:
    """Implements routing.ports.UpstreamClient by playing scripts, and records what it was asked.

    Each stream, subscribe or send plays the next script queued with ``script`` (else ``default``): an
    event is yielded (send answers with the last one), an exception is raised where it stands, and an
    ``asyncio.Event`` holds the answer until the test sets it. ``tasks`` answers get_task; cancels are
    recorded in ``canceled`` (and in ``calls``); ``open_streams`` counts streams started and not yet closed.
    Every call in ``calls`` keeps the assertion it came with.
    """

    def __init__(self, *default: Step) -> None:
        self.default: list[Step] = list(default)
        self.scripts: deque[list[Step]] = deque()
        self.tasks: dict[str, v1.Task] = {}
        self.calls: list[UpstreamCall] = []
        self.canceled: list[str] = []
        self.open_streams = 0
        self.closed = False

    def script(self, *steps: Step) -> None:
        """Queue the answer to the next call that plays one."""
        self.scripts.append(list(steps))

    def stream(
        self, url: str, version: str, request: v1.SendMessageRequest, *, assertion: str | None = None
    ) -> AsyncGenerator[v1.StreamResponse, None]:
        """Play the next script as a stream."""
        sent = request.model_copy(deep=True)
        self.calls.append(UpstreamCall("stream", url, version, request=sent, assertion=assertion))
        return self._play(self._next())

    def subscribe(
        self, url: str, version: str, task_id: str, *, assertion: str | None = None
    ) -> AsyncGenerator[v1.StreamResponse, None]:
        """Play the next script as a re-attached stream."""
        self.calls.append(UpstreamCall("subscribe", url, version, task_id=task_id, assertion=assertion))
        return self._play(self._next())

    async def send(
        self, url: str, version: str, request: v1.SendMessageRequest, *, assertion: str | None = None
    ) -> v1.StreamResponse:
        """Play the next script to its end and answer with its last event."""
        sent = request.model_copy(deep=True)
        self.calls.append(UpstreamCall("send", url, version, request=sent, assertion=assertion))
        answer: v1.StreamResponse | None = None
        for step in self._next():
            if isinstance(step, BaseException):
                raise step
            if isinstance(step, asyncio.Event):
                await step.wait()
            else:
                answer = step
        if answer is None:
            raise UpstreamUnavailable("The scripted agent had no answer")
        return answer.model_copy(deep=True)

    async def get_task(
        self, url: str, version: str, task_id: str, *, assertion: str | None = None
    ) -> v1.Task:
        """A copy of ``tasks[task_id]``; TaskNotFound (the agent's own error) when it has none."""
        self.calls.append(UpstreamCall("get_task", url, version, task_id=task_id, assertion=assertion))
        task = self.tasks.get(task_id)
        if task is None:
            raise TaskNotFound()
        return task.model_copy(deep=True)

    async def cancel(self, url: str, version: str, task_id: str, *, assertion: str | None = None) -> None:
        """Record the cancel."""
        self.calls.append(UpstreamCall("cancel", url, version, task_id=task_id, assertion=assertion))
        self.canceled.append(task_id)

    async def aclose(self) -> None:
        """Remember that connections were released."""
        self.closed = True

    def _next(self) -> list[Step]:
        return self.scripts.popleft() if self.scripts else list(self.default)

    async def _play(self, steps: list[Step]) -> AsyncGenerator[v1.StreamResponse, None]:
        self.open_streams += 1
        try:
            for step in steps:
                if isinstance(step, BaseException):
                    raise step
                if isinstance(step, asyncio.Event):
                    await step.wait()
                else:
                    yield step.model_copy(deep=True)
        finally:
            self.open_streams -= 1


# --- routing.ports.AssertionIssuer --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Issued:
    """What one assertion was issued for."""

    agent_id: str
    caller: Caller
    task: str | None
    skill: str | None
    price: int | None


class FakeAssertions:
    """Implements routing.ports.AssertionIssuer with opaque tokens, each one new; ``issued`` maps a token to
    what it was issued for. ``failure``, when set, is raised instead (a key store that is down)."""

    def __init__(self) -> None:
        self.issued: dict[str, Issued] = {}
        self.failure: Exception | None = None

    async def issue(
        self,
        agent_id: str,
        caller: Caller,
        *,
        task: str | None = None,
        skill: str | None = None,
        price: int | None = None,
    ) -> str:
        """A fresh token standing for an assertion."""
        if self.failure is not None:
            raise self.failure
        token = f"assertion-{len(self.issued) + 1}"
        self.issued[token] = Issued(agent_id, caller, task, skill, price)
        return token

    def of(self, token: str | None) -> Issued:
        """What ``token`` was issued for (KeyError for a token this fake never issued)."""
        assert token is not None, "the call carried no assertion"
        return self.issued[token]


# --- an injectable asyncio.sleep (routing.deadlines.Deadlines) ---------------------------------------


class ManualSleep:
    """Stands in for ``asyncio.sleep``: a sleep ends only when the test calls ``wake``, never by time."""

    def __init__(self) -> None:
        self._sleeps: list[tuple[float, asyncio.Future[None]]] = []
        self._changed = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        """Sleep until woken (or cancelled)."""
        entry = (seconds, asyncio.get_running_loop().create_future())
        self._sleeps.append(entry)
        self._notify()
        try:
            await entry[1]
        finally:
            self._sleeps.remove(entry)
            self._notify()

    def pending(self) -> list[float]:
        """The lengths of the sleeps still going on, oldest first."""
        return [seconds for seconds, _ in self._sleeps]

    def wake(self, seconds: float | None = None) -> int:
        """End every sleep still going on (or only those of ``seconds``); how many were woken."""
        woken = 0
        for length, done in self._sleeps:
            if (seconds is None or length == seconds) and not done.done():
                done.set_result(None)
                woken += 1
        return woken

    async def until_asleep(self, count: int) -> None:
        """Wait (for events, not time) until exactly ``count`` sleeps are going on."""
        while len(self._sleeps) != count:
            await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


# --- auth.ports.SigningKeyStore ----------------------------------------------------------------------


class MemorySigningKeys:
    """Implements auth.ports.SigningKeyStore in a list; ``reads`` counts loads of the whole ring."""

    def __init__(self) -> None:
        self.keys: list[SigningKey] = []
        self.reads = 0

    async def all(self) -> list[SigningKey]:
        """Every key, newest first."""
        self.reads += 1
        return sorted(self.keys, key=lambda k: (k.created_at, k.kid), reverse=True)

    async def add_first(self, key: SigningKey) -> bool:
        """Store ``key`` only into an empty ring."""
        if self.keys:
            return False
        self.keys.append(key)
        return True

    async def rotate(self, new: SigningKey, retire_at: datetime, prune_before: datetime) -> None:
        """Retire the current keys, add ``new``, prune keys retired before ``prune_before``."""
        kept = [
            k if k.retires_at is not None else dataclasses.replace(k, retires_at=retire_at)
            for k in self.keys
            if k.retires_at is None or k.retires_at >= prune_before
        ]
        self.keys = [*kept, new]
