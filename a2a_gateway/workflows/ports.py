"""What the workflow service needs from outside: a store, gateway tasks for its steps, the ledger's run
budgets, the registry's agents and a lease. The composition root (a2a_gateway.app) fills them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from a2a_gateway.protocol import v1
from a2a_gateway.workflows.models import Run, RunEvent, Workflow


class WorkflowStore(Protocol):
    """Workflows, runs and run events; every read of a user's data is scoped to its owner."""

    async def add_workflow(self, workflow: Workflow) -> None:
        """Store a new workflow."""
        ...

    async def get_workflow(self, owner_id: str | None, workflow_id: str) -> Workflow | None:
        """A workflow if ``owner_id`` owns it (any owner when None)."""
        ...

    async def list_workflows(self, owner_id: str, limit: int, offset: int) -> list[Workflow]:
        """The owner's workflows, newest first."""
        ...

    async def add_run(self, run: Run, events: Sequence[RunEvent]) -> None:
        """Store a new run and its first events in one transaction."""
        ...

    async def save_run(self, run: Run, events: Sequence[RunEvent], expected_seq: int) -> bool:
        """Store the run's new state and the events that led to it, in one transaction, if the stored
        run's ``seq`` is still ``expected_seq`` (the last one this driver saved); False, writing
        nothing, when it is not: another driver has moved the run on."""
        ...

    async def get_run(self, owner_id: str | None, run_id: str) -> Run | None:
        """A run if ``owner_id`` owns it (any owner when None)."""
        ...

    async def runs_of(self, workflow_id: str, limit: int) -> list[Run]:
        """A workflow's most recent runs, newest first."""
        ...

    async def open_runs(self) -> list[Run]:
        """Every run that has not ended (what a restarted gateway resumes)."""
        ...

    async def events_after(self, run_id: str, after_seq: int, limit: int) -> list[RunEvent]:
        """A run's events numbered above ``after_seq``, in order."""
        ...


@dataclass(frozen=True, slots=True)
class StepCall:
    """One attempt of a step, as a gateway task: made for ``owner_id``, paid from run ``budget_id``.

    ``message_id`` is the same for the same attempt, so sending it again after a restart finds the task
    the first send made instead of making (and paying for) another.
    """

    owner_id: str
    agent_id: str
    skill_id: str
    message_id: str
    parts: list[v1.Part]
    metadata: dict[str, Any]
    budget_id: str | None


class StepTasks(Protocol):
    """Gateway tasks through routing, as the steps of runs use them."""

    async def start(self, call: StepCall) -> v1.Task:
        """Create the attempt's task (or find the one a previous send of the same message made); its
        first snapshot. GatewayError when it cannot start (no credits, agent unknown, ...)."""
        ...

    def follow(self, owner_id: str, task_id: str) -> AsyncIterator[v1.Task]:
        """Snapshots of the task as it changes, ending with its terminal one (a paused task's snapshot
        comes and the iterator goes on waiting for the answer). TaskNotFound when it is gone."""
        ...

    async def reply(self, owner_id: str, task_id: str, parts: list[v1.Part]) -> None:
        """Answer a task that asked for input."""
        ...

    async def cancel(self, owner_id: str, task_id: str) -> None:
        """Cancel a task (nothing when it ended already)."""
        ...


class RunBudgets(Protocol):
    """The ledger's holds for whole runs: a run's steps are paid from its budget."""

    async def open(
        self,
        run_id: str,
        payer_id: str,
        amount: int,
        *,
        key_id: str | None = None,
        spend_cap: int | None = None,
    ) -> None:
        """Hold ``amount`` for the run; InsufficientCredits (nothing held) when the payer falls short. The
        same run again is a no-op. A run started with a key that has a daily ``spend_cap`` counts its
        whole budget against it (SpendCapReached, nothing held, when that passes the cap)."""
        ...

    async def close(self, run_id: str) -> None:
        """The run ended: release what its steps did not take (nothing when already closed)."""
        ...


class StepAgents(Protocol):
    """What the service checks about a step's agent at creation."""

    async def skill_price(self, agent_id: str, skill_id: str, payer_id: str) -> int:
        """What one call of the skill costs ``payer_id`` (nothing on their own agent); NotFound naming
        what is missing ("agent ..." or "skill ...") when the agent or the skill does not exist."""
        ...

    async def available(self, user_id: str) -> int:
        """Credits the user can spend now (for the affordability check at creation)."""
        ...


class Lease(Protocol):
    """A named lease in the database: one holder at a time until it expires or is let go."""

    async def acquire(self, name: str, holder: str, ttl_s: float) -> bool:
        """Take the lease if free or expired, or extend it if ``holder`` has it; True when held now."""
        ...

    async def release(self, name: str, holder: str) -> None:
        """Let the lease go if ``holder`` has it."""
        ...


class RunControl(Protocol):
    """Passes a cancel or a step's answer to the gateway process that drives a run (several processes
    on one database; decision 0020)."""

    async def driver(self, run_id: str) -> str | None:
        """The process whose lease on the run has not expired, if any."""
        ...

    async def ask_run_cancel(self, holder: str, owner_id: str, run_id: str) -> None:
        """Ask the driver to cancel the run."""
        ...

    async def ask_run_reply(
        self, holder: str, owner_id: str, run_id: str, index: int, parts: list[v1.Part]
    ) -> None:
        """Ask the driver to pass the answer to the run's step ``index``."""
        ...
