"""A user's transaction history and daily usage, as GET /billing/transactions and /billing/usage show."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from a2a_gateway.billing import ids
from a2a_gateway.billing.models import Transfer, TransferKind


@dataclass(frozen=True, slots=True)
class Entry:
    """One transfer as its user sees it: a signed amount and the available balance after it.

    A hold is negative (the credits are reserved), its release positive (they come back); a capture
    writes nothing on the payer's side, the hold already took the credits from ``available``.
    """

    id: str
    type: TransferKind
    amount: int
    balance_after: int
    created_at: datetime
    task_id: str | None
    promo: bool  # whether it moved promotional credits
    description: str | None


@dataclass(frozen=True, slots=True)
class UsageDay:
    """Credits one user spent (captured prices) and earned (payouts) on one UTC day."""

    date: date
    spent: int
    earned: int


@dataclass(frozen=True, slots=True)
class Usage:
    """Every day of a period, oldest first, and the period's totals."""

    period_days: int
    daily: list[UsageDay]
    total_spent: int
    total_earned: int


def signed(transfer: Transfer, user_id: str) -> int:
    """The transfer's amount as ``user_id`` sees it (0 when it touches none of their accounts)."""
    mine = (ids.wallet(user_id), ids.promo(user_id))
    if transfer.kind is TransferKind.RELEASE:  # a void has the hold's accounts but gives the credits back
        return transfer.amount if transfer.debit_account_id in mine else 0
    if transfer.credit_account_id in mine:
        return transfer.amount
    if transfer.debit_account_id in mine:
        return -transfer.amount
    return 0


def entries(user_id: str, transfers: Iterable[Transfer]) -> list[Entry]:
    """A user's entries, oldest first, from transfers in the order they were written."""
    mine = (ids.wallet(user_id), ids.promo(user_id))
    out, running = [], 0
    for t in transfers:
        if t.debit_account_id not in mine and t.credit_account_id not in mine:
            continue
        amount = signed(t, user_id)
        running += amount
        promo = ids.promo(user_id) in (t.debit_account_id, t.credit_account_id)
        out.append(Entry(t.id, t.kind, amount, running, t.created_at, t.task_id, promo, t.description))
    return out


def usage_over(period_days: int, today: date, active: Iterable[UsageDay]) -> Usage:
    """The period ending ``today`` with a row for every day (zero when nothing happened)."""
    by_day = {d.date: d for d in active}
    first = today - timedelta(days=period_days - 1)
    daily = [
        by_day.get(day, UsageDay(day, 0, 0))
        for day in (first + timedelta(days=n) for n in range(period_days))
    ]
    return Usage(
        period_days=period_days,
        daily=daily,
        total_spent=sum(d.spent for d in daily),
        total_earned=sum(d.earned for d in daily),
    )
