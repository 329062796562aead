"""An in-memory fake of billing.ports.Ledger, for BillingService tests that open no database.

It keeps the port's rules (promo first, nothing written on a refusal, retries harmless, exactly-once
settlement, the daily counters of capped keys) with the same flows as the SQL store, checks the
no-overdraft rule a database would enforce, and exposes what it holds so a test can look inside or
tamper with it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, date, datetime

from a2a_gateway.billing import flows, ids
from a2a_gateway.billing.balances import balance_of
from a2a_gateway.billing.caps import SpendCapReached
from a2a_gateway.billing.funding import fund
from a2a_gateway.billing.history import Entry, UsageDay, entries
from a2a_gateway.billing.models import (
    NO_OVERDRAFT,
    Account,
    Balance,
    Budget,
    BudgetRequest,
    BudgetState,
    Hold,
    HoldRequest,
    HoldState,
    Outcome,
    Settlement,
    Transfer,
    TransferKind,
)
from a2a_gateway.billing.reconcile import LedgerSnapshot
from a2a_gateway.errors import Conflict, InsufficientCredits


class FakeLedger:
    """Implements billing.ports.Ledger in memory; every call is atomic (it changes all or nothing)."""

    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.transfers: list[Transfer] = []
        self.holds: dict[str, Hold] = {}
        self.task_states: dict[str, str] = {}  # what a tasks table would say, for the reconciliation
        self.key_spend: dict[tuple[str, int], int] = {}  # (key id, UTC day) -> held or captured there
        self.budgets: dict[str, Budget] = {}

    def _account(self, account_id: str) -> Account:
        return self.accounts.get(account_id) or Account(
            account_id, ids.kind_of(account_id), ids.owner_of(account_id)
        )

    def _commit(self, deltas: flows.Deltas, transfers: Sequence[Transfer]) -> None:
        """Apply counter changes and transfers together, or raise and change nothing."""
        taken = {t.id for t in self.transfers}
        if any(t.id in taken for t in transfers):
            raise AssertionError("a transfer id was written twice")
        changed = {}
        for account_id, d in deltas.items():
            a = dataclasses.replace(self._account(account_id))
            a.debits_pending += d.debits_pending
            a.debits_posted += d.debits_posted
            a.credits_pending += d.credits_pending
            a.credits_posted += d.credits_posted
            if min(a.counters) < 0 or (a.kind in NO_OVERDRAFT and a.available < 0):
                raise AssertionError(f"the database would refuse this: {a}")
            changed[account_id] = a
        self.accounts.update(changed)
        self.transfers.extend(transfers)

    async def hold(self, request: HoldRequest) -> Hold:
        existing = self.holds.get(request.task_id)
        if existing is not None:
            if not existing.same_terms(request.hold(0, 0)):
                raise Conflict("This task already holds a different price")
            return existing
        if request.budget_id is not None:
            return self._carve(request)
        wallet, promo, _escrow = ids.user_accounts(request.payer_user_id)
        promo_part, purchased = fund(
            request.price, self._account(promo).available, self._account(wallet).available
        )
        new = request.hold(promo_part, purchased)
        counter = None
        if request.cap is not None:
            counter = (request.cap.key_id, new.cap_day)
            spent = self.key_spend.get(counter, 0)
            if spent + request.price > request.cap.limit:
                raise SpendCapReached(cap=request.cap.limit, spent=spent, price=request.price)
        deltas: flows.Deltas = {}
        legs = flows.pend(deltas, new)
        self._commit(deltas, legs)
        self.holds[new.task_id] = new
        if counter is not None:
            self.key_spend[counter] = self.key_spend.get(counter, 0) + request.price
        return new

    def _carve(self, request: HoldRequest) -> Hold:
        budget = self.budgets.get(request.budget_id or "")
        if (
            budget is None
            or budget.state is not BudgetState.OPEN
            or budget.payer_user_id != request.payer_user_id
        ):
            raise InsufficientCredits(price=request.price, available=0)
        promo_part, purchased = fund(request.price, budget.remaining_promo, budget.remaining_purchased)
        new = request.hold(promo_part, purchased)
        self._commit({}, flows.carve(new))
        self.holds[new.task_id] = new
        self.budgets[budget.id] = dataclasses.replace(
            budget,
            remaining_promo=budget.remaining_promo - promo_part,
            remaining_purchased=budget.remaining_purchased - purchased,
        )
        return new

    async def open_budget(self, request: BudgetRequest) -> Budget:
        existing = self.budgets.get(request.budget_id)
        if existing is not None:
            if not request.same_terms(existing):
                raise Conflict("This run already holds a different budget")
            return existing
        wallet, promo, _escrow = ids.user_accounts(request.payer_user_id)
        promo_part, purchased = fund(
            request.amount, self._account(promo).available, self._account(wallet).available
        )
        new = request.budget(promo_part, purchased)
        counter = None
        if request.cap is not None:
            counter = (request.cap.key_id, new.cap_day)
            spent = self.key_spend.get(counter, 0)
            if spent + request.amount > request.cap.limit:
                raise SpendCapReached(cap=request.cap.limit, spent=spent, price=request.amount)
        deltas: flows.Deltas = {}
        self._commit(deltas, flows.open_budget(deltas, new))
        self.budgets[new.id] = new
        if counter is not None:
            self.key_spend[counter] = self.key_spend.get(counter, 0) + request.amount
        return new

    async def close_budget(self, budget_id: str, at: datetime) -> Budget | None:
        budget = self.budgets.get(budget_id)
        if budget is None or budget.state is not BudgetState.OPEN:
            return None
        deltas: flows.Deltas = {}
        self._commit(deltas, flows.close_budget(deltas, budget, at))
        closed = dataclasses.replace(
            budget,
            state=BudgetState.CLOSED,
            closed_at=at,
            refunded=budget.remaining,
            remaining_promo=0,
            remaining_purchased=0,
        )
        self.budgets[budget_id] = closed
        if budget.cap_key_id is not None and budget.remaining:
            self.key_spend[(budget.cap_key_id, budget.cap_day)] -= budget.remaining
        return closed

    async def get_budget(self, budget_id: str) -> Budget | None:
        return self.budgets.get(budget_id)

    async def settle(self, settlements: Sequence[Settlement], at: datetime) -> list[Hold]:
        first: dict[str, Outcome] = {}
        for s in settlements:
            first.setdefault(s.task_id, s.outcome)
        settled: list[Hold] = []
        deltas: flows.Deltas = {}
        transfers: list[Transfer] = []
        returned: dict[str, Budget] = {}
        for task_id in sorted(first):
            held = self.holds.get(task_id)
            if held is None or held.state is not HoldState.PENDING:
                continue
            capture = first[task_id] is Outcome.CAPTURE
            state = HoldState.CAPTURED if capture else HoldState.RELEASED
            done = dataclasses.replace(held, state=state, settled_at=at)
            budget = self.budgets.get(held.budget_id or "")
            if not capture and budget is not None and budget.state is BudgetState.OPEN:
                transfers.extend(flows.give_back(deltas, done, at))
                returned[budget.id] = dataclasses.replace(
                    returned.get(budget.id, budget),
                    remaining_promo=returned.get(budget.id, budget).remaining_promo + done.promo,
                    remaining_purchased=returned.get(budget.id, budget).remaining_purchased + done.purchased,
                )
            else:
                transfers.extend((flows.capture if capture else flows.release)(deltas, done, at))
            settled.append(done)
        self._commit(deltas, transfers)
        self.budgets.update(returned)
        self.holds.update({h.task_id: h for h in settled})
        for h in settled:
            if h.cap_key_id is not None and h.state is HoldState.RELEASED:
                self.key_spend[(h.cap_key_id, h.cap_day)] -= h.price
        return settled

    async def record(self, transfer: Transfer) -> bool:
        for t in self.transfers:
            same_key = t.id == transfer.id or (
                transfer.kind is TransferKind.PURCHASE
                and (t.checkout_session_id == transfer.checkout_session_id or t.event_id == transfer.event_id)
            )
            if same_key:
                if t.same_movement(transfer):
                    return False
                raise Conflict(f"A different {transfer.kind} was already recorded")
        deltas: flows.Deltas = {}
        flows.post(deltas, transfer)
        self._commit(deltas, [transfer])
        return True

    async def balance(self, user_id: str) -> Balance:
        wallet, promo = ids.wallet(user_id), ids.promo(user_id)
        purchased = sum(
            t.amount
            for t in self.transfers
            if t.kind is TransferKind.PURCHASE and t.credit_account_id == wallet
        )
        adjustments = [t for t in self.transfers if t.kind is TransferKind.ADJUSTMENT]
        return balance_of(
            user_id,
            self.accounts.get(wallet),
            self.accounts.get(promo),
            purchased=purchased,
            adjusted_in=sum(t.amount for t in adjustments if t.credit_account_id == wallet),
            adjusted_out=sum(t.amount for t in adjustments if t.debit_account_id in (wallet, promo)),
        )

    async def transactions(
        self, user_id: str, limit: int, offset: int, kind: TransferKind | None
    ) -> list[Entry]:
        newest_first = entries(user_id, self.transfers)[::-1]
        if kind is not None:
            newest_first = [e for e in newest_first if e.type is kind]
        return newest_first[offset : offset + limit]

    async def daily_usage(self, user_id: str, since: datetime) -> list[UsageDay]:
        days: dict[date, list[int]] = {}
        for h in self.holds.values():
            if (
                h.payer_user_id == user_id
                and h.state is HoldState.CAPTURED
                and h.settled_at
                and h.settled_at >= since
            ):
                days.setdefault(h.settled_at.astimezone(UTC).date(), [0, 0])[0] += h.price
        for t in self.transfers:
            if (
                t.kind is TransferKind.CAPTURE_PAYOUT
                and t.credit_account_id == ids.wallet(user_id)
                and t.created_at >= since
            ):
                days.setdefault(t.created_at.astimezone(UTC).date(), [0, 0])[1] += t.amount
        return [UsageDay(day, spent, earned) for day, (spent, earned) in sorted(days.items())]

    async def get_hold(self, task_id: str) -> Hold | None:
        return self.holds.get(task_id)

    async def expired_holds(self, now: datetime, limit: int) -> list[Hold]:
        due = [
            h
            for h in self.holds.values()
            if h.state is HoldState.PENDING and h.expires_at is not None and h.expires_at <= now
        ]
        return sorted(due, key=lambda h: (h.expires_at, h.task_id))[:limit]

    async def snapshot(self) -> LedgerSnapshot:
        return LedgerSnapshot(
            accounts=[dataclasses.replace(a) for a in sorted(self.accounts.values(), key=lambda a: a.id)],
            transfers=list(self.transfers),
            holds=sorted(self.holds.values(), key=lambda h: h.task_id),
            task_states=dict(self.task_states),
            key_spend=dict(self.key_spend),
            budgets=sorted(self.budgets.values(), key=lambda b: b.id),
        )
