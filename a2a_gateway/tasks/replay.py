"""Bringing a paused task's skill back after a restart.

A skill handler is an async generator: its state lives in a coroutine frame that cannot be stored. A
task paused in ``INPUT_REQUIRED`` holds no work in flight, though, and its history records every reply
the caller gave. So the handler is started again from the task's first message and handed the recorded
replies at its pauses, its events dropped (the task holds them already), until it reaches the pause the
task is in. See docs/decisions/0014-paused-tasks-survive-a-restart.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from a2a_gateway.agent import AgentDefinition, AgentEvent, InputRequired, Reply, Skill, SkillContext, Status
from a2a_gateway.agent.caller import ANONYMOUS, Caller
from a2a_gateway.auth.models import ANONYMOUS_ID
from a2a_gateway.errors import TaskNotFound, UnsupportedOperation
from a2a_gateway.protocol import v1
from a2a_gateway.protocol.base import utc_now
from a2a_gateway.tasks import state
from a2a_gateway.tasks.broker import Delivery
from a2a_gateway.tasks.limits import stored_size
from a2a_gateway.tasks.live import Handler, LiveTask
from a2a_gateway.tasks.models import TaskOrigin
from a2a_gateway.tasks.ports import TaskEventBus, TaskRepository
from a2a_gateway.tasks.runner import TaskRunner
from a2a_gateway.tasks.state import readable

log = logging.getLogger(__name__)
NOT_RESUMED = (
    "The skill could not be brought back to this task's pause after a restart; it was marked failed."
)


def caller_of_owner(owner: str) -> Caller:
    """The caller a task is made for when only its owner is known (a task brought back after a restart):
    the owner's user id, with no key; the open gateway's anonymous owner stays anonymous."""
    return ANONYMOUS if not owner or owner == ANONYMOUS_ID else Caller(user=owner)


class ReplayMismatch(Exception):
    """The handler did not retrace the task's recorded steps (it ended, raised or asked elsewhere)."""


def recorded(history: list[v1.Message]) -> tuple[v1.Message, list[v1.Message]] | None:
    """The message that started a task and the caller's replies since, in order; None without them."""
    if not history or history[0].role is not v1.Role.USER:
        return None
    return history[0], [m for m in history[1:] if m.role is v1.Role.USER]


def _pauses(event: AgentEvent) -> bool:
    return isinstance(event, InputRequired) or (isinstance(event, Status) and event.state.interrupted)


def _ends(event: AgentEvent) -> bool:
    return isinstance(event, Reply) or (isinstance(event, Status) and event.state.terminal)


async def replay(gen: Handler, replies: list[v1.Message]) -> None:
    """Drive a freshly started handler to the pause that follows ``replies``.

    Raises ReplayMismatch when it stops, fails or ends the task before getting there. The handler is left
    suspended at that pause, ready for ``asend`` of the caller's new message.
    """
    answered = 0
    try:
        event = await gen.__anext__()
        while True:
            if _pauses(event):
                if answered == len(replies):
                    return
                event = await gen.asend(replies[answered])
                answered += 1
            elif _ends(event):
                raise ReplayMismatch(f"the handler ended the task after {answered} of {len(replies)} replies")
            else:
                event = await gen.__anext__()
    except StopAsyncIteration:
        raise ReplayMismatch(f"the handler returned after {answered} of {len(replies)} replies") from None
    except ReplayMismatch:
        raise
    except Exception as exc:
        raise ReplayMismatch(f"the handler raised {type(exc).__name__} while replaying") from exc


