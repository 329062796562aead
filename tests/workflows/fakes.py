"""In-memory fakes of the workflow ports: a store, gateway tasks the test steers, budgets, agents, a lease."""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from a2a_gateway.errors import InsufficientCredits, NotFound, TaskNotFound
from a2a_gateway.protocol import v1
from a2a_gateway.workflows.models import Run, RunEvent, RunStatus, Workflow
from a2a_gateway.workflows.ports import StepCall

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class Clock:
    """A clock that moves only when told."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class MemoryWorkflowStore:
    """Implements WorkflowStore in memory; copies in and out; ``fail_saves`` makes saves raise."""

    def __init__(self) -> None:
        self.workflows: dict[str, Workflow] = {}
        self.runs: dict[str, Run] = {}
        self.events: dict[str, list[RunEvent]] = {}
        self.saves = 0

    async def add_workflow(self, workflow: Workflow) -> None:
        self.workflows[workflow.id] = workflow

    async def get_workflow(self, owner_id: str | None, workflow_id: str) -> Workflow | None:
        found = self.workflows.get(workflow_id)
        return found if found is not None and owner_id in (None, found.owner_id) else None

    async def list_workflows(self, owner_id: str, limit: int, offset: int) -> list[Workflow]:
        mine = [w for w in self.workflows.values() if w.owner_id == owner_id]
        mine.sort(key=lambda w: w.created_at, reverse=True)
        return mine[offset : offset + limit]

    async def add_run(self, run: Run, events: Sequence[RunEvent]) -> None:
        assert run.id not in self.runs
        self.runs[run.id] = run.copy()
        self.events[run.id] = list(events)

    async def save_run(self, run: Run, events: Sequence[RunEvent], expected_seq: int) -> bool:
        self.saves += 1
        if self.runs[run.id].seq != expected_seq:
            return False
        self.runs[run.id] = run.copy()
        stored = self.events.setdefault(run.id, [])
        for event in events:
            assert not stored or event.seq == stored[-1].seq + 1, "events are saved in order, once"
            stored.append(event)
        return True

    async def get_run(self, owner_id: str | None, run_id: str) -> Run | None:
        found = self.runs.get(run_id)
        return found.copy() if found is not None and owner_id in (None, found.owner_id) else None

    async def runs_of(self, workflow_id: str, limit: int) -> list[Run]:
        runs = [r.copy() for r in self.runs.values() if r.workflow_id == workflow_id]
        runs.sort(key=lambda r: r.created_at, reverse=True)
        return runs[:limit]

    async def open_runs(self) -> list[Run]:
        return [r.copy() for r in self.runs.values() if r.status is RunStatus.RUNNING]

    async def events_after(self, run_id: str, after_seq: int, limit: int) -> list[RunEvent]:
        return [e for e in self.events.get(run_id, []) if e.seq > after_seq][:limit]


@dataclass(slots=True)
class FakeTask:
    """One gateway task the fake made; the test moves it with the FakeStepTasks methods."""

    call: StepCall
    task: v1.Task
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    replies: list[list[v1.Part]] = field(default_factory=list)
    canceled: bool = False

    @property
    def step(self) -> int:
        return int(self.call.metadata["workflowStep"])

    @property
    def attempt(self) -> int:
        return int(self.call.metadata["workflowAttempt"])

    @property
    def data(self) -> Any:
        return next((p.data for p in self.call.parts if p.data is not None), None)


Behaviour = Callable[[FakeTask], None]


class FakeStepTasks:
    """Implements StepTasks: each start makes one task per message id (a repeated send finds it).

    A skill listed in ``auto`` is handled at once by its behaviour (``complete_echo``, ``fail``);
    other tasks wait for the test to call ``complete``, ``fail`` or ``ask``. ``starts`` records every
    start call (a repeated send included), ``order`` each new task's step in creation order.
    """

    def __init__(self) -> None:
        self.tasks: dict[str, FakeTask] = {}
        self.by_message: dict[str, str] = {}
        self.starts: list[StepCall] = []
        self.order: list[tuple[int, int]] = []
        self.auto: dict[str, Behaviour] = {}
        self.refuse: dict[str, Exception] = {}
        self._changed = asyncio.Event()

    async def start(self, call: StepCall) -> v1.Task:
        self.starts.append(call)
        if call.skill_id in self.refuse:
            raise self.refuse[call.skill_id]
        found = self.by_message.get(call.message_id)
        if found is None:
            task_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{call.owner_id}/{call.message_id}"))
            task = v1.Task(
                id=task_id,
                context_id=task_id,
                status=v1.TaskStatus(state=v1.TaskState.SUBMITTED),
                metadata=dict(call.metadata),
            )
            fake = FakeTask(call, task)
            self.tasks[task_id] = fake
            self.by_message[call.message_id] = task_id
            self.order.append((fake.step, fake.attempt))
            behaviour = self.auto.get(call.skill_id)
            if behaviour is not None:
                behaviour(fake)
            self._notify()
            found = task_id
        return self.tasks[found].task.model_copy(deep=True)

    async def follow(self, owner_id: str, task_id: str) -> AsyncIterator[v1.Task]:
        fake = self.tasks.get(task_id)
        if fake is None or fake.call.owner_id != owner_id:
            raise TaskNotFound(f"Task not found: {task_id}")
        while True:
            fake.changed.clear()
            snap = fake.task.model_copy(deep=True)
            yield snap
            if snap.status.state.terminal:
                return
            await fake.changed.wait()

    async def reply(self, owner_id: str, task_id: str, parts: list[v1.Part]) -> None:
        fake = self.tasks[task_id]
        fake.replies.append(parts)
        self._set(fake, v1.TaskState.WORKING)

    async def cancel(self, owner_id: str, task_id: str) -> None:
        fake = self.tasks[task_id]
        if not fake.task.status.state.terminal:
            fake.canceled = True
            self._set(fake, v1.TaskState.CANCELED, "canceled")

    # --- steering -----------------------------------------------------------------------------------

    def complete(self, task_id: str, data: Any = None, text: str | None = None) -> None:
        fake = self.tasks[task_id]
        parts = []
        if text is not None:
            parts.append(v1.Part(text=text))
        if data is not None:
            parts.append(v1.Part(data=data, media_type="application/json"))
        fake.task.artifacts = [
            v1.Artifact(artifact_id=f"a-{task_id[:8]}", parts=parts or [v1.Part(text="ok")])
        ]
        self._set(fake, v1.TaskState.COMPLETED)

    def fail(self, task_id: str, reason: str = "it broke") -> None:
        self._set(self.tasks[task_id], v1.TaskState.FAILED, reason)

    def reject(self, task_id: str) -> None:
        self._set(self.tasks[task_id], v1.TaskState.REJECTED, "declined")

    def ask(self, task_id: str, question: str) -> None:
        self._set(self.tasks[task_id], v1.TaskState.INPUT_REQUIRED, question)

    def of(self, step: int, attempt: int = 1) -> FakeTask:
        """The task made for an attempt of a step."""
        for fake in self.tasks.values():
            if fake.step == step and fake.attempt == attempt:
                return fake
        raise AssertionError(f"no task for step {step} attempt {attempt}")

    async def get(self, step: int, attempt: int = 1) -> FakeTask:
        """The task of an attempt of a step, once it has been made."""
        await self.until(lambda: any(f.step == step and f.attempt == attempt for f in self.tasks.values()))
        return self.of(step, attempt)

    def open(self) -> list[FakeTask]:
        return [f for f in self.tasks.values() if not f.task.status.state.terminal]

    async def until(self, condition: Callable[[], bool]) -> None:
        """Wait (for events, not time) until ``condition`` holds."""
        for _ in range(10_000):
            if condition():
                return
            await asyncio.sleep(0)
        raise AssertionError("the condition never held")

    def _set(self, fake: FakeTask, state: v1.TaskState, text: str | None = None) -> None:
        message = None
        if text is not None:
            message = v1.Message(message_id=uuid.uuid4().hex, role=v1.Role.AGENT, parts=[v1.Part(text=text)])
        fake.task.status = v1.TaskStatus(state=state, message=message)
        fake.changed.set()
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


def complete_echo(fake: FakeTask) -> None:
    """Complete at once with the input it was given as its output data."""
    fake.task.artifacts = [
        v1.Artifact(
            artifact_id="out", parts=[v1.Part(data={"got": fake.data}, media_type="application/json")]
        )
    ]
    fake.task.status = v1.TaskStatus(state=v1.TaskState.COMPLETED)


def fail_now(fake: FakeTask) -> None:
    """Fail at once."""
    fake.task.status = v1.TaskStatus(state=v1.TaskState.FAILED)


class FakeBudgets:
    """Implements RunBudgets over a wallet of ``available`` credits."""

    def __init__(self, available: int = 1_000_000) -> None:
        self.available = available
        self.open_budgets: dict[str, int] = {}
        self.closed: list[str] = []

    async def open(
        self,
        run_id: str,
        payer_id: str,
        amount: int,
        *,
        key_id: str | None = None,
        spend_cap: int | None = None,
    ) -> None:
        if run_id in self.open_budgets:
            return
        if amount > self.available:
            raise InsufficientCredits(price=amount, available=self.available)
        self.available -= amount
        self.open_budgets[run_id] = amount

    async def close(self, run_id: str) -> None:
        amount = self.open_budgets.pop(run_id, None)
        if amount is not None:
            self.available += amount
            self.closed.append(run_id)


class FakeAgents:
    """Implements StepAgents: ``skills`` maps agent id to {skill id: price}; ``owners`` agent to owner."""

    def __init__(self, skills: dict[str, dict[str, int]], budgets: FakeBudgets | None = None) -> None:
        self.skills = skills
        self.owners: dict[str, str] = {}
        self.budgets = budgets

    async def skill_price(self, agent_id: str, skill_id: str, payer_id: str) -> int:
        agent = self.skills.get(agent_id)
        if agent is None:
            raise NotFound(f"agent {agent_id} does not exist")
        if skill_id not in agent:
            raise NotFound(f"skill {skill_id} is not offered by agent {agent_id}")
        return 0 if self.owners.get(agent_id) == payer_id else agent[skill_id]

    async def available(self, user_id: str) -> int:
        return self.budgets.available if self.budgets is not None else 1_000_000


class MemoryLease:
    """Implements Lease in memory on an injected clock (shared by the services of one test)."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self.held: dict[str, tuple[str, datetime]] = {}

    async def acquire(self, name: str, holder: str, ttl_s: float) -> bool:
        await asyncio.sleep(0)  # a database round trip: other tasks run meanwhile
        now = self._clock()
        current = self.held.get(name)
        if current is None or current[0] == holder or current[1] <= now:
            self.held[name] = (holder, now + timedelta(seconds=ttl_s))
            return True
        return False

    async def release(self, name: str, holder: str) -> None:
        if self.held.get(name, ("", T0))[0] == holder:
            del self.held[name]


def body(*steps: dict[str, Any], name: str = "wf") -> dict[str, Any]:
    """A workflow body with the given steps."""
    return {"name": name, "description": "test", "steps": list(steps)}


def step(
    skill: str = "work", agent: str = "agent-a", deps: Sequence[int] = (), **extra: Any
) -> dict[str, Any]:
    """One step's body."""
    return {"name": f"{skill}", "agentId": agent, "skillId": skill, "dependsOn": list(deps), **extra}


def deep(value: Any) -> Any:
    return copy.deepcopy(value)
