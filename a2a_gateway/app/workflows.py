"""The workflow service's ports filled from the gateway's parts, and the job that drives runs.

Steps are gateway tasks of the task service (so routing holds, relays, settles and scores them like any
task); prices and balances come from the registry and the ledger; runs are resumed at start and open
runs nobody drives are taken over every ``takeover_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from a2a_gateway.agent.caller import Caller
from a2a_gateway.billing.service import BillingService
from a2a_gateway.errors import (
    InvalidAgentResponse,
    NotFound,
    TaskNotCancelable,
    TaskNotFound,
    UnsupportedOperation,
)
from a2a_gateway.protocol import v1
from a2a_gateway.protocol.ids import new_id
from a2a_gateway.registry.service import RegistryService
from a2a_gateway.tasks.service import TaskService
from a2a_gateway.workflows.ports import StepCall
from a2a_gateway.workflows.service import WorkflowService

log = logging.getLogger(__name__)
STEP_KEY_KIND = "workflow"  # how a step's caller authenticated, as assertions and skills see it


class TaskSteps:
    """Implements workflows.ports.StepTasks over the gateway's task service.

    Bound after construction: the task service serves the gateway's own skills, run-workflow among
    them, which needs the workflow service, which needs this.
    """

    def __init__(self, service: TaskService | None = None) -> None:
        self._bound = service

    def bind(self, service: TaskService) -> None:
        """The task service steps run on."""
        self._bound = service

    @property
    def _service(self) -> TaskService:
        assert self._bound is not None, "TaskSteps is bound to the task service at assembly"
        return self._bound

    async def start(self, call: StepCall) -> v1.Task:
        """Send the attempt's message as a new task (a repeated message id finds the first one's task)."""
        message = v1.Message(message_id=call.message_id, role=v1.Role.USER, parts=call.parts)
        request = v1.SendMessageRequest(
            message=message,
            configuration=v1.SendMessageConfiguration(return_immediately=True, history_length=0),
            metadata=dict(call.metadata),
        )
        caller = Caller(user=call.owner_id, key_kind=STEP_KEY_KIND, budget=call.budget_id)
        result = await self._service.send(call.owner_id, request, streaming=False, caller=caller)
        if result.task is None:
            raise InvalidAgentResponse("The step's agent answered without a task")
        return result.task

    async def follow(self, owner_id: str, task_id: str) -> AsyncIterator[v1.Task]:
        """Snapshots as the task's status changes, ending with its terminal one."""
        try:
            first, sub = await self._service.subscribe(owner_id, task_id)
        except UnsupportedOperation:
            # Ended (or being ended) already: its stored (or final in-memory) form says how.
            yield await self._service.get(owner_id, task_id, 0)
            return
        try:
            yield first
            async for event in sub:
                if event.status_update is not None or event.task is not None:
                    snap = await self._service.get(owner_id, task_id, 0)
                    yield snap
                    if snap.status.state.terminal:
                        return
        finally:
            sub.close()
        last = await self._service.get(owner_id, task_id, 0)
        if last.status.state.terminal:
            yield last

    async def reply(self, owner_id: str, task_id: str, parts: list[v1.Part]) -> None:
        """A follow-up message to the task that asked."""
        message = v1.Message(message_id=new_id(), role=v1.Role.USER, parts=parts, task_id=task_id)
        request = v1.SendMessageRequest(
            message=message, configuration=v1.SendMessageConfiguration(return_immediately=True)
        )
        await self._service.send(owner_id, request, streaming=False)

    async def cancel(self, owner_id: str, task_id: str) -> None:
        """Cancel the task; one that ended already is left as it is."""
        with contextlib.suppress(TaskNotCancelable, TaskNotFound):
            await self._service.cancel(owner_id, task_id)


class RegistrySteps:
    """Implements workflows.ports.StepAgents over the registry and the ledger."""

    def __init__(self, registry: RegistryService, billing: BillingService) -> None:
        self._registry = registry
        self._billing = billing

    async def skill_price(self, agent_id: str, skill_id: str, payer_id: str) -> int:
        """The skill's price for ``payer_id`` (nothing on their own agent)."""
        try:
            agent = await self._registry.get(agent_id)
        except NotFound:
            raise NotFound(f"agent {agent_id[:64]} does not exist") from None
        if not any(s.id == skill_id for s in agent.skills):
            raise NotFound(f"skill {skill_id[:64]} is not offered by agent {agent_id[:64]}")
        return 0 if agent.owner_id == payer_id else agent.price_of(skill_id)

    async def available(self, user_id: str) -> int:
        """What the user can spend now."""
        return (await self._billing.balance(user_id)).available


class LedgerBudgets:
    """Implements workflows.ports.RunBudgets over the ledger's run budgets: a run's budget is one hold
    in its payer's escrow, each step's hold is carved out of it, and closing gives back the rest."""

    def __init__(self, billing: BillingService) -> None:
        self._billing = billing

    async def open(
        self,
        run_id: str,
        payer_id: str,
        amount: int,
        *,
        key_id: str | None = None,
        spend_cap: int | None = None,
    ) -> None:
        """Hold the run's budget (a key's cap counts only when the key has one)."""
        capped = key_id is not None and spend_cap is not None
        await self._billing.open_budget(
            run_id,
            payer_id,
            amount,
            key_id=key_id if capped else None,
            daily_spend_cap=spend_cap if capped else None,
        )

    async def close(self, run_id: str) -> None:
        """Give back what the run's steps did not take (nothing when closed already)."""
        await self._billing.close_budget(run_id)


class WorkflowRunner:
    """The job that resumes runs at start, takes over orphaned ones periodically, and stops driving at
    shutdown (before the task service stops, so no step reads a shutdown as its task's end)."""

    def __init__(self, workflows: WorkflowService, takeover_seconds: float) -> None:
        self._workflows = workflows
        self._interval = takeover_seconds
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Resume what this gateway left, then look for orphaned runs now and then."""
        resumed = await self._workflows.resume()
        if resumed:
            log.info("resumed %d workflow runs", resumed)
        if self._interval > 0:
            self._task = asyncio.create_task(self._run(), name="workflow-takeover")

    async def close(self) -> None:
        """Stop taking over and driving runs; their tasks and saved state stay."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._workflows.shutdown()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                taken = await self._workflows.resume()
                if taken:
                    log.info("took over %d workflow runs nobody drove", taken)
            except Exception:
                log.exception("looking for orphaned workflow runs failed; the next pass tries again")
