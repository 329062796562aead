"""A task that is still in memory: running, or paused waiting for the client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from datetime import datetime

from a2a_gateway.agent import AgentEvent, SkillContext
from a2a_gateway.billing.models import Outcome
from a2a_gateway.protocol import v1
from a2a_gateway.tasks.models import TaskOrigin, TaskWrite

Handler = AsyncGenerator[AgentEvent, v1.Message | None]


class Crash:
    """Stands for a handler that raised before its first event."""


class Unstarted:
    """Stands for a first event not asked for yet: the runner fetches it (a task returned at once)."""


UNSTARTED = Unstarted()

Pending = tuple[Handler, AgentEvent | Crash | Unstarted | None, v1.Message | None]
"""A run about to start: the handler, its first event (new task) or the follow-up (resumed task)."""


def _new_future() -> asyncio.Future[None]:
    return asyncio.get_running_loop().create_future()


@dataclass(eq=False, slots=True)
class LiveTask:
    """The in-memory side of a task the service is driving."""

    task: v1.Task
    owner: str
    created_at: datetime
    saved_messages: int = 0
    push_configs: list[v1.TaskPushNotificationConfig] = field(default_factory=list)
    generator: Handler | None = None
    pending: Pending | None = None
    runner: asyncio.Task[None] | None = None
    settled: asyncio.Future[None] = field(default_factory=_new_future)
    resumable: bool = False
    origin: TaskOrigin | None = None
    replay: SkillContext | None = None  # the context of a skill replayed to its pause, until the follow-up
    subscription: bool = False  # meant never to end: keeps a rolling window instead of failing at limits
    stored_bytes: int = 0  # about how much the task's artifacts and history take (see tasks/limits.py)
    dropped_artifacts: int = 0  # artifacts a subscription's window let go, oldest first
    held: bool = False  # a price is held for this task: its end (a subscription: its start) settles it
    settling: bool = False  # the settlement has been handed to a write already
    seq: int = 0  # the number of the task's last event (each event, published or not, takes the next)

    @property
    def state(self) -> v1.TaskState:
        """The task's current state."""
        return self.task.status.state

    def changes(self, artifact_id: str | None = None, dropped: list[str] | None = None) -> TaskWrite:
        """What to persist now: the task row, history not yet saved, a touched artifact, dropped ones."""
        write = TaskWrite(
            task=self.task,
            owner=self.owner,
            created_at=self.created_at,
            messages_from=self.saved_messages,
            artifact_ids={artifact_id} if artifact_id else set(),
            origin=self.origin,
            dropped_artifact_ids=set(dropped) if dropped else set(),
            artifact_seq_base=self.dropped_artifacts,
            settlement=self._settlement(),
            seq=self.seq,
        )
        self.saved_messages = len(self.task.history or ())
        return write

    def _settlement(self) -> Outcome | None:
        """Capture on completion (a subscription as soon as it streams), release on any other end."""
        if not self.held or self.settling:
            return None
        state = self.state
        if state is v1.TaskState.COMPLETED or (self.subscription and state is v1.TaskState.WORKING):
            outcome = Outcome.CAPTURE
        elif state.terminal:
            outcome = Outcome.RELEASE
        else:
            return None
        self.settling = True
        return outcome

    @property
    def paused(self) -> bool:
        """Waiting for the caller (input or auth required) with no work in flight."""
        return self.state.interrupted and self.pending is None and (self.runner is None or self.runner.done())

    def settle(self) -> None:
        """Wake whoever waits for the task to stop (terminal or interrupted)."""
        if not self.settled.done():
            self.settled.set_result(None)

    def rearm(self) -> None:
        """Start a new segment of work after a follow-up message."""
        if self.settled.done():
            self.settled = _new_future()
