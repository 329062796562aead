"""Task records as the domain keeps them, and the units the repository persists and returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from a2a_gateway.billing.models import Outcome
from a2a_gateway.protocol import v1


@dataclass(frozen=True, slots=True)
class TaskOrigin:
    """The skill a task runs and the request it started from: enough to start that skill again."""

    skill_id: str
    metadata: dict[str, Any] = field(default_factory=dict)
    streaming: bool = False


@dataclass(slots=True)
class TaskWrite:
    """What changed in one task since its last write; coalesced by the repository before a commit."""

    task: v1.Task
    owner: str
    created_at: datetime
    messages_from: int
    artifact_ids: set[str] = field(default_factory=set)
    # Lands with the task's first write; later writes leave it as it is. A relayed task has none: it
    # resumes from its call record instead.
    origin: TaskOrigin | None = None
    # A subscription's window drops its oldest artifacts: their stored rows go. Artifacts are stored in
    # order ``artifact_seq_base + index``, so the rows that stay keep their place.
    dropped_artifact_ids: set[str] = field(default_factory=set)
    artifact_seq_base: int = 0
    # The task's hold is captured or released in this write's transaction (decision 0016). The first
    # settlement of a task wins, as in the ledger: a subscription captured at its start is not released.
    settlement: Outcome | None = None
    # The number of the task's last event this state includes (its stream resumes after it).
    seq: int = 0

    def merge(self, later: TaskWrite) -> None:
        """Fold a later write of the same task into this one."""
        if self.settlement is None:
            self.settlement = later.settlement
        self.task = later.task
        self.seq = max(self.seq, later.seq)
        self.messages_from = min(self.messages_from, later.messages_from)
        if later.artifact_ids:
            self.artifact_ids |= later.artifact_ids
            self.dropped_artifact_ids -= later.artifact_ids
        if later.dropped_artifact_ids:
            self.dropped_artifact_ids |= later.dropped_artifact_ids
            self.artifact_ids -= later.dropped_artifact_ids
        self.artifact_seq_base = later.artifact_seq_base


@dataclass(frozen=True, slots=True)
class Positioned:
    """A stored task with the number of its last event the snapshot includes, and the gateway process
    that runs it (None: a single-process gateway)."""

    task: v1.Task
    seq: int
    holder: str | None


@dataclass(frozen=True, slots=True)
class Orphan:
    """A task left in flight by a gateway process that stopped (its lease expired)."""

    task_id: str
    owner: str
    state: v1.TaskState
    holder: str


@dataclass(slots=True)
class TaskQuery:
    """Filters and page of a task listing."""

    owner: str
    context_id: str | None = None
    state: v1.TaskState | None = None
    status_after: datetime | None = None
    page_size: int = 50
    page_token: str | None = None
    history_length: int | None = None
    include_artifacts: bool = False


@dataclass(slots=True)
class TaskPage:
    """One page of tasks."""

    tasks: list[v1.Task]
    next_page_token: str
    total_size: int
