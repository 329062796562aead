"""``ledger check``: recompute every account from its transfers and test the invariants I1-I9, orphan
holds, and the daily counters of capped keys.

Pure: it reads a consistent snapshot the store takes in one read transaction, and reports findings.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from a2a_gateway.billing import ids
from a2a_gateway.billing.balances import balance_of
from a2a_gateway.billing.models import (
    NO_OVERDRAFT,
    POSTED_KINDS,
    Account,
    AccountKind,
    Budget,
    BudgetState,
    Hold,
    HoldState,
    Transfer,
    TransferKind,
)
from a2a_gateway.billing.replay import Replay, replay
from a2a_gateway.billing.report import LedgerReport
from a2a_gateway.protocol.v1 import TERMINAL_STATES, TaskState

_TERMINAL = frozenset(s.value for s in TERMINAL_STATES)
_OUTSIDE = frozenset({AccountKind.PURCHASES_CLEARING, AccountKind.PROMO_GRANTS})


@dataclass(frozen=True, slots=True)
class LedgerSnapshot:
    """Everything the check reads, taken in one read transaction; transfers in the order written."""

    accounts: list[Account]
    transfers: list[Transfer]
    holds: list[Hold]
    task_states: dict[str, str]  # the stored state of each held task that has a task row
    # What each capped key's counter of a day says: (key id, day) -> credits held or captured.
    key_spend: dict[tuple[str, int], int] = field(default_factory=dict)
    budgets: list[Budget] = field(default_factory=list)  # the run budgets of workflows


def reconcile(snapshot: LedgerSnapshot, now: datetime, orphan_after: timedelta) -> LedgerReport:
    """Every finding in the snapshot; a pending hold older than ``orphan_after`` needs a task."""
    pending = sum(h.state is HoldState.PENDING for h in snapshot.holds)
    report = LedgerReport(len(snapshot.accounts), len(snapshot.transfers), len(snapshot.holds), pending)
    r = replay(snapshot.transfers)
    for transfer, why in r.malformed:
        report.add("I8", transfer.id, why)
    _counters(report, snapshot.accounts, r)
    _holds(report, snapshot, r, now, orphan_after)
    _budgets(report, snapshot, r)
    _purchases(report, snapshot.transfers)
    _conservation(report, snapshot.accounts, snapshot.transfers)
    _views(report, snapshot.accounts, snapshot.transfers, r, snapshot.budgets)
    _caps(report, snapshot)
    return report


def _counters(report: LedgerReport, accounts: list[Account], r: Replay) -> None:
    known = {a.id for a in accounts}
    for account in accounts:
        replayed = tuple(r.counters.get(account.id, (0, 0, 0, 0)))
        if account.counters != replayed:
            report.add("I2", account.id, f"counters {account.counters}, transfers say {replayed}")
        if min(account.counters) < 0:
            report.add("I3", account.id, f"a counter is negative: {account.counters}")
        if (
            account.kind in NO_OVERDRAFT
            and account.debits_posted + account.debits_pending > account.credits_posted
        ):
            report.add("I3", account.id, f"overdrawn: available {account.available}")
    for missing in sorted(set(r.counters) - known):
        report.add("I2", missing, "transfers name an account that does not exist")
    totals = [sum(a.counters[i] for a in accounts) for i in range(4)]
    if totals[0] != totals[2]:
        report.add("I1", "pending", f"debits {totals[0]} != credits {totals[2]}")
    if totals[1] != totals[3]:
        report.add("I1", "posted", f"debits {totals[1]} != credits {totals[3]}")


def _holds(report: LedgerReport, snap: LedgerSnapshot, r: Replay, now: datetime, grace: timedelta) -> None:
    recorded = {h.task_id for h in snap.holds}
    for task_id in sorted(set(r.legs_of) - recorded):
        report.add("I4", task_id, "hold transfers without a hold record")
    escrow_pending: dict[str, int] = defaultdict(int)
    for hold in snap.holds:
        legs = r.legs_of.get(hold.task_id, [])
        promo = sum(leg.amount for leg in legs if leg.debit_account_id == ids.promo(hold.payer_user_id))
        purchased = sum(leg.amount for leg in legs if leg.debit_account_id == ids.wallet(hold.payer_user_id))
        if hold.promo + hold.purchased != hold.price or (promo, purchased) != (hold.promo, hold.purchased):
            report.add(
                "I4",
                hold.task_id,
                f"price {hold.price} held as promo {hold.promo} + purchased {hold.purchased}, "
                f"legs {promo} + {purchased}",
            )
        fate = r.fate(hold.task_id)
        if fate != hold.state:
            report.add("I4", hold.task_id, f"the hold record says {hold.state}, its transfers {fate}")
        if fate is HoldState.PENDING:
            escrow_pending[ids.escrow(hold.payer_user_id)] += sum(leg.amount for leg in legs)
        elif fate is HoldState.CAPTURED:
            _captured(report, hold, r.captures[hold.task_id])
        for leg in legs:
            if len(r.releases.get(leg.id, ())) > 1:
                report.add("I4", hold.task_id, f"leg {leg.id} released {len(r.releases[leg.id])} times")
        _task(report, hold, snap.task_states.get(hold.task_id), now, grace)
    for budget in snap.budgets:
        payer = budget.payer_user_id
        for part in (ids.promo(payer), ids.wallet(payer)):
            escrow_pending[ids.escrow(payer)] += r.budget_left(budget.id, part)
    for account in snap.accounts:
        if account.kind is AccountKind.ESCROW and account.credits_pending != escrow_pending[account.id]:
            report.add(
                "I4",
                account.id,
                f"holds {account.credits_pending} pending, its holds {escrow_pending[account.id]}",
            )


def _budgets(report: LedgerReport, snap: LedgerSnapshot, r: Replay) -> None:
    """Run budgets: each holds what its transfers say is left, a closed one nothing (its closing released
    what it says it refunded), and its steps took from it exactly what their holds say, each got back
    only by a released step, never more spent than it was opened with."""
    known = {b.id for b in snap.budgets}
    for budget_id in sorted((r.budget_legs.keys() | r.budget_releases.keys()) - known):
        report.add("I4", f"run {budget_id}", "run budget transfers without a budget record")
    steps: dict[str, list[Hold]] = defaultdict(list)
    for hold in snap.holds:
        if hold.budget_id is not None:
            steps[hold.budget_id].append(hold)
    for budget_id in sorted(steps.keys() - known):
        report.add("I4", f"run {budget_id}", "step holds carved from a budget that does not exist")
    for b in snap.budgets:
        name = f"run {b.id}"
        promo, wallet = ids.promo(b.payer_user_id), ids.wallet(b.payer_user_id)
        left = (r.budget_left(b.id, promo), r.budget_left(b.id, wallet))
        if left != (b.remaining_promo, b.remaining_purchased):
            report.add(
                "I4", name, f"keeps {b.remaining_promo} + {b.remaining_purchased}, its transfers {left}"
            )
        opened = [t for t in r.budget_legs.get(b.id, ()) if t.reference.startswith(f"run:{b.id}:hold")]
        if b.promo + b.purchased != b.amount or sum(t.amount for t in opened) != b.amount:
            report.add("I4", name, f"opened with {b.amount} as {b.promo} + {b.purchased}, legs of {opened}")
        if b.state is BudgetState.CLOSED and b.remaining:
            report.add("I4", name, f"closed but still holds {b.remaining}")
        closing = {ids.budget_ref(b.id, "close", promo) for promo in (True, False)}
        closed = sum(t.amount for t in r.budget_releases.get(b.id, ()) if t.reference in closing)
        if closed != (b.refunded if b.state is BudgetState.CLOSED else 0):
            report.add("I4", name, f"{b.state} with {b.refunded} refunded, its closing released {closed}")
        carved = sum(
            t.amount for t in r.budget_releases.get(b.id, ()) if t.reference.startswith(f"run:{b.id}:carve:")
        )
        if carved != sum(h.price for h in steps.get(b.id, ())):
            report.add(
                "I4", name, f"carved {carved} for steps whose holds take {sum(h.price for h in steps[b.id])}"
            )
        spent = sum(h.price for h in steps.get(b.id, ()) if h.state is HoldState.CAPTURED)
        if spent > b.amount:
            report.add("I5", name, f"its steps spent {spent}, more than its budget of {b.amount}")
        for hold in steps.get(b.id, ()):
            if hold.payer_user_id != b.payer_user_id:
                report.add(
                    "I4", hold.task_id, f"carved from the budget of run {b.id}, which another user pays"
                )
        _steps(report, b, steps.get(b.id, []), r, closing)


def _steps(report: LedgerReport, b: Budget, holds: list[Hold], r: Replay, closing: set[str]) -> None:
    """Each step's carve took its hold's parts from the budget, and a give-back returned them only for a
    released step; the budget moved nothing for anything else."""
    moved = {t.reference: t.amount for t in (*r.budget_legs.get(b.id, ()), *r.budget_releases.get(b.id, ()))}
    named = closing | {ids.budget_ref(b.id, "hold", promo) for promo in (True, False)}
    for hold in holds:
        own = (hold.promo, hold.purchased)
        parts: dict[str, tuple[int, ...]] = {}
        for what in ("carve", "return"):
            refs = [ids.budget_ref(b.id, f"{what}:{hold.task_id}", promo) for promo in (True, False)]
            named.update(refs)
            parts[what] = tuple(moved.get(ref, 0) for ref in refs)
        carved, back = parts["carve"], parts["return"]
        if carved != own:
            report.add(
                "I4", hold.task_id, f"holds {own[0]} + {own[1]}, run {b.id} carved {carved[0]} + {carved[1]}"
            )
        if back != (0, 0) and (hold.state is not HoldState.RELEASED or back != own):
            report.add(
                "I4",
                hold.task_id,
                f"{hold.state} holding {own[0]} + {own[1]}, run {b.id} took back {back[0]} + {back[1]}",
            )
    stray = sorted(moved.keys() - named)
    if stray:
        report.add("I4", f"run {b.id}", f"moves credits for no step of it: {', '.join(stray)}")


def _captured(report: LedgerReport, hold: Hold, transfers: list[Transfer]) -> None:
    payout = [t for t in transfers if t.kind is TransferKind.CAPTURE_PAYOUT]
    fee = [t for t in transfers if t.kind is TransferKind.CAPTURE_FEE]
    paid, took = sum(t.amount for t in payout), sum(t.amount for t in fee)
    if (
        (paid, took) != (hold.payout, hold.fee)
        or paid + took != hold.price
        or len(payout) > 1
        or len(fee) > 1
    ):
        report.add("I5", hold.task_id, f"price {hold.price} captured as payout {paid} + fee {took}")
    wrong = [
        t.id
        for t in transfers
        if t.debit_account_id != ids.escrow(hold.payer_user_id)
        or (t in payout and t.credit_account_id != ids.wallet(hold.payee_user_id))
    ]
    if wrong:
        report.add("I5", hold.task_id, f"captured through the wrong accounts: {', '.join(wrong)}")


def _task(report: LedgerReport, hold: Hold, state: str | None, now: datetime, grace: timedelta) -> None:
    if hold.state is HoldState.PENDING:
        if hold.expires_at is not None and hold.expires_at <= now:
            report.add("orphan", hold.task_id, f"expired at {hold.expires_at.isoformat()}, still held")
        elif state in _TERMINAL:
            report.add("orphan", hold.task_id, f"its task ended ({state}) but the hold is pending")
        elif state is None and hold.created_at + grace <= now:
            report.add("orphan", hold.task_id, "held with no task")
        return
    if state is None:
        return
    if hold.subscription and hold.state is HoldState.CAPTURED:
        return  # captured when it started streaming: paid, however it runs or ends after that
    if state not in _TERMINAL:
        report.add("I5", hold.task_id, f"the task is still {state} but its hold is {hold.state}")
    elif (hold.state is HoldState.CAPTURED) != (state == TaskState.COMPLETED.value):
        report.add("I5", hold.task_id, f"the task ended {state} but its hold was {hold.state}")


def _purchases(report: LedgerReport, transfers: list[Transfer]) -> None:
    purchases = [t for t in transfers if t.kind is TransferKind.PURCHASE]
    for name, count in (
        ("session", Counter(t.checkout_session_id for t in purchases)),
        ("event", Counter(t.event_id for t in purchases)),
    ):
        for key, n in sorted(count.items(), key=lambda kv: str(kv[0])):
            if n > 1:
                report.add("I6", f"{name} {key}", f"credited {n} times")


def _conservation(report: LedgerReport, accounts: list[Account], transfers: list[Transfer]) -> None:
    inside = sum(a.balance for a in accounts if a.kind not in _OUTSIDE)
    brought = 0  # what posted transfers brought in from the outside accounts, less what went back
    for t in transfers:
        if t.kind not in POSTED_KINDS:
            continue
        try:
            came_from = ids.kind_of(t.debit_account_id) in _OUTSIDE
            went_to = ids.kind_of(t.credit_account_id) in _OUTSIDE
        except ValueError:
            continue  # reported under I8
        brought += t.amount * (came_from - went_to)
    if inside != brought:
        report.add(
            "I7", "inside", f"wallets, escrow and revenue hold {inside}, purchases and grants {brought}"
        )


def _views(
    report: LedgerReport, accounts: list[Account], transfers: list[Transfer], r: Replay, budgets: list[Budget]
) -> None:
    by_id = {a.id: a for a in accounts}
    budgets_of: dict[str, list[Budget]] = defaultdict(list)
    for b in budgets:
        budgets_of[b.payer_user_id].append(b)
    users = sorted({a.owner_id for a in accounts if a.owner_id})
    sums: dict[tuple[str, str], int] = defaultdict(int)  # (account, what) -> credits
    for t in transfers:
        if t.kind is TransferKind.PURCHASE:
            sums[(t.credit_account_id, "purchased")] += t.amount
        elif t.kind is TransferKind.CAPTURE_PAYOUT:
            sums[(t.credit_account_id, "earned")] += t.amount
        elif t.kind is TransferKind.ADJUSTMENT:
            sums[(t.credit_account_id, "adjusted_in")] += t.amount
            sums[(t.debit_account_id, "adjusted_out")] += t.amount
        elif t.kind is TransferKind.HOLD and t.budget_id is None:
            fate = r.fate(t.task_id or "")
            what = "spent" if fate is HoldState.CAPTURED else "held" if fate is HoldState.PENDING else ""
            sums[(t.debit_account_id, what)] += t.amount
    for user in users:
        wallet, promo = ids.wallet(user), ids.promo(user)
        view = balance_of(
            user,
            by_id.get(wallet),
            by_id.get(promo),
            purchased=sums[(wallet, "purchased")],
            adjusted_in=sums[(wallet, "adjusted_in")],
            adjusted_out=sums[(wallet, "adjusted_out")] + sums[(promo, "adjusted_out")],
        )
        replayed = [r.counters.get(a, [0, 0, 0, 0]) for a in (wallet, promo)]
        budgeted = sum(r.budget_left(b.id, a) for b in budgets_of.get(user, ()) for a in (wallet, promo))
        expected = {
            "balance": sum(c[3] - c[1] for c in replayed),
            "held": sums[(wallet, "held")] + sums[(promo, "held")] + budgeted,
            "total_earned": sums[(wallet, "earned")],
            "total_spent": sums[(wallet, "spent")] + sums[(promo, "spent")],
        }
        for name, value in expected.items():
            if getattr(view, name) != value:
                report.add("I9", user, f"{name} shows {getattr(view, name)}, transfers say {value}")


def _caps(report: LedgerReport, snap: LedgerSnapshot) -> None:
    counted: dict[tuple[str, int], int] = defaultdict(int)
    for hold in snap.holds:
        if hold.cap_key_id is not None and hold.state is not HoldState.RELEASED:
            counted[(hold.cap_key_id, hold.cap_day)] += hold.price
    for budget in snap.budgets:  # a run's whole budget counts, less what its closing gave back
        if budget.cap_key_id is not None:
            counted[(budget.cap_key_id, budget.cap_day)] += budget.amount - budget.refunded
    for key, day in sorted(counted.keys() | snap.key_spend.keys()):
        stored, expected = snap.key_spend.get((key, day), 0), counted.get((key, day), 0)
        if stored != expected:
            report.add("cap", f"{key} day {day}", f"the counter says {stored}, its holds {expected}")
