"""BillingService: holds and settles task prices, credits purchases and grants, shows balances."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, time, timedelta

from a2a_gateway.billing import fees, flows
from a2a_gateway.billing.caps import MAX_DAILY_SPEND_CAP, SpendCap
from a2a_gateway.billing.history import Entry, Usage, usage_over
from a2a_gateway.billing.models import (
    Balance,
    Budget,
    BudgetRequest,
    Hold,
    HoldRequest,
    Outcome,
    Settlement,
    TransferKind,
)
from a2a_gateway.billing.ports import Ledger
from a2a_gateway.billing.reconcile import reconcile
from a2a_gateway.billing.report import LedgerReport
from a2a_gateway.errors import InvalidParams

DEFAULT_FEE_BPS = 500
MAX_PAGE = 200
MAX_PERIOD_DAYS = 366


def _now() -> datetime:
    return datetime.now(UTC)


def _invalid(field: str, description: str) -> InvalidParams:
    return InvalidParams(description, violations=[{"field": field, "description": description}])


class BillingService:
    """The credit ledger's use cases; amounts are whole credits, the clock is injected."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        fee_bps: int = DEFAULT_FEE_BPS,
        clock: Callable[[], datetime] = _now,
        orphan_after: timedelta = timedelta(minutes=10),
    ) -> None:
        fees.check(0, fee_bps)
        self._ledger = ledger
        self._fee_bps = fee_bps
        self._clock = clock
        self._orphan_after = orphan_after

    @property
    def fee_bps(self) -> int:
        """The platform fee rate a new hold snapshots unless told otherwise."""
        return self._fee_bps

    async def hold(
        self,
        task_id: str,
        payer_user_id: str,
        price: int,
        *,
        payee_user_id: str,
        fee_bps: int | None = None,
        expires_at: datetime | None = None,
        subscription: bool = False,
        key_id: str | None = None,
        daily_spend_cap: int | None = None,
        budget_id: str | None = None,
    ) -> Hold | None:
        """Hold a task's price before its agent is called; None when the task is free (no price, or the
        payer owns the agent). InsufficientCredits when the payer cannot cover it (nothing written).

        ``subscription`` marks the hold of a subscription, which is captured when it starts streaming.
        A call made with a key that has a ``daily_spend_cap`` counts against it: SpendCapReached (nothing
        written) when the key's spending today plus this price would pass it (billing/caps.py).
        A workflow step's task names its run's ``budget_id``: the price is carved out of that budget
        (the run's key was counted against its cap when the budget opened, so no cap counts here).
        """
        rate = self._fee_bps if fee_bps is None else fee_bps
        if price < 0:
            raise _invalid("price", "A price is never negative")
        if not 0 <= rate <= fees.MAX_BPS:
            raise _invalid("feeBps", f"A fee rate is 0..{fees.MAX_BPS} basis points")
        cap = _cap(key_id, daily_spend_cap)
        if price == 0 or payer_user_id == payee_user_id:
            return None
        if budget_id is not None:
            cap = None
        request = HoldRequest(
            task_id,
            payer_user_id,
            payee_user_id,
            price,
            rate,
            self._clock(),
            expires_at,
            subscription=subscription,
            cap=cap,
            budget_id=budget_id,
        )
        return await self._ledger.hold(request)

    async def open_budget(
        self,
        run_id: str,
        payer_user_id: str,
        amount: int,
        *,
        key_id: str | None = None,
        daily_spend_cap: int | None = None,
    ) -> Budget | None:
        """Hold a workflow run's whole budget before any step starts; None for a run that costs nothing.
        InsufficientCredits or SpendCapReached (a run started with a capped key counts its whole budget
        today, less what closing gives back) with nothing written."""
        if amount < 0:
            raise _invalid("budget", "A budget is never negative")
        cap = _cap(key_id, daily_spend_cap)
        if amount == 0:
            return None
        return await self._ledger.open_budget(
            BudgetRequest(run_id, payer_user_id, amount, self._clock(), cap)
        )

    async def close_budget(self, run_id: str) -> Budget | None:
        """The run ended: what its steps did not take goes back to its payer (once)."""
        return await self._ledger.close_budget(run_id, self._clock())

    async def budget_of(self, run_id: str) -> Budget | None:
        """A run's budget, in its current state."""
        return await self._ledger.get_budget(run_id)

    async def capture(self, task_id: str) -> Hold | None:
        """The task completed: pay its owner and the platform; None when nothing was pending."""
        return _one(await self.settle([Settlement(task_id, Outcome.CAPTURE)]))

    async def release(self, task_id: str) -> Hold | None:
        """The task failed, was canceled, rejected or timed out: give the payer the credits back."""
        return _one(await self.settle([Settlement(task_id, Outcome.RELEASE)]))

    async def settle(self, settlements: Sequence[Settlement]) -> list[Hold]:
        """Settle many tasks in one transaction; the holds settled now (others were not pending)."""
        return await self._ledger.settle(settlements, self._clock()) if settlements else []

    async def grant(self, user_id: str, amount: int, reason: str, *, reference: str | None = None) -> bool:
        """Promotional credits; with a ``reference`` (``signup:{user}``) it is granted once however often
        asked. True when granted now."""
        if amount <= 0:
            raise _invalid("amount", "A grant is a positive number of credits")
        if not reason.strip():
            raise _invalid("reason", "A grant says why it is given")
        ref = reference or uuid.uuid4().hex
        return await self._ledger.record(flows.grant(user_id, amount, ref, reason.strip(), self._clock()))

    async def purchase(self, checkout_session_id: str, event_id: str, user_id: str, credits: int) -> bool:
        """Credit a paid checkout session: once per session and per event, in any order and number of
        deliveries. True when credited now; Conflict when the session or event says something else."""
        if credits <= 0:
            raise _invalid("credits", "A purchase buys a positive number of credits")
        if not checkout_session_id or not event_id:
            raise _invalid("checkoutSessionId", "A purchase names its checkout session and event")
        transfer = flows.purchase(checkout_session_id, event_id, user_id, credits, self._clock())
        return await self._ledger.record(transfer)

    async def balance(self, user_id: str) -> Balance:
        """The user's balance view."""
        return await self._ledger.balance(user_id)

    async def transactions(
        self, user_id: str, limit: int = 50, offset: int = 0, kind: TransferKind | None = None
    ) -> list[Entry]:
        """A page of the user's entries, newest first, with signed amounts and the running balance."""
        if not 1 <= limit <= MAX_PAGE:
            raise _invalid("limit", f"limit is 1..{MAX_PAGE}")
        if offset < 0:
            raise _invalid("offset", "offset is never negative")
        return await self._ledger.transactions(user_id, limit, offset, kind)

    async def usage(self, user_id: str, period_days: int = 30) -> Usage:
        """Daily spent and earned over the last ``period_days`` UTC days (today included)."""
        if not 1 <= period_days <= MAX_PERIOD_DAYS:
            raise _invalid("period", f"a period is 1..{MAX_PERIOD_DAYS} days")
        today = self._clock().astimezone(UTC).date()
        first = today - timedelta(days=period_days - 1)
        since = datetime.combine(first, time(), tzinfo=UTC)
        return usage_over(period_days, today, await self._ledger.daily_usage(user_id, since))

    async def hold_of(self, task_id: str) -> Hold | None:
        """A task's hold, in its current state."""
        return await self._ledger.get_hold(task_id)

    async def expired_holds(self, limit: int = 100) -> list[Hold]:
        """Pending holds past their expiry (the sweeper releases them with their tasks)."""
        return await self._ledger.expired_holds(self._clock(), limit)

    async def check(self) -> LedgerReport:
        """Reconcile: every account replayed from transfers, the invariants, orphan holds."""
        return reconcile(await self._ledger.snapshot(), self._clock(), self._orphan_after)


def _cap(key_id: str | None, daily_spend_cap: int | None) -> SpendCap | None:
    if daily_spend_cap is not None and not 0 <= daily_spend_cap <= MAX_DAILY_SPEND_CAP:
        raise _invalid("dailySpendCap", f"A daily spend cap is 0..{MAX_DAILY_SPEND_CAP} credits")
    return SpendCap(key_id, daily_spend_cap) if key_id and daily_spend_cap is not None else None


def _one(settled: list[Hold]) -> Hold | None:
    return settled[0] if settled else None
