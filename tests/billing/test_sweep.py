"""The hold sweeper's decisions: what a pending hold's task says decides it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from a2a_gateway.billing.models import Outcome, Settlement
from a2a_gateway.billing.sweep import OpenBudget, PendingHold, budgets_to_close, plan

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
LIMITS = {"orphan_after": timedelta(minutes=10), "paused_limit": timedelta(hours=1)}


def test_each_pending_hold_is_decided_by_its_task() -> None:
    old, young = NOW - timedelta(minutes=11), NOW - timedelta(minutes=1)
    holds = [
        PendingHold("orphan", old),
        PendingHold("in-flight-write", young),
        PendingHold("done", young, "TASK_STATE_COMPLETED", "u", young),
        PendingHold("broke", young, "TASK_STATE_FAILED", "u", young),
        PendingHold("declined", young, "TASK_STATE_REJECTED", "u", young),
        PendingHold("running", old, "TASK_STATE_WORKING", "u", old),
        PendingHold("paused-long", old, "TASK_STATE_INPUT_REQUIRED", "u", NOW - timedelta(hours=2)),
        PendingHold("paused-briefly", old, "TASK_STATE_INPUT_REQUIRED", "u", young),
    ]
    decided = plan(holds, NOW, **LIMITS)
    assert decided.settlements == [
        Settlement("orphan", Outcome.RELEASE),
        Settlement("done", Outcome.CAPTURE),
        Settlement("broke", Outcome.RELEASE),
        Settlement("declined", Outcome.RELEASE),
    ]
    assert decided.expire == [("u", "paused-long")]


def test_nothing_pending_nothing_to_do() -> None:
    decided = plan([], NOW, **LIMITS)
    assert decided.settlements == [] and decided.expire == []


def test_a_budget_is_closed_when_its_run_ended_or_never_came_to_be() -> None:
    old, young = NOW - timedelta(minutes=11), NOW - timedelta(minutes=1)
    budgets = [
        OpenBudget("no-run-old", old),
        OpenBudget("no-run-young", young),  # its run's first save may be in flight
        OpenBudget("ended", young, run_ended=True),
        OpenBudget("running", old, run_ended=False),  # its driver (or the next one) closes it
    ]
    assert budgets_to_close(budgets, NOW, orphan_after=LIMITS["orphan_after"]) == ["no-run-old", "ended"]
