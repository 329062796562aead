"""SqlLedger: the credit ledger in SQL (implements billing.ports.Ledger).

Writes run through ledger_sql's functions in a LedgerRunner transaction; settlement can instead ride in
the task writer's transaction by calling ``ledger_sql.settle`` on its connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from types import SimpleNamespace
from typing import Any

from sqlalchemy import BigInteger, String, and_, bindparam, case, func, literal, or_, select, union_all
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from a2a_gateway.billing import ids
from a2a_gateway.billing.balances import balance_of
from a2a_gateway.billing.history import Entry, UsageDay
from a2a_gateway.billing.models import (
    Account,
    Balance,
    Budget,
    BudgetRequest,
    Hold,
    HoldRequest,
    Settlement,
    Transfer,
    TransferKind,
)
from a2a_gateway.billing.reconcile import LedgerSnapshot
from a2a_gateway.errors import Conflict, InsufficientCredits
from a2a_gateway.storage import ledger_pg, ledger_sql
from a2a_gateway.storage.ledger_rows import (
    account_from_row,
    budget_from_row,
    hold_from_row,
    transfer_from_row,
)
from a2a_gateway.storage.ledger_runner import LedgerRunner
from a2a_gateway.storage.tables import (
    key_daily_spend,
    ledger_accounts,
    ledger_budgets,
    ledger_holds,
    ledger_transfers,
    tasks,
)
from a2a_gateway.storage.timestamps import from_micros, micros

DAY_US = 86_400_000_000
T = ledger_transfers.c
H = ledger_holds.c


class SqlLedger:
    """Accounts, transfers and holds on the gateway's database (SQLite or PostgreSQL)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._runner = LedgerRunner(engine)

    async def close(self) -> None:
        """Release the store's own connections (the engine stays the caller's)."""
        await self._runner.aclose()

    async def hold(self, request: HoldRequest) -> Hold:
        """Reserve a task's price (billing.ports.Ledger.hold).

        On PostgreSQL one statement does it: a single round trip in autocommit on the ledger's own
        connections, or in a transaction with the counter of a capped key. SQLite, and on PostgreSQL
        whatever the statement did not hold (a refusal, a retry, a payer without its three accounts),
        take the statement-by-statement path in a transaction, as does a workflow step's hold, carved
        out of its run's budget.
        """
        if self._runner.postgres and request.budget_id is None:
            held = await (self._hold_pg(request) if request.cap is None else self._hold_capped_pg(request))
            if held is not None:
                return held
        return await self._runner.write(partial(ledger_sql.hold, request=request))

    async def _hold_pg(self, request: HoldRequest) -> Hold | None:
        """The one statement in autocommit; a refusal or a retry is decided from what it found and the
        stored hold; None (nothing written) for a payer without its three accounts."""
        st = ledger_sql.statements(self._engine.dialect)
        assert st.one_hold is not None
        row = await self._runner.fetchrow(st.one_hold.text, st.one_hold.args(ledger_pg.values(request)))
        assert row is not None, "the statement answers one row"
        answer = ledger_sql.read_one_hold(request, tuple(row))
        if answer.held is not None or answer.accounts < 3:
            return answer.held
        existing = await self.get_hold(request.task_id)
        if existing is not None:  # a retry (the insert conflicted), maybe once the credits were spent
            if not existing.same_terms(request.hold(0, 0)):
                raise Conflict("This task already holds a different price")
            return existing
        raise InsufficientCredits(price=request.price, available=answer.available)

    async def _hold_capped_pg(self, request: HoldRequest) -> Hold | None:
        """The one statement and the key's counter in one transaction (None: decided by ``hold``)."""
        return await self._runner.write(partial(ledger_sql.hold_pg, request=request))

    async def open_budget(self, request: BudgetRequest) -> Budget:
        """Hold a run's budget (billing.ports.Ledger.open_budget)."""
        return await self._runner.write(partial(ledger_sql.open_budget, request=request))

    async def close_budget(self, budget_id: str, at: datetime) -> Budget | None:
        """Release what a run's budget has left and close it."""
        return await self._runner.write(partial(ledger_sql.close_budget, budget_id=budget_id, at=at))

    async def get_budget(self, budget_id: str) -> Budget | None:
        """A run budget in its current state."""
        return await self._runner.read(partial(ledger_sql.get_budget, budget_id=budget_id), small=True)

    async def settle(self, settlements: Sequence[Settlement], at: datetime) -> list[Hold]:
        """Capture or release pending holds in one transaction."""
        return await self._runner.write(partial(ledger_sql.settle, settlements=settlements, at=at))

    async def record(self, transfer: Transfer) -> bool:
        """Post a purchase or grant once."""
        return await self._runner.write(partial(ledger_sql.record, transfer=transfer))

    async def balance(self, user_id: str) -> Balance:
        """The user's balance view, from one read snapshot."""
        return await self._runner.read(partial(_balance, user_id=user_id), small=True)

    async def transactions(
        self, user_id: str, limit: int, offset: int, kind: TransferKind | None
    ) -> list[Entry]:
        """A page of the user's entries, newest first, each with the available balance after it."""
        mine = [ids.wallet(user_id), ids.promo(user_id)]
        signed = case(
            (T.kind == TransferKind.RELEASE.value, T.amount),
            (T.credit_account_id.in_(mine), T.amount),
            else_=-T.amount,
        )
        every = (
            select(
                T.id,
                T.kind,
                signed.label("amount"),
                func.sum(signed).over(order_by=T.seq).label("balance_after"),
                T.created_us,
                T.seq,
                T.task_id,
                T.description,
                or_(T.debit_account_id == mine[1], T.credit_account_id == mine[1]).label("promo"),
            )
            .where(or_(T.debit_account_id.in_(mine), T.credit_account_id.in_(mine)))
            .subquery()
        )
        page = select(every).order_by(every.c.seq.desc()).limit(limit).offset(offset)
        if kind is not None:
            page = page.where(every.c.kind == kind.value)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(page)).all()
        return [
            Entry(
                id=r.id,
                type=TransferKind(r.kind),
                amount=int(r.amount),
                balance_after=int(r.balance_after),
                created_at=_at(r.created_us),
                task_id=r.task_id,
                promo=bool(r.promo),
                description=r.description,
            )
            for r in rows
        ]

    async def daily_usage(self, user_id: str, since: datetime) -> list[UsageDay]:
        """Spent (captured prices by settlement day) and earned (payouts) per UTC day."""
        since_us = micros(since)
        spent_day = (H.settled_us // DAY_US).label("day")
        spent = (
            select(spent_day, func.sum(H.price))
            .where(H.payer_user_id == user_id, H.state == "captured", H.settled_us >= since_us)
            .group_by(spent_day)
        )
        earned_day = (T.created_us // DAY_US).label("day")
        earned = (
            select(earned_day, func.sum(T.amount))
            .where(
                T.credit_account_id == ids.wallet(user_id),
                T.kind == TransferKind.CAPTURE_PAYOUT.value,
                T.created_us >= since_us,
            )
            .group_by(earned_day)
        )
        async with self._engine.connect() as conn:
            spent_by = {int(d): int(n) for d, n in await conn.execute(spent)}
            earned_by = {int(d): int(n) for d, n in await conn.execute(earned)}
        return [
            UsageDay(
                datetime.fromtimestamp(day * 86_400, UTC).date(), spent_by.get(day, 0), earned_by.get(day, 0)
            )
            for day in sorted(spent_by.keys() | earned_by.keys())
        ]

    async def get_hold(self, task_id: str) -> Hold | None:
        """A task's hold in its current state (on PostgreSQL one statement on the ledger's own
        connections: trust reads it after every paid call)."""
        if self._runner.postgres:
            st = ledger_sql.statements(self._engine.dialect)
            row = await self._runner.fetchrow(st.get_hold.text, (task_id,))
            return None if row is None else hold_from_row(SimpleNamespace(**dict(row)))
        return await self._runner.read(partial(_hold, task_id=task_id), small=True)

    async def expired_holds(self, now: datetime, limit: int) -> list[Hold]:
        """Pending holds past their expiry, oldest expiry first."""
        query = (
            select(ledger_holds)
            .where(H.state == "pending", H.expires_us.is_not(None), H.expires_us <= micros(now))
            .order_by(H.expires_us, H.task_id)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [hold_from_row(r) for r in await conn.execute(query)]

    async def snapshot(self) -> LedgerSnapshot:
        """Everything the reconciliation reads, from one consistent snapshot."""
        return await self._runner.read(_snapshot)


def _at(value: int) -> datetime:
    stamp = from_micros(value)
    assert stamp is not None
    return stamp


def _balance_query() -> Any:
    """One statement, so one snapshot: the user's two accounts, then the sums of purchases and
    adjustments, as rows of (name, four numbers)."""
    wallet: Any = bindparam("wallet", type_=String)
    promo: Any = bindparam("promo", type_=String)
    zero = literal(0, BigInteger)

    def total(name: str, *where: Any) -> Any:
        return select(literal(name, String), func.coalesce(func.sum(T.amount), 0), zero, zero, zero).where(
            *where
        )

    a = ledger_accounts.c
    return union_all(
        select(a.id, a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted).where(
            a.id.in_([wallet, promo])
        ),
        total("purchased", T.kind == TransferKind.PURCHASE.value, T.credit_account_id == wallet),
        total("adjusted_in", T.kind == TransferKind.ADJUSTMENT.value, T.credit_account_id == wallet),
        total(
            "adjusted_out", T.kind == TransferKind.ADJUSTMENT.value, T.debit_account_id.in_([wallet, promo])
        ),
    )


_BALANCE = _balance_query()


def _balance(conn: Connection, user_id: str) -> Balance:
    wallet, promo = ids.wallet(user_id), ids.promo(user_id)
    accounts, sums = {}, {}
    for name, dp, dpo, cp, cpo in conn.execute(_BALANCE, {"wallet": wallet, "promo": promo}):
        if name in (wallet, promo):
            accounts[name] = Account(name, ids.kind_of(name), user_id, int(dp), int(dpo), int(cp), int(cpo))
        else:
            sums[name] = int(dp)
    return balance_of(
        user_id,
        accounts.get(wallet),
        accounts.get(promo),
        purchased=sums["purchased"],
        adjusted_in=sums["adjusted_in"],
        adjusted_out=sums["adjusted_out"],
    )


def _hold(conn: Connection, task_id: str) -> Hold | None:
    row = conn.execute(select(ledger_holds).where(H.task_id == task_id)).first()
    return None if row is None else hold_from_row(row)


def _snapshot(conn: Connection) -> LedgerSnapshot:
    accounts = [
        account_from_row(r) for r in conn.execute(select(ledger_accounts).order_by(ledger_accounts.c.id))
    ]
    transfers = [transfer_from_row(r) for r in conn.execute(select(ledger_transfers).order_by(T.seq))]
    holds = [hold_from_row(r) for r in conn.execute(select(ledger_holds).order_by(H.task_id))]
    states = conn.execute(
        select(H.task_id, tasks.c.state).select_from(ledger_holds.join(tasks, and_(tasks.c.id == H.task_id)))
    )
    spend = key_daily_spend.c
    key_spend = {(k, int(d)): int(n) for k, d, n in conn.execute(select(spend.key_id, spend.day, spend.held))}
    budgets = [
        budget_from_row(r) for r in conn.execute(select(ledger_budgets).order_by(ledger_budgets.c.run_id))
    ]
    return LedgerSnapshot(
        accounts, transfers, holds, {task_id: state for task_id, state in states}, key_spend, budgets
    )
