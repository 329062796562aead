"""The task service: A2A task semantics over an agent's skills, a repository and a broker."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Collection
from datetime import datetime

from a2a_gateway.agent import AgentDefinition, AgentEvent, InputRequired, Reply, Skill, SkillContext
from a2a_gateway.agent.caller import Caller
from a2a_gateway.agent.skill import Admission
from a2a_gateway.auth.models import ANONYMOUS_ID
from a2a_gateway.errors import (
    GatewayError,
    InvalidParams,
    TaskNotCancelable,
    TaskNotFound,
    Unavailable,
    UnsupportedOperation,
)
from a2a_gateway.protocol import v1
from a2a_gateway.protocol.base import utc_now
from a2a_gateway.protocol.ids import new_id
from a2a_gateway.tasks import state
from a2a_gateway.tasks.broker import Subscription, TaskEventBroker
from a2a_gateway.tasks.elsewhere import Elsewhere
from a2a_gateway.tasks.limits import TaskLimits, part_bytes
from a2a_gateway.tasks.live import UNSTARTED, Crash, Handler, LiveTask, Unstarted
from a2a_gateway.tasks.models import Positioned, TaskOrigin, TaskQuery
from a2a_gateway.tasks.ports import PushNotifier, TaskEventBus, TaskHolders, TaskRepository
from a2a_gateway.tasks.push_configs import PushConfigs
from a2a_gateway.tasks.replay import Reviver, caller_of_owner
from a2a_gateway.tasks.results import SendResult, Subscribed
from a2a_gateway.tasks.runner import TaskRunner
from a2a_gateway.tasks.state import readable

log = logging.getLogger(__name__)
RETRY_NAMESPACE = uuid.UUID("6f1c3a52-9d0e-4b7a-8c5e-2a61f0d4b9e3")

_DEFAULT_CONFIG = v1.SendMessageConfiguration()
RESTARTED = "The gateway restarted while this task was in flight; it was marked failed."
SET_UP_FAILED = "The task could not be set up (its push notification config could not be stored)."
SHUT_DOWN = "The gateway shut down while this task was in flight; it was marked failed."


class TaskService:
    """Creates, continues, reads, lists and cancels tasks; every read is scoped to an owner."""

    def __init__(
        self,
        agent: AgentDefinition,
        repo: TaskRepository,
        broker: TaskEventBroker,
        notifier: PushNotifier | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
        history_default: int | None = None,
        limits: TaskLimits | None = None,
        bus: TaskEventBus | None = None,
        holders: TaskHolders | None = None,
    ) -> None:
        self.agent = agent
        self._repo = repo
        self._broker = broker
        self._bus = bus
        self._holders = holders
        self._clock = clock
        self._history_default = history_default
        self._live: dict[str, LiveTask] = {}
        # Retried first messages whose task is being started: a concurrent retry waits for the start.
        self._starting: dict[str, asyncio.Future[None]] = {}
        # Every runner still going, including those of tasks that ended and left _live but are still
        # closing their skill (a relay's last health write starts there): shutdown waits for them.
        self._runs: set[asyncio.Task[None]] = set()
        self._end_listeners: list[Callable[[str], None]] = []
        self._runner = TaskRunner(repo, broker, notifier, clock, self._forget, limits=limits, bus=bus)
        self._reviver = Reviver(agent, repo, self._runner, self._live, clock, bus=bus)
        self.push = PushConfigs(repo, notifier, self._visible)
        self._elsewhere = Elsewhere(self, repo, broker, bus, holders, history_default=history_default)

    # --- sending -----------------------------------------------------------------------------------

    async def send(
        self, owner: str, request: v1.SendMessageRequest, *, streaming: bool, caller: Caller | None = None
    ) -> SendResult:
        """Start a task (or get a direct reply), or continue a paused one, with A2A semantics.

        ``caller`` is who a new task is made for, as its skill sees it (by default the owner, with no key);
        a follow-up keeps the caller its task started with.
        """
        message = request.message
        if message.role is not v1.Role.USER:
            raise InvalidParams(
                "Messages sent to an agent must have role ROLE_USER",
                violations=[{"field": "message.role", "description": "must be ROLE_USER"}],
            )
        config = request.configuration or _DEFAULT_CONFIG
        inline_push = config.task_push_notification_config
        if inline_push is not None:
            await self.push.check(inline_push)
        created: Awaitable[None] | None = None
        if message.task_id:
            resumed = await self._resume(owner, message)
            if isinstance(resumed, Positioned):
                if inline_push is not None:
                    raise UnsupportedOperation(
                        "This task waits on another gateway process: send its follow-up without an inline "
                        "push notification config (set one with CreateTaskPushNotificationConfig)"
                    )
                return await self._elsewhere.send(owner, request, resumed, streaming)
            live = resumed
        else:
            task_id = retry_task_id(owner, message.message_id)
            if task_id is not None:
                again = await self._retried(owner, task_id, config, streaming)
                if again is not None:
                    return again
            started = await self._start(owner, request, streaming, caller or caller_of_owner(owner), task_id)
            if isinstance(started, v1.Message):
                return SendResult(message=started)
            live, created = started
        if inline_push is not None:
            try:
                await self.push.attach(live, inline_push)
            except BaseException:
                await self._abandon(live)
                raise
        # No await may come between starting the run and subscribing, or early events would be missed.
        self._start_runner(live)
        history = config.history_length if config.history_length is not None else self._history_default
        if streaming:
            sub = self._broker.subscribe(live.task.id, stop_at_interrupted=True)
            return SendResult(task=state.snapshot(live.task, history), stream=sub)
        if not config.return_immediately:
            # One sender per segment of work, so waiting on the future itself is safe.
            await live.settled
            return SendResult(task=state.snapshot(live.task, history))
        handed = state.snapshot(live.task, history)
        if created is not None:
            # The caller polls by id from now on: the task is stored before its id is handed out, and
            # an id that could not be stored is not handed out (the writer has logged why).
            try:
                await asyncio.shield(created)
            except Exception:
                await self._halt(live)
                self._forget(live)
                raise Unavailable("The task could not be stored; try again") from None
        return SendResult(task=handed)

    async def _retried(
        self, owner: str, task_id: str, config: v1.SendMessageConfiguration, streaming: bool
    ) -> SendResult | None:
        """The answer to a repeated first message (same sender, same messageId): its existing task,
        or None when there is none and this send starts it. The start of a task with that id going on
        concurrently is waited for first, so two retries racing make one task."""
        while (starting := self._starting.get(task_id)) is not None:
            await asyncio.shield(starting)
        history = config.history_length if config.history_length is not None else self._history_default
        live = self._live.get(task_id)
        if live is None:
            # Not in memory: it ended (its final write committed before it left) or never was. The
            # start is claimed before the store is asked, so a concurrent retry waits for this one.
            self._starting[task_id] = asyncio.get_running_loop().create_future()
            try:
                stored = await self._repo.get(task_id, owner, history)
            except BaseException:
                self._done_starting(task_id)
                raise
            if stored is None:
                return None  # _start takes the claim over and ends it
            self._done_starting(task_id)
            return SendResult(task=stored)
        if live.owner != owner:  # cannot happen (the id is derived from the owner); never shared
            raise InvalidParams("messageId collides with another task; send a new messageId")
        if streaming and not live.state.terminal:
            # No await between the snapshot and the subscription: nothing in between is missed.
            sub = self._broker.subscribe(task_id, stop_at_interrupted=True)
            return SendResult(task=state.snapshot(live.task, history), stream=sub)
        if not streaming and not config.return_immediately and not live.state.terminal:
            # Waits like the first send does; shielded, so a retry that gives up leaves the first be.
            await asyncio.shield(live.settled)
        return SendResult(task=state.snapshot(live.task, history))

    def _done_starting(self, task_id: str) -> None:
        starting = self._starting.pop(task_id, None)
        if starting is not None and not starting.done():
            starting.set_result(None)

    async def _start(
        self,
        owner: str,
        request: v1.SendMessageRequest,
        streaming: bool,
        caller: Caller,
        retry_id: str | None = None,
    ) -> tuple[LiveTask, Awaitable[None]] | v1.Message:
        try:
            return await self._start_task(owner, request, streaming, caller, retry_id or new_id())
        finally:
            if retry_id is not None:
                self._done_starting(retry_id)  # the task is in _live now, or was never made

    async def _start_task(
        self, owner: str, request: v1.SendMessageRequest, streaming: bool, caller: Caller, task_id: str
    ) -> tuple[LiveTask, Awaitable[None]] | v1.Message:
        context_id = request.message.context_id or new_id()
        message = request.message.model_copy(update={"task_id": task_id, "context_id": context_id})
        skill = await self.agent.resolve(message, request.metadata)
        config = request.configuration
        self.agent.check_modes(skill, message, config.accepted_output_modes if config else None)
        # A task handed back at once exists before its skill's first event (a relay's is the upstream's
        # answer), so that a deadline and a cancel reach it meanwhile; the runner fetches that event.
        immediate = not streaming and bool(config and config.return_immediately)
        ctx = SkillContext(
            task_id=task_id,
            context_id=context_id,
            message=message,
            metadata=request.metadata or {},
            streaming=streaming or immediate,
            owner=owner,
            caller=caller,
        )
        # Admission (a relay holds the call's price) comes before anything is stored: a refusal leaves
        # no task, and what it reserved is given back if no task comes of the call after all.
        admission = await skill.admit(ctx) if skill.admit is not None else None
        try:
            gen = skill.handler(ctx)
            first: AgentEvent | Crash | Unstarted | None = UNSTARTED
            if not immediate:
                # A skill that refuses before starting (bad input, upstream unreachable) raises
                # GatewayError from here: the caller gets that error and no task is created.
                first = await _first_event(gen, skill.id, refusals=True)
                if isinstance(first, Reply):
                    await gen.aclose()
                    await _undo(admission)
                    return v1.Message(
                        message_id=new_id(),
                        context_id=context_id,
                        role=v1.Role.AGENT,
                        parts=first.parts,
                        metadata=first.metadata,
                    )
        except BaseException:
            await _undo(admission)
            raise
        now = self._clock()
        task = state.new_task(task_id, context_id, message, now)
        if skill.task_metadata:
            task.metadata = dict(skill.task_metadata)
        # A relay resumes from its call record; any other skill is started again from its origin.
        origin = None if skill.resumable else TaskOrigin(skill.id, dict(ctx.metadata), ctx.streaming)
        live = LiveTask(task=task, owner=owner, created_at=now, resumable=skill.resumable, origin=origin)
        live.subscription = skill.subscription
        live.held = admission is not None and admission.held
        live.stored_bytes = part_bytes(message.parts)
        self._live[task_id] = live
        live.pending = (gen, first, None)
        return live, self._repo.submit(live.changes())

    async def _resume(self, owner: str, message: v1.Message) -> LiveTask | Positioned:
        """The paused task a follow-up continues, in memory here; or, when another live process holds
        it (its skill waits there), where it stands, for the follow-up to be passed on."""
        task_id = message.task_id or ""
        live = self._live.get(task_id)
        if (live is None or live.owner != owner) and self._holders is not None:
            elsewhere = await self._elsewhere.held(owner, task_id)
            if elsewhere is not None:
                return elsewhere
            live = self._live.get(task_id)
        if live is None or live.owner != owner:
            live = await self._reviver.revive(owner, task_id)
        if message.context_id and message.context_id != live.task.context_id:
            raise InvalidParams(
                "contextId does not match the task's contextId",
                violations=[{"field": "message.contextId", "description": "differs from the task's"}],
            )
        if live.state.terminal:
            raise UnsupportedOperation(f"Task {task_id} is in terminal state {readable(live.state)}")
        gen = live.generator
        if gen is None:
            raise UnsupportedOperation(f"Task {task_id} is working and does not take messages until it asks")
        if live.replay is not None:
            live.replay.replaying = False  # what the handler does from here on is new
            live.replay = None
        message = message.model_copy(update={"context_id": live.task.context_id})
        live.generator = None
        live.rearm()
        state.add_message(live.task, message)
        live.pending = (gen, None, message)
        return live

    async def _abandon(self, live: LiveTask) -> None:
        """A task whose set-up failed before its run started: close its skill (a relay cancels upstream)
        and end it failed, so nothing is left waiting in memory."""
        pending, live.pending = live.pending, None
        if pending is not None:
            try:
                await pending[0].aclose()
            except Exception:
                log.exception("skill failed while closing", extra={"taskId": live.task.id})
        if not live.state.terminal:
            await self._runner.status(live, v1.TaskState.FAILED, SET_UP_FAILED)
        self._forget(live)

    def _start_runner(self, live: LiveTask) -> None:
        assert live.pending is not None
        gen, first, resume = live.pending
        live.pending = None
        live.runner = runner = asyncio.create_task(self._runner.drive(live, gen, first, resume))
        self._runs.add(runner)
        runner.add_done_callback(self._runs.discard)

    # --- reading -----------------------------------------------------------------------------------

    async def get(self, owner: str, task_id: str, history_length: int | None) -> v1.Task:
        """A task visible to ``owner``."""
        history = history_length if history_length is not None else self._history_default
        live = self._live.get(task_id)
        if live is not None and live.owner == owner:
            return state.snapshot(live.task, history)
        stored = await self._repo.get(task_id, owner, history)
        if stored is None:
            raise TaskNotFound(f"Task {task_id} not found")
        return stored

    async def get_routed(self, agent_id: str, task_id: str, history_length: int | None) -> v1.Task:
        """A task routed to ``agent_id``, whoever sent it: what that agent's own key may read."""
        history = history_length if history_length is not None else self._history_default
        await self._repo.flush()  # a relay queues its routed-call record as it starts
        stored = await self._repo.get_routed(task_id, agent_id, history)
        if stored is None:
            raise TaskNotFound(f"Task {task_id} not found")
        live = self._live.get(task_id)
        return state.snapshot(live.task, history) if live is not None else stored

    async def list_tasks(self, owner: str, request: v1.ListTasksRequest) -> v1.ListTasksResponse:
        """A page of the owner's tasks, newest status first."""
        return await self._list(owner, None, request)

    async def list_routed(self, agent_id: str, request: v1.ListTasksRequest) -> v1.ListTasksResponse:
        """A page of the tasks routed to ``agent_id``, newest status first (for that agent's own key)."""
        return await self._list("", agent_id, request)

    async def _list(
        self, owner: str, routed_to: str | None, request: v1.ListTasksRequest
    ) -> v1.ListTasksResponse:
        await self._repo.flush()
        page_size = request.page_size or 50
        query = TaskQuery(
            owner=owner,
            context_id=request.context_id,
            state=request.status,
            status_after=request.status_timestamp_after,
            page_size=page_size,
            page_token=request.page_token,
            history_length=(
                request.history_length if request.history_length is not None else self._history_default
            ),
            include_artifacts=bool(request.include_artifacts),
        )
        if routed_to is None:
            page = await self._repo.list_tasks(query)
        else:
            page = await self._repo.list_routed(routed_to, query)
        return v1.ListTasksResponse(
            tasks=page.tasks,
            next_page_token=page.next_page_token,
            page_size=page_size,
            total_size=page.total_size,
        )

    async def subscribe(self, owner: str, task_id: str) -> tuple[v1.Task, Subscription]:
        """The task's current snapshot and a subscription to what follows, until it is terminal."""
        opened = await self.subscribe_resumable(owner, task_id, None, retain=False)
        return opened.snapshot, opened.sub

    async def subscribe_resumable(
        self, owner: str, task_id: str, after: int | None, *, retain: bool = True
    ) -> Subscribed:
        """The task's snapshot and a subscription to what follows, on whichever process runs it.

        ``after``: the number of the last event a reconnecting client saw. When every event since is
        still kept (in this process, or on the bus) the subscription holds them first and ``resumed`` is
        set; otherwise it starts right after the snapshot. ``retain``: keep the task's recent events
        here from now on, for clients that resume (the REST stream)."""
        live = self._live.get(task_id)
        if live is None or live.owner != owner:
            return await self._elsewhere.subscribe(owner, task_id, after)
        if live.state.terminal:
            # Its final write is being committed; the stream would hold nothing new.
            raise UnsupportedOperation(f"Task {task_id} is in terminal state {readable(live.state)}")
        # No await from here on: the snapshot, its number and the subscription agree.
        snapshot = state.snapshot(live.task, self._history_default)
        if retain:
            self._broker.retain(task_id)
        if after is not None and self._broker.covers(task_id, after, live.seq):
            return Subscribed(snapshot, self._broker.subscribe(task_id, after=after), live.seq, True)
        return Subscribed(snapshot, self._broker.subscribe(task_id, after=live.seq), live.seq, False)

    async def _visible(self, owner: str, task_id: str) -> LiveTask | v1.Task:
        live = self._live.get(task_id)
        if live is not None and live.owner == owner:
            return live
        stored = await self._repo.get(task_id, owner, 0)
        if stored is None:
            raise TaskNotFound(f"Task {task_id} not found")
        return stored

    # --- cancel and lifecycle ----------------------------------------------------------------------

    async def cancel(self, owner: str, task_id: str) -> v1.Task:
        """Cancel a running or paused task."""
        live = self._live.get(task_id)
        if live is None or live.owner != owner:
            found = await self._repo.positioned(task_id, owner, None)
            if found is None:
                raise TaskNotFound(f"Task {task_id} not found")
            stored = found.task
            live = self._live.get(task_id)
            if live is None or live.owner != owner:
                if found.holder not in (None, self.holder) and not stored.status.state.terminal:
                    return await self._elsewhere.cancel(owner, task_id, found.holder or "")
                if not stored.status.state.interrupted:
                    raise TaskNotCancelable(
                        f"Task {task_id} is in state {readable(stored.status.state)} and cannot be canceled"
                    )
                # Paused before a restart (or let go by its process): no skill to stop.
                live = await self._reviver.hold(stored, owner, None, seq=found.seq)
        # A task already terminal in memory is finishing its last write: its runner must not be
        # interrupted, or its waiters and subscribers would never hear the end.
        if not live.state.terminal:
            await self._halt(live)
        if live.state.terminal:
            raise TaskNotCancelable(
                f"Task {task_id} is in state {readable(live.state)} and cannot be canceled"
            )
        await self._runner.status(live, v1.TaskState.CANCELED)
        return await self.get(owner, task_id, None)

    @property
    def holder(self) -> str | None:
        """This process's name among several on one database (None: the only one)."""
        return self._holders.holder if self._holders is not None else None

    async def expire(self, owner: str, task_id: str, reason: str) -> bool:
        """Fail a task that ran out of time; its skill is stopped (a relay cancels upstream)."""
        live = self._live.get(task_id)
        if live is None or live.owner != owner or live.state.terminal:
            return False
        await self._halt(live)
        if live.state.terminal:
            return False
        await self._runner.status(live, v1.TaskState.FAILED, reason)
        return True

    async def _halt(self, live: LiveTask) -> None:
        runner = live.runner
        if runner is not None and not runner.done():
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        gen = live.generator
        live.generator = None
        if gen is not None:
            try:
                await gen.aclose()
            except Exception:
                log.exception("skill failed while closing", extra={"taskId": live.task.id})

    async def adopt(self, owner: str, task_id: str, skill: Skill) -> bool:
        """At start-up: take a stored task left in flight back under a (resumable) skill's control.

        The skill starts as if continuing the task; if the task was paused and the skill pauses again,
        it waits for the caller's follow-up as before. False when the task is gone or already over.
        """
        found = await self._repo.positioned(task_id, owner, None)
        if found is None or found.task.status.state.terminal:
            return False
        stored = found.task
        live = await self._reviver.hold(stored, owner, None, resumable=True, seq=found.seq)
        live.held = True  # its hold (if it has one) is settled by its end, like any task's
        live.subscription = skill.subscription
        message = next(
            (m for m in reversed(stored.history or []) if m.role is v1.Role.USER),
            v1.Message(message_id=new_id(), role=v1.Role.USER, parts=[v1.Part(text="")]),
        )
        ctx = SkillContext(
            task_id=task_id,
            context_id=stored.context_id or "",
            message=message,
            metadata=stored.metadata or {},
            streaming=True,
            owner=owner,
            caller=caller_of_owner(owner),  # the key it came with was not stored
            artifacts=list(stored.artifacts or []),
        )
        gen = skill.handler(ctx)
        first = await _first_event(gen, skill.id, refusals=False)
        if stored.status.state.interrupted and isinstance(first, InputRequired):
            live.generator = gen  # still waiting for the caller, as before the restart
            live.settle()
            return True
        live.pending = (gen, first, None)
        self._start_runner(live)
        return True

    async def recover(self, keep: Collection[str] = ()) -> int:
        """At start-up: tasks left mid-flight by a previous process are marked failed (except ``keep``).

        A task paused for the caller's input held no work in flight: one of this agent's own skills
        stays paused, and its skill is brought back when the follow-up comes.
        """
        message = v1.Message(message_id=new_id(), role=v1.Role.AGENT, parts=[v1.Part(text=RESTARTED)])
        status = v1.TaskStatus(state=v1.TaskState.FAILED, message=message, timestamp=self._clock())
        paused = [s.id for s in self.agent.skills if not s.resumable]
        return await self._repo.fail_inflight(status, keep, paused)

    async def end_orphan(self, owner: str, task_id: str, reason: str) -> bool:
        """A task taken over from a gateway process that stopped, whose skill cannot go on here: it is
        failed with ``reason`` (its hold released, its subscribers told on every process). A task
        paused for its caller held no work in flight and stays paused. True when it was failed."""
        found = await self._repo.positioned(task_id, owner, None)
        if found is None or found.task.status.state.terminal or task_id in self._live:
            return False
        if found.task.status.state.interrupted:
            origin = await self._repo.origin(task_id, owner)
            if self._reviver.replayable(origin) is not None:
                return False
        live = await self._reviver.hold(found.task, owner, seq=found.seq)
        live.held = True  # releasing a hold the task never had is a no-op
        await self._runner.status(live, v1.TaskState.FAILED, reason)
        return True

    async def shutdown(self) -> None:
        """Stop every task and end every stream; a running task is marked failed unless resumable, a
        paused one stays paused (its skill comes back with the follow-up after the restart)."""
        for live in list(self._live.values()):
            stays_paused = live.paused and live.origin is not None
            await self._halt(live)
            if not live.state.terminal and not live.resumable and not stays_paused:
                await self._runner.status(live, v1.TaskState.FAILED, SHUT_DOWN)
            live.settle()
        # Tasks that ended just before are still closing their skills: let them finish, so nothing
        # they start (a store write) outlives the app.
        if self._runs:
            await asyncio.gather(*list(self._runs), return_exceptions=True)
        await self._repo.flush()
        if self._bus is not None:
            await self._bus.flush()  # the last events reach this process's subscribers before they end
        self._broker.close_all()

    def ping_streams(self) -> None:
        """Queue a keep-alive to every idle subscription (the app calls this now and then)."""
        self._broker.ping_all()

    @property
    def dropped_streams(self) -> int:
        """How many subscriptions were cut off as slow readers so far."""
        return self._broker.dropped

    def live_count(self) -> int:
        """How many tasks are running or paused in memory."""
        return len(self._live)

    def is_live(self, task_id: str) -> bool:
        """Whether the task is running or paused in memory."""
        return task_id in self._live

    def on_end(self, listener: Callable[[str], None]) -> None:
        """Call ``listener`` with a task's id when the task ends (deadlines drop their timers)."""
        self._end_listeners.append(listener)

    def _forget(self, live: LiveTask) -> None:
        self._live.pop(live.task.id, None)
        for listener in self._end_listeners:
            listener(live.task.id)


