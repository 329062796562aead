"""What the gateway does when a routed call ends (trust evidence) and how the hold sweeper ends a paid
task paused too long."""

from __future__ import annotations

from a2a_gateway.billing.service import BillingService
from a2a_gateway.errors import NotFound, TaskNotCancelable, TaskNotFound
from a2a_gateway.protocol import v1
from a2a_gateway.protocol.base import utc_now
from a2a_gateway.registry.service import RegistryService
from a2a_gateway.routing.calls import REPLIED, RoutedCall
from a2a_gateway.tasks.service import TaskService
from a2a_gateway.trust.models import TaskEvidence, credit_weight_for, outcome_for
from a2a_gateway.trust.refresher import ScoreRefresher
from a2a_gateway.trust.service import TrustService

# How a routed call's outcome ends its task for trust (any other outcome is a failure the agent did not
# cause unless routing counts it as failing: an A2A refusal, an unsigned call, a call lost on restart).
_ENDED_AS = {
    "completed": v1.TaskState.COMPLETED,
    REPLIED: v1.TaskState.COMPLETED,
    "canceled": v1.TaskState.CANCELED,
    "rejected": v1.TaskState.REJECTED,
}


def evidence_of(
    call: RoutedCall, agent_owner: str, *, price: int = 0, paid_with_purchased_credits: bool = False
) -> TaskEvidence:
    """A finished routed call as trust evidence: the agent is at fault exactly for routing's failing
    outcomes (upstream errors and timeouts, invalid answers, the agent's own ``failed``); a success's
    latency is the call's duration (its first answer when no end time was kept)."""
    state = _ENDED_AS.get(call.outcome or "", v1.TaskState.FAILED)
    outcome = outcome_for(state, agent_at_fault=call.failed)
    latency = None
    if state is v1.TaskState.COMPLETED:
        latency = call.duration_ms if call.duration_ms is not None else call.first_response_ms
    return TaskEvidence(
        agent_id=call.agent_id,
        task_id=call.task_id,
        requester=call.requester,
        agent_owner=agent_owner,
        outcome=outcome,
        at=call.finished_at or utc_now(),
        latency_ms=max(0.0, latency) if latency is not None else None,
        credit_weight=credit_weight_for(price=price, paid_with_purchased_credits=paid_with_purchased_credits),
    )


class CallEvidence:
    """Routing's CallEnded listener: every routed call that ends becomes its agent's trust evidence.

    A call weighs fully when its price was paid with purchased credits alone; a free call, or one paid
    (even in part) with promotional credits, weighs a quarter (docs/trust.md).
    """

    def __init__(
        self, trust: TrustService, registry: RegistryService, billing: BillingService, scores: ScoreRefresher
    ) -> None:
        self._trust = trust
        self._registry = registry
        self._billing = billing
        self._scores = scores

    async def call_ended(self, call: RoutedCall) -> None:
        """Record the call (the router logs a failure). The agent's owner and whether the call was priced
        come with the call from the router's cached view of the agent; a call read back from the store
        has neither, and its agent is read (one deleted meanwhile gets nothing)."""
        owner, priced = call.agent_owner, call.priced
        if owner is None or priced is None:
            try:
                agent = await self._registry.get(call.agent_id)
            except NotFound:
                return
            owner, priced = agent.owner_id, agent.price_of(call.skill_id) > 0
        # Only a priced call can have a hold: a free one costs no ledger read.
        hold = await self._billing.hold_of(call.task_id) if priced else None
        price, purchased = (hold.price, hold.promo == 0) if hold is not None else (0, False)
        evidence = evidence_of(call, owner, price=price, paid_with_purchased_credits=purchased)
        if await self._trust.add_task(evidence):
            self._scores.mark(call.agent_id)


class PausedTaskCanceler:
    """The task service as the hold sweeper's way to end a paid task that waited too long for input."""

    def __init__(self, service: TaskService) -> None:
        self._service = service

    async def cancel_paused(self, owner: str, task_id: str) -> bool:
        """Cancel the task (its end releases its hold); False when it is gone or ended already."""
        try:
            await self._service.cancel(owner, task_id)
        except (TaskNotFound, TaskNotCancelable):
            return False
        return True
