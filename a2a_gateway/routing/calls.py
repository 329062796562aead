"""Routed calls: the gateway's record of every task it relayed to a registered agent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# Outcomes besides the upstream task's own terminal state names (completed, failed, canceled, rejected).
REPLIED = "replied"  # the agent answered with a direct message, no task
UNREACHABLE = "unreachable"  # the call failed before the agent said anything usable
LOST = "lost"  # the gateway restarted and could not pick the task up again
AGENT_ERROR = "agent_error"  # the agent refused the request with an A2A error (the caller's concern)
UNSIGNED = "unsigned"  # the gateway could not sign the call's caller assertion (its own failure)
FAILING_OUTCOMES = frozenset({"failed", UNREACHABLE, "invalid_response", "closed_early"})


@dataclass(slots=True)
class RoutedCall:
    """One gateway task relayed to one agent: who asked, who answered, the upstream ids, and timings.

    ``outcome`` is None while the call is in flight; a record in flight with an upstream task id is what
    a restarted gateway resumes.
    """

    task_id: str
    requester: str
    agent_id: str
    skill_id: str | None
    started_at: datetime
    upstream_task_id: str | None = None
    upstream_context_id: str | None = None
    first_response_ms: float | None = None
    finished_at: datetime | None = None
    outcome: str | None = None
    error: str | None = None
    # What the router knew of the agent when it relayed (not stored): its owner and whether this skill
    # is priced. None for a call read back from the store; its listeners then read the registry.
    agent_owner: str | None = None
    priced: bool | None = None

    @property
    def duration_ms(self) -> float | None:
        """Wall time from the first upstream request to the end, once finished."""
        if self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds() * 1000, 3)

    @property
    def failed(self) -> bool:
        """Whether this call counts against the agent's health."""
        return self.outcome in FAILING_OUTCOMES
