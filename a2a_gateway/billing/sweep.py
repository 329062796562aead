"""What the hold sweeper does with pending holds: settle the ones whose task ended (a settlement that was
lost with a failed write), release the ones no task came of, and time out paid tasks paused too long;
and with open run budgets: close the ones whose run ended, or that no run came of."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from a2a_gateway.billing.models import Outcome, Settlement
from a2a_gateway.protocol import v1


@dataclass(frozen=True, slots=True)
class PendingHold:
    """A hold still pending, with what the task store says of its task (None: no task row)."""

    task_id: str
    created_at: datetime
    task_state: str | None = None
    task_owner: str | None = None
    state_since: datetime | None = None


@dataclass(slots=True)
class SweepPlan:
    """Settlements to make now, and paused tasks to end (their end then releases their holds)."""

    settlements: list[Settlement] = field(default_factory=list)
    expire: list[tuple[str, str]] = field(default_factory=list)  # (owner, task id)


def plan(
    holds: list[PendingHold], now: datetime, *, orphan_after: timedelta, paused_limit: timedelta
) -> SweepPlan:
    """Decide each pending hold; a hold of a task still running (or paused within the limit) stays."""
    decided = SweepPlan()
    for hold in holds:
        if hold.task_state is None:
            # No task row: a crash between the hold and the task's first write, or a task that could not
            # be stored. A young hold may still get its task (the write is in flight).
            if now - hold.created_at >= orphan_after:
                decided.settlements.append(Settlement(hold.task_id, Outcome.RELEASE))
            continue
        state = v1.TaskState(hold.task_state)
        if state.terminal:
            outcome = Outcome.CAPTURE if state is v1.TaskState.COMPLETED else Outcome.RELEASE
            decided.settlements.append(Settlement(hold.task_id, outcome))
        elif (
            state.interrupted
            and hold.task_owner is not None
            and hold.state_since is not None
            and now - hold.state_since >= paused_limit
        ):
            decided.expire.append((hold.task_owner, hold.task_id))
    return decided


@dataclass(frozen=True, slots=True)
class OpenBudget:
    """A run budget still open, with whether its workflow run has ended (None: no run row)."""

    run_id: str
    created_at: datetime
    run_ended: bool | None = None


def budgets_to_close(budgets: list[OpenBudget], now: datetime, *, orphan_after: timedelta) -> list[str]:
    """The runs whose budgets nobody else will close: the run ended without closing it (the close
    failed), or no run was ever saved for it (a crash between the two) and it is old enough to be sure.
    A running run's budget stays: its driver, or the one that takes it over, closes it."""
    return [
        b.run_id
        for b in budgets
        if b.run_ended or (b.run_ended is None and now - b.created_at >= orphan_after)
    ]