class Reviver:
    """Takes stored tasks back into memory: a paused task's skill is replayed to the task's pause."""

    def __init__(
        self,
        agent: AgentDefinition,
        repo: TaskRepository,
        runner: TaskRunner,
        live: dict[str, LiveTask],
        clock: Callable[[], datetime],
        *,
        bus: TaskEventBus | None = None,
    ) -> None:
        self._bus = bus  # several processes: a task's events on the bus may be ahead of its stored state
        self._agent = agent
        self._repo = repo
        self._runner = runner
        self._live = live
        self._clock = clock

    async def hold(
        self,
        stored: v1.Task,
        owner: str,
        origin: TaskOrigin | None = None,
        resumable: bool = False,
        *,
        seq: int = 0,
    ) -> LiveTask:
        """Take a stored task into memory (its history and artifacts become lists the runner extends),
        with its webhooks, so what happens from now on is pushed as before the restart. ``seq``: the
        number of its last stored event; its next events are numbered on from there.

        With several processes, a process that stopped may have published events past its last
        write: those (still on the bus) are applied to the task first, so its subscribers and its
        store agree, and numbering goes on after the last of them."""
        stored.artifacts = list(stored.artifacts or [])
        stored.history = list(stored.history or [])
        saved = len(stored.history)
        touched: set[str] = set()
        caught_up = False
        if self._bus is not None:
            missed = [d for d in await self._bus.since(stored.id, seq + 1) if d.seq > seq]
            touched = _apply(stored, missed)
            caught_up = bool(missed)
            seq = max([seq, await self._bus.last(stored.id), *(d.seq for d in missed)])
        live = LiveTask(
            task=stored, owner=owner, created_at=self._clock(), resumable=resumable, origin=origin, seq=seq
        )
        live.saved_messages = saved  # messages the bus brought are written below, with the rest
        live.stored_bytes = stored_size(stored)  # the size limits count on from what is stored
        self._live[stored.id] = live
        if caught_up:
            caught_up_write = live.changes()
            caught_up_write.artifact_ids |= touched
            self._repo.submit(caught_up_write)

        configs = await self._repo.list_push_configs(stored.id)
        known = {c.id for c in configs}
        # A config attached while the stored ones were read is kept too.
        live.push_configs = configs + [c for c in live.push_configs if c.id not in known]
        return live

    def replayable(self, origin: TaskOrigin | None) -> Skill | None:
        """The skill that started a task, when it is one of the agent's own (a relay resumes otherwise)."""
        if origin is None:
            return None
        return next((s for s in self._agent.skills if s.id == origin.skill_id and not s.resumable), None)

    async def revive(self, owner: str, task_id: str) -> LiveTask:
        """A stored task of ``owner`` that is not in memory: a paused one comes back to its pause, its
        handler waiting for the follow-up. Anything else is refused as the protocol says."""
        found = await self._repo.positioned(task_id, owner, None)
        if found is None:
            raise TaskNotFound(f"Task {task_id} not found")
        stored = found.task
        if stored.status.state.terminal:
            raise UnsupportedOperation(f"Task {task_id} is in terminal state {readable(stored.status.state)}")
        if not stored.status.state.interrupted:
            raise UnsupportedOperation(f"Task {task_id} is not running in this gateway")
        origin = await self._repo.origin(task_id, owner)
        current = self._live.get(task_id)
        if current is not None and current.owner == owner:
            return current  # another request brought it back meanwhile
        skill = self.replayable(origin)
        steps = recorded(stored.history or [])
        if origin is None or skill is None or steps is None:
            raise UnsupportedOperation(f"Task {task_id} is not running in this gateway")
        first, replies = steps
        # In memory before the replay: a second follow-up meanwhile hears that the task is working.
        live = await self.hold(stored, owner, origin, seq=found.seq)
        live.subscription = skill.subscription
        live.settle()
        ctx = SkillContext(
            task_id=task_id,
            context_id=stored.context_id or "",
            message=first,
            metadata=dict(origin.metadata),
            streaming=origin.streaming,
            owner=owner,
            caller=caller_of_owner(owner),
            replaying=True,
        )
        gen = skill.handler(ctx)
        try:
            await replay(gen, replies)
        except ReplayMismatch:
            log.warning("a paused task could not be resumed", exc_info=True, extra={"taskId": task_id})
            await close_handler(gen, task_id)
            if self._live.get(task_id) is live and not live.state.terminal:
                await self._runner.status(live, v1.TaskState.FAILED, NOT_RESUMED)
            raise UnsupportedOperation(
                f"Task {task_id} could not be resumed after a restart and was marked failed"
            ) from None
        except BaseException:
            # Cancelled (the caller went away): the task stays paused in the store, as it was.
            await close_handler(gen, task_id)
            if self._live.get(task_id) is live:
                del self._live[task_id]
            raise
        if self._live.get(task_id) is not live or live.state.terminal:
            await close_handler(gen, task_id)  # canceled or expired while its skill was replayed
            raise UnsupportedOperation(f"Task {task_id} is in terminal state {readable(live.state)}")
        live.generator, live.replay = gen, ctx
        return live


def _apply(task: v1.Task, events: list[Delivery]) -> set[str]:
    """Bring a stored task level with events published after its last write (non-terminal ones: an
    end is stored before it is published); the ids of the artifacts they touched."""
    touched: set[str] = set()
    for delivery in events:
        event = delivery.event
        if event.artifact_update is not None:
            update = event.artifact_update
            state.put_artifact(task, update.artifact.model_copy(deep=True), bool(update.append))
            touched.add(update.artifact.artifact_id)
        elif event.status_update is not None and not event.status_update.status.state.terminal:
            status = event.status_update.status
            message = status.message
            seen = message is not None and any(m.message_id == message.message_id for m in task.history or [])
            state.set_status(task, status.state, status.timestamp or utc_now(), message, record=not seen)
    return touched


async def close_handler(gen: Handler, task_id: str) -> None:
    """Close a handler; its failure while closing is logged, never raised."""
    try:
        await gen.aclose()
    except Exception:
        log.exception("skill failed while closing", extra={"taskId": task_id})