def retry_task_id(owner: str, message_id: str) -> str | None:
    """The id a new task of ``owner`` started by ``message_id`` gets, so that a retry of the same first
    message finds it (None: an anonymous caller, whose sends are never taken for one another's)."""
    if not owner or owner == ANONYMOUS_ID or not message_id:
        return None
    return str(uuid.uuid5(RETRY_NAMESPACE, f"{owner}\n{message_id}"))


async def _first_event(gen: Handler, skill_id: str, *, refusals: bool) -> AgentEvent | Crash | None:
    """Run a handler to its first event: None when it ends at once, Crash when it raises (a
    GatewayError propagates instead when ``refusals`` is set)."""
    try:
        return await gen.__anext__()
    except StopAsyncIteration:
        return None
    except GatewayError:
        if refusals:
            raise
        log.exception("skill refused before its first event", extra={"skillId": skill_id})
        return Crash()
    except Exception:
        log.exception("skill failed before its first event", extra={"skillId": skill_id})
        return Crash()


async def _undo(admission: Admission | None) -> None:
    """Give back what an admission reserved for a task that was never created (never raises)."""
    if admission is None or admission.undo is None:
        return
    try:
        await admission.undo()
    except Exception:
        log.exception("giving back what a refused call had reserved failed (the ledger check lists it)")
