"""Workflows, their runs and the events a run emits: the nouns of DAG execution."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

DEFAULT_TIMEOUT_S = 300
DEFAULT_BACKOFF_MS = 1000


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often a failed step is tried again, and how long the first wait is (doubling after)."""

    max_retries: int = 0
    backoff_ms: int = DEFAULT_BACKOFF_MS

    def wait_s(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first): backoff * 2^(retry-1)."""
        return float(self.backoff_ms << (retry - 1)) / 1000


@dataclass(frozen=True, slots=True)
class StepSpec:
    """One step: a call of ``skill_id`` on ``agent_id`` with ``input`` once its dependencies completed."""

    name: str
    agent_id: str
    skill_id: str
    input: dict[str, Any]
    depends_on: tuple[int, ...] = ()
    timeout_s: int = DEFAULT_TIMEOUT_S
    retry: RetryPolicy = RetryPolicy()
    price: int = 0  # what one attempt costs, as the agent charged when the workflow was saved


@dataclass(frozen=True, slots=True)
class Workflow:
    """A saved DAG of steps, owned by one user."""

    id: str
    owner_id: str
    name: str
    description: str
    steps: tuple[StepSpec, ...]
    created_at: datetime

    @property
    def budget(self) -> int:
        """Credits a run holds at its start: one attempt of every step."""
        return sum(s.price for s in self.steps)


class StepStatus(StrEnum):
    """Where a step of a run stands."""

    PENDING = "pending"  # waiting for its dependencies
    RUNNING = "running"  # its task is working
    INPUT_REQUIRED = "input_required"  # its task asked a question: POST .../steps/{i}/reply answers
    RETRY_WAIT = "retry_wait"  # an attempt failed; the next starts at ``retry_at``
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"  # a dependency failed, or the run was canceled before it started
    CANCELED = "canceled"  # the run was canceled while it ran

    @property
    def ended(self) -> bool:
        """Whether the step will not change any more."""
        return self in _STEP_ENDED

    @property
    def active(self) -> bool:
        """Whether a task or a retry timer belongs to the step right now."""
        return self in (StepStatus.RUNNING, StepStatus.INPUT_REQUIRED, StepStatus.RETRY_WAIT)


_STEP_ENDED = frozenset({StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.CANCELED})


class RunStatus(StrEnum):
    """Where a run stands."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def ended(self) -> bool:
        """Whether the run is over."""
        return self is not RunStatus.RUNNING


@dataclass(slots=True)
class StepRun:
    """One step's progress in a run; ``attempt`` counts from 1 once the step has started."""

    index: int
    status: StepStatus = StepStatus.PENDING
    attempt: int = 0
    task_id: str | None = None
    task_ids: list[str] = field(default_factory=list)  # every attempt's task, oldest first
    started_at: datetime | None = None  # the current attempt's start (its timeout runs from here)
    ended_at: datetime | None = None
    retry_at: datetime | None = None
    error: str | None = None
    question: str | None = None  # what the step's task asked, while it waits for a reply
    output: list[dict[str, Any]] | None = None  # the completed task's artifacts (A2A 1.0 JSON)

    def copy(self) -> StepRun:
        """A copy that shares nothing mutable with this one."""
        return dataclasses.replace(
            self, task_ids=list(self.task_ids), output=None if self.output is None else list(self.output)
        )


@dataclass(slots=True)
class Run:
    """One execution of a workflow; ``budget`` is what it holds, ``seq`` its last event's number."""

    id: str
    workflow_id: str
    owner_id: str
    status: RunStatus
    steps: list[StepRun]
    created_at: datetime
    budget: int = 0
    ended_at: datetime | None = None
    error: str | None = None
    seq: int = 0
    inputs: dict[str, Any] = field(default_factory=dict)  # per-step input overrides, by step index

    def copy(self) -> Run:
        """A copy that shares nothing mutable with this one."""
        return dataclasses.replace(self, steps=[s.copy() for s in self.steps], inputs=dict(self.inputs))


class EventKind(StrEnum):
    """What a run's stream announces."""

    STEP_STARTED = "step_started"
    STEP_RETRY = "step_retry"
    STEP_INPUT_REQUIRED = "step_input_required"
    STEP_COMPLETED = "step_completed"
    STEP_FAILED = "step_failed"
    STEP_SKIPPED = "step_skipped"
    RUN_COMPLETED = "run_completed"
    RUN_FAILED = "run_failed"
    RUN_CANCELED = "run_canceled"

    @property
    def final(self) -> bool:
        """Whether the event ends its run's stream."""
        return self in (EventKind.RUN_COMPLETED, EventKind.RUN_FAILED, EventKind.RUN_CANCELED)


@dataclass(frozen=True, slots=True)
class RunEvent:
    """One event of a run, numbered from 1 in the order the run emitted them (the SSE ``id``)."""

    run_id: str
    seq: int
    kind: EventKind
    at: datetime
    data: dict[str, Any]
