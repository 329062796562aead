"""The ledger's writes as plain functions on a sync SQLAlchemy ``Connection`` inside a transaction.

They never begin or commit: the caller's transaction is theirs, so a task's settlement can commit with
the task's terminal state in the grouped task writer (``settle``), and the ledger store runs them in
its own transactions (``hold``, ``record``). Statements are compiled once per dialect and sent with
``exec_driver_sql`` as positional rows, like the task writer's.

Account rows are touched in id order in every transaction, so two transactions never wait on each
other's rows in opposite orders (no deadlock on PostgreSQL). The database guards every debit too: a
conditional UPDATE (``available >= amount``, no row updated means no credits) and CHECK constraints.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, literal_column, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect, Row

from a2a_gateway.billing import flows, ids
from a2a_gateway.billing.caps import SpendCap, SpendCapReached, day_of
from a2a_gateway.billing.funding import fund
from a2a_gateway.billing.models import (
    Budget,
    BudgetRequest,
    BudgetState,
    Hold,
    HoldRequest,
    HoldState,
    Outcome,
    Settlement,
    Transfer,
)
from a2a_gateway.errors import Conflict, InsufficientCredits
from a2a_gateway.storage import ledger_pg
from a2a_gateway.storage.ledger_rows import (
    account_row,
    budget_from_row,
    budget_row,
    hold_from_row,
    hold_row,
    transfer_from_row,
    transfer_row,
)
from a2a_gateway.storage.tables import (
    key_daily_spend,
    ledger_accounts,
    ledger_budgets,
    ledger_holds,
    ledger_transfers,
)
from a2a_gateway.storage.timestamps import micros

_CHUNK = 500  # task ids per resolving UPDATE (far below any driver's parameter limit)
A = ledger_accounts.c
B = ledger_budgets.c


class LedgerInconsistent(RuntimeError):
    """An account a movement needs is missing: the transaction is refused rather than lose credits."""


@dataclass(frozen=True, slots=True)
class _Sql:
    text: str
    order: tuple[str, ...]

    def args(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(values[name] for name in self.order)


def _compile(statement: Any, dialect: Dialect) -> _Sql:
    compiled = statement.compile(dialect=dialect)
    assert compiled.positiontup is not None, "the drivers in use take positional parameters"
    return _Sql(str(compiled), tuple(compiled.positiontup))


class LedgerStatements:
    """The ledger's statements for one dialect."""

    def __init__(self, dialect: Dialect) -> None:
        dialect_insert: Any = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
        self.multi_rowcount = dialect.supports_sane_multi_rowcount
        account_values: dict[str, Any] = {c.name: bindparam(c.name) for c in ledger_accounts.c}
        self.open = _compile(
            dialect_insert(ledger_accounts).values(account_values).on_conflict_do_nothing(), dialect
        )
        self.read = _compile(
            select(A.id, A.debits_pending, A.debits_posted, A.credits_pending, A.credits_posted)
            .where(A.id.in_([bindparam("a0"), bindparam("a1"), bindparam("a2")]))
            .order_by(A.id)
            # PostgreSQL locks the payer's rows (NO KEY: foreign-key checks of others' transfers need not
            # wait); SQLite holds its write lock from BEGIN IMMEDIATE.
            .with_for_update(key_share=True),
            dialect,
        )
        # The guard is in the statement: a debit that would overdraw updates no row.
        self.debit = _compile(
            update(ledger_accounts)
            .where(
                A.id == bindparam("account"),
                A.credits_posted - A.debits_posted - A.debits_pending >= bindparam("guard"),
            )
            .values(debits_pending=A.debits_pending + bindparam("amount")),
            dialect,
        )
        self.delta = _compile(
            update(ledger_accounts)
            .where(A.id == bindparam("account"))
            .values(
                debits_pending=A.debits_pending + bindparam("d_dp"),
                debits_posted=A.debits_posted + bindparam("d_dpo"),
                credits_pending=A.credits_pending + bindparam("d_cp"),
                credits_posted=A.credits_posted + bindparam("d_cpo"),
            ),
            dialect,
        )
        self.lock = (
            select(A.id)
            .where(A.id.in_(bindparam("ids", expanding=True)))
            .order_by(A.id)
            .with_for_update(key_share=True)
        )
        hold_values: dict[str, Any] = {c.name: bindparam(c.name) for c in ledger_holds.c}
        self.new_hold = _compile(
            dialect_insert(ledger_holds)
            .values(hold_values)
            .on_conflict_do_nothing(index_elements=["task_id"]),
            dialect,
        )
        self.get_hold = _compile(
            select(ledger_holds).where(ledger_holds.c.task_id == bindparam("task_id")), dialect
        )
        transfer_values: dict[str, Any] = {
            c.name: bindparam(c.name) for c in ledger_transfers.c if c.name != "seq"
        }
        self.transfer = _compile(insert(ledger_transfers).values(transfer_values), dialect)
        # Any unique key (id, checkout session, event) makes a posted transfer a retry, checked after.
        self.record = _compile(
            dialect_insert(ledger_transfers).values(transfer_values).on_conflict_do_nothing(), dialect
        )
        self.get_transfer = _compile(
            select(ledger_transfers).where(ledger_transfers.c.id == bindparam("id")), dialect
        )
        # Compare and set: only a pending hold resolves, so a second settlement finds nothing to do.
        resolve = (
            update(ledger_holds)
            .where(ledger_holds.c.state == literal_column("'pending'"))
            .values(state=bindparam("new_state"), settled_us=bindparam("at_us"))
            .returning(*ledger_holds.c)
        )
        # SQLite: one precompiled statement per task (cheap, in process); PostgreSQL: one per chunk of
        # tasks (a round trip each).
        self.resolve_one = _compile(resolve.where(ledger_holds.c.task_id == bindparam("task_id")), dialect)
        self.resolve_many = resolve.where(ledger_holds.c.task_id.in_(bindparam("ids", expanding=True)))
        self.per_task = dialect.name == "sqlite"
        # PostgreSQL holds in one statement (ledger_pg.py); SQLite, in process, statement by statement.
        postgres = dialect.name == "postgresql"
        self.one_hold = _compile(ledger_pg.HOLD, dialect) if postgres else None
        self.move = _compile(ledger_pg.MOVE, dialect) if postgres else None
        self.existing = select(A.id).where(A.id.in_(bindparam("ids", expanding=True)))
        # A capped key's counter of the day: the hold's price is added only while it stays within the cap
        # (a first hold of the day is checked against the cap before it is sent).
        spend = key_daily_spend.c
        upsert = dialect_insert(key_daily_spend).values(
            key_id=bindparam("key_id"), day=bindparam("day"), held=bindparam("held")
        )
        self.count_cap = _compile(
            upsert.on_conflict_do_update(
                index_elements=["key_id", "day"],
                set_={"held": spend.held + upsert.excluded.held},
                where=spend.held + upsert.excluded.held <= bindparam("cap"),
            ).returning(spend.held),
            dialect,
        )
        self.spent = _compile(
            select(spend.held).where(spend.key_id == bindparam("key_id"), spend.day == bindparam("day")),
            dialect,
        )
        # Run budgets: the row is locked before anything else of a budget's transaction (then the hold,
        # then accounts), as settlement touches a budget after its holds and before its accounts.
        budget_values: dict[str, Any] = {c.name: bindparam(c.name) for c in ledger_budgets.c}
        self.new_budget = _compile(
            dialect_insert(ledger_budgets)
            .values(budget_values)
            .on_conflict_do_nothing(index_elements=["run_id"]),
            dialect,
        )
        self.lock_budget = _compile(
            select(ledger_budgets).where(B.run_id == bindparam("run_id")).with_for_update(key_share=True),
            dialect,
        )
        self.get_budget = _compile(select(ledger_budgets).where(B.run_id == bindparam("run_id")), dialect)
        is_open = B.state == literal_column("'open'")
        self.budget_parts = _compile(
            update(ledger_budgets)
            .where(B.run_id == bindparam("run_id"), is_open)
            .values(
                remaining_promo=B.remaining_promo + bindparam("d_promo"),
                remaining_purchased=B.remaining_purchased + bindparam("d_purchased"),
            ),
            dialect,
        )
        self.close_budget = _compile(
            update(ledger_budgets)
            .where(B.run_id == bindparam("run_id"), is_open)
            .values(
                state=literal_column("'closed'"),
                remaining_promo=literal_column("0"),
                remaining_purchased=literal_column("0"),
                refunded=bindparam("refunded"),
                closed_us=bindparam("at_us"),
            ),
            dialect,
        )
        self.uncount = _compile(
            update(key_daily_spend)
            .where(spend.key_id == bindparam("key_id"), spend.day == bindparam("day"))
            .values(held=spend.held - bindparam("amount")),
            dialect,
        )


_STATEMENTS: dict[tuple[str, str, str], LedgerStatements] = {}


def statements(dialect: Dialect) -> LedgerStatements:
    """The compiled statements of a dialect (built on first use)."""
    key = (dialect.name, dialect.driver, dialect.paramstyle)
    found = _STATEMENTS.get(key)
    if found is None:
        found = _STATEMENTS[key] = LedgerStatements(dialect)
    return found


def hold(conn: Connection, request: HoldRequest) -> Hold:
    """Hold a task's price (see ports.Ledger.hold); raises with the transaction to be rolled back."""
    if request.budget_id is not None:
        return carve(conn, request)
    st = statements(conn.dialect)
    funds = _payer_funds(conn, st, request.payer_user_id)
    try:
        promo_part, purchased_part = fund(request.price, funds.promo, funds.wallet)
    except InsufficientCredits:
        existing = _existing_hold(conn, st, request)
        if existing is not None:  # a retry of a hold made while the credits were there
            return existing
        raise
    new = request.hold(promo_part, purchased_part)
    if conn.exec_driver_sql(st.new_hold.text, st.new_hold.args(hold_row(new))).rowcount != 1:
        existing = _existing_hold(conn, st, request)
        assert existing is not None, "the hold that conflicted is there"
        return existing
    deltas: flows.Deltas = {}
    legs = flows.pend(deltas, new)
    _pend_from(conn, st, funds, deltas, request.price)
    insert_transfers(conn, legs)
    if request.cap is not None:
        count_against_cap(conn, request)
    return new


@dataclass(frozen=True, slots=True)
class _Funds:
    """What a payer can spend now, read at the start of a hold or a budget's opening."""

    wallet_id: str
    promo: int
    wallet: int
    complete: bool  # all three accounts (wallet, promotional, escrow) exist

    @property
    def available(self) -> int:
        return self.promo + self.wallet


def _payer_funds(conn: Connection, st: LedgerStatements, payer_user_id: str) -> _Funds:
    wallet, promo, escrow = ids.user_accounts(payer_user_id)
    found = {
        r[0]: r
        for r in conn.exec_driver_sql(st.read.text, st.read.args({"a0": escrow, "a1": promo, "a2": wallet}))
    }
    return _Funds(wallet, _available(found.get(promo)), _available(found.get(wallet)), len(found) == 3)


def _pend_from(
    conn: Connection, st: LedgerStatements, funds: _Funds, deltas: flows.Deltas, price: int
) -> None:
    """Apply a hold's (or a budget's) deltas: each debit a guarded UPDATE (InsufficientCredits when the
    credits went meanwhile), in account id order (escrow, promotional, wallet)."""
    if not funds.complete:  # only for accounts opened before wallets, promo and escrow came in threes
        open_accounts(conn, [funds.wallet_id])
    for account in sorted(deltas):
        delta = deltas[account]
        if delta.debits_pending:
            args = {"account": account, "amount": delta.debits_pending, "guard": delta.debits_pending}
            if conn.exec_driver_sql(st.debit.text, st.debit.args(args)).rowcount != 1:
                raise InsufficientCredits(price=price, available=funds.available)
        else:
            apply_deltas(conn, {account: delta})


def carve(conn: Connection, request: HoldRequest) -> Hold:
    """A workflow step's hold, taken out of its run's budget (ports.Ledger.hold): the budget row is
    locked, its remaining parts fund the price (promo first), and only transfers are written (the credits
    stay pending in the same accounts)."""
    st = statements(conn.dialect)
    row = conn.exec_driver_sql(
        st.lock_budget.text, st.lock_budget.args({"run_id": request.budget_id})
    ).first()
    budget = None if row is None else budget_from_row(row)
    existing = _existing_hold(conn, st, request)
    if existing is not None:  # a retry: whatever the budget holds now
        return existing
    if (
        budget is None
        or budget.state is not BudgetState.OPEN
        or budget.payer_user_id != request.payer_user_id
    ):
        message = "This workflow run holds no open budget to pay this step from"
        raise InsufficientCredits(message, price=request.price, available=0)
    try:
        promo_part, purchased_part = fund(request.price, budget.remaining_promo, budget.remaining_purchased)
    except InsufficientCredits:
        left = budget.remaining
        message = f"This step costs {request.price} credits; its run's budget has {left} left"
        raise InsufficientCredits(message, price=request.price, available=left) from None
    new = request.hold(promo_part, purchased_part)
    inserted = conn.exec_driver_sql(st.new_hold.text, st.new_hold.args(hold_row(new))).rowcount
    if inserted != 1:
        raise LedgerInconsistent(f"the hold of {request.task_id} appeared under a locked budget")
    _budget_parts(conn, st, budget.id, -promo_part, -purchased_part)
    insert_transfers(conn, flows.carve(new))
    return new


def _budget_parts(conn: Connection, st: LedgerStatements, budget_id: str, promo: int, purchased: int) -> bool:
    """Add to an open budget's remaining parts; False when the budget is not open (nothing changed)."""
    args = st.budget_parts.args({"run_id": budget_id, "d_promo": promo, "d_purchased": purchased})
    return int(conn.exec_driver_sql(st.budget_parts.text, args).rowcount) == 1


def open_budget(conn: Connection, request: BudgetRequest) -> Budget:
    """Hold a run's budget (see ports.Ledger.open_budget), funded and guarded as a hold is."""
    st = statements(conn.dialect)
    funds = _payer_funds(conn, st, request.payer_user_id)
    try:
        promo_part, purchased_part = fund(request.amount, funds.promo, funds.wallet)
    except InsufficientCredits:
        existing = _existing_budget(conn, st, request)
        if existing is not None:
            return existing
        raise
    new = request.budget(promo_part, purchased_part)
    if conn.exec_driver_sql(st.new_budget.text, st.new_budget.args(budget_row(new))).rowcount != 1:
        existing = _existing_budget(conn, st, request)
        assert existing is not None, "the budget that conflicted is there"
        return existing
    deltas: flows.Deltas = {}
    legs = flows.open_budget(deltas, new)
    _pend_from(conn, st, funds, deltas, request.amount)
    insert_transfers(conn, legs)
    if request.cap is not None:
        _count(conn, request.cap, request.created_at, request.amount)
    return new


def close_budget(conn: Connection, budget_id: str, at: datetime) -> Budget | None:
    """Close a run's budget, releasing what remains (see ports.Ledger.close_budget)."""
    st = statements(conn.dialect)
    row = conn.exec_driver_sql(st.lock_budget.text, st.lock_budget.args({"run_id": budget_id})).first()
    if row is None:
        return None
    budget = budget_from_row(row)
    if budget.state is not BudgetState.OPEN:
        return None
    args = {"run_id": budget_id, "refunded": budget.remaining, "at_us": micros(at)}
    if conn.exec_driver_sql(st.close_budget.text, st.close_budget.args(args)).rowcount != 1:
        raise LedgerInconsistent(f"the locked budget of run {budget_id} did not close")
    deltas: flows.Deltas = {}
    transfers = flows.close_budget(deltas, budget, at)
    move(conn, deltas, transfers, ())
    if budget.cap_key_id is not None and budget.remaining:
        values = {"key_id": budget.cap_key_id, "day": budget.cap_day, "amount": budget.remaining}
        conn.exec_driver_sql(st.uncount.text, st.uncount.args(values))
    return Budget(
        id=budget.id,
        payer_user_id=budget.payer_user_id,
        amount=budget.amount,
        promo=budget.promo,
        purchased=budget.purchased,
        remaining_promo=0,
        remaining_purchased=0,
        created_at=budget.created_at,
        state=BudgetState.CLOSED,
        closed_at=at,
        refunded=budget.remaining,
        cap_key_id=budget.cap_key_id,
    )


def get_budget(conn: Connection, budget_id: str) -> Budget | None:
    """A run budget as stored."""
    st = statements(conn.dialect)
    row = conn.exec_driver_sql(st.get_budget.text, st.get_budget.args({"run_id": budget_id})).first()
    return None if row is None else budget_from_row(row)


def _existing_budget(conn: Connection, st: LedgerStatements, request: BudgetRequest) -> Budget | None:
    existing = get_budget(conn, request.budget_id)
    if existing is not None and not request.same_terms(existing):
        raise Conflict("This run already holds a different budget")
    return existing


@dataclass(frozen=True, slots=True)
class OneHold:
    """The answer of the one-statement hold (ledger_pg.py): the hold made now, or nothing written."""

    held: Hold | None
    accounts: int  # how many of the payer's wallet, promo and escrow accounts exist
    available: int  # their promo and wallet credits, as the statement locked them


def read_one_hold(request: HoldRequest, row: Sequence[Any]) -> OneHold:
    """Read the one-statement hold's answer row; LedgerInconsistent for a hold that did not move its
    three accounts and write one leg per funding account (a bug: the sweeper would release it)."""
    accounts, promo_available, wallet_available, promo_part, purchased, moved, legs = row
    held = None
    if promo_part is not None:
        held = request.hold(int(promo_part), int(purchased))
        if (moved, legs) != (3, (held.promo > 0) + (held.purchased > 0)):
            raise LedgerInconsistent(f"the hold of {request.task_id} moved {moved} accounts, {legs} legs")
    return OneHold(held, int(accounts), int(promo_available) + int(wallet_available))


def hold_pg(conn: Connection, request: HoldRequest) -> Hold | None:
    """Hold a task's price on PostgreSQL with the one statement, in the caller's transaction, then count
    it against its key's cap (``count_against_cap``) in the same transaction.

    None when the statement wrote nothing for a reason ``hold`` decides better (a payer without its three
    accounts, which it opens; a retry); InsufficientCredits when the credits fall short.
    """
    st = statements(conn.dialect)
    assert st.one_hold is not None, "PostgreSQL only"
    row = conn.exec_driver_sql(st.one_hold.text, st.one_hold.args(ledger_pg.values(request))).one()
    answer = read_one_hold(request, row)
    if answer.held is not None:
        if request.cap is not None:
            count_against_cap(conn, request)
        return answer.held
    return None


def count_against_cap(conn: Connection, request: HoldRequest) -> None:
    """Add a new hold's price to its key's counter of the day, or raise SpendCapReached (the caller's
    transaction is then rolled back: nothing of the hold stays). Runs after the hold's account rows are
    locked, as settlement touches counters after accounts too."""
    assert request.cap is not None
    _count(conn, request.cap, request.created_at, request.price)


def _count(conn: Connection, cap: SpendCap, at: datetime, price: int) -> None:
    st = statements(conn.dialect)
    values = {"key_id": cap.key_id, "day": day_of(at), "held": price, "cap": cap.limit}
    if price <= cap.limit and conn.exec_driver_sql(st.count_cap.text, st.count_cap.args(values)).first():
        return
    spent = conn.exec_driver_sql(st.spent.text, st.spent.args(values)).scalar()
    raise SpendCapReached(cap=cap.limit, spent=int(spent or 0), price=price)


def settle(conn: Connection, settlements: Sequence[Settlement], at: datetime) -> list[Hold]:
    """Capture or release each task's pending hold in the caller's transaction; the holds settled now.

    A task whose hold is not pending (settled already by this or another process, or never held) is
    skipped, so completion racing cancellation pays once. A task named twice settles by its first entry.
    Per batch: one resolving UPDATE per outcome, one account update per account touched, one insert of
    all transfers, whatever the number of tasks.
    """
    st = statements(conn.dialect)
    first: dict[str, Outcome] = {}
    for s in settlements:
        first.setdefault(s.task_id, s.outcome)
    at_us = micros(at)
    settled: list[Hold] = []
    for outcome, state in ((Outcome.CAPTURE, HoldState.CAPTURED), (Outcome.RELEASE, HoldState.RELEASED)):
        task_ids = sorted(task for task, o in first.items() if o is outcome)
        if st.per_task:
            for task_id in task_ids:
                args = st.resolve_one.args({"task_id": task_id, "new_state": state.value, "at_us": at_us})
                settled.extend(hold_from_row(r) for r in conn.exec_driver_sql(st.resolve_one.text, args))
            continue
        for n in range(0, len(task_ids), _CHUNK):
            params = {"ids": task_ids[n : n + _CHUNK], "new_state": state.value, "at_us": at_us}
            settled.extend(hold_from_row(r) for r in conn.execute(st.resolve_many, params))
    if not settled:
        return []
    settled.sort(key=lambda h: h.task_id)
    deltas: flows.Deltas = {}
    transfers: list[Transfer] = []
    back = _give_back_budgets(conn, st, settled)
    for h in settled:
        if h.state is HoldState.CAPTURED:
            transfers.extend(flows.capture(deltas, h, at))
        elif h.budget_id in back:
            transfers.extend(flows.give_back(deltas, h, at))  # the run's budget is open: back to it
        else:
            transfers.extend(flows.release(deltas, h, at))
    deltas = {a: d for a, d in deltas.items() if d != flows.Delta()}  # a give-back moves no counter
    move(conn, deltas, transfers, {t.credit_account_id for t in transfers if t.kind in flows.PAYING})
    _give_back_caps(conn, st, settled)
    return settled


def move(
    conn: Connection, deltas: flows.Deltas, transfers: Sequence[Transfer], may_open: Collection[str]
) -> None:
    """Apply a movement's counter changes and write its transfers (``apply_deltas`` then
    ``insert_transfers``; on PostgreSQL one statement, ledger_pg.MOVE). An account missing that is not in
    ``may_open`` fails the caller's transaction."""
    st = statements(conn.dialect)
    if st.move is None:
        apply_deltas(conn, deltas, may_open=may_open)
        insert_transfers(conn, transfers)
        return
    values = ledger_pg.move_values(deltas, transfers, may_open)
    changed, written, missing = conn.exec_driver_sql(st.move.text, st.move.args(values)).one()
    if missing:
        raise LedgerInconsistent(f"the accounts {sorted(missing)} do not exist")
    if written != len(transfers):
        raise LedgerInconsistent(f"{written} of {len(transfers)} transfers written")
    # Opened by another transaction after this statement's snapshot (their insert won): update them now.
    for account in sorted(set(deltas) - set(changed)):
        if _update(conn, st, deltas, [account]) != 1:
            raise LedgerInconsistent(f"the account {account} does not exist")


def _give_back_budgets(conn: Connection, st: LedgerStatements, settled: Sequence[Hold]) -> set[str]:
    """Released step holds give their parts back to their run budgets that are still open, in budget id
    order (the order every transaction takes budget rows in); the budgets that took them."""
    parts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for h in settled:
        if h.budget_id is not None and h.state is HoldState.RELEASED:
            parts[h.budget_id][0] += h.promo
            parts[h.budget_id][1] += h.purchased
    return {b for b in sorted(parts) if _budget_parts(conn, st, b, parts[b][0], parts[b][1])}


def _give_back_caps(conn: Connection, st: LedgerStatements, settled: Sequence[Hold]) -> None:
    """Released holds of capped keys leave their keys' counters (of the day each was made)."""
    freed: dict[tuple[str, int], int] = defaultdict(int)
    for h in settled:
        if h.cap_key_id is not None and h.state is HoldState.RELEASED:
            freed[(h.cap_key_id, h.cap_day)] += h.price
    if freed:
        rows = [
            st.uncount.args({"key_id": key, "day": day, "amount": amount})
            for (key, day), amount in sorted(freed.items())
        ]
        conn.exec_driver_sql(st.uncount.text, rows)


def record(conn: Connection, transfer: Transfer) -> bool:
    """Post a purchase or grant once (see ports.Ledger.record)."""
    st = statements(conn.dialect)
    open_accounts(conn, sorted({transfer.debit_account_id, transfer.credit_account_id}))
    if conn.exec_driver_sql(st.record.text, st.record.args(transfer_row(transfer))).rowcount == 1:
        deltas: flows.Deltas = {}
        flows.post(deltas, transfer)
        apply_deltas(conn, deltas)
        return True
    row = conn.exec_driver_sql(st.get_transfer.text, st.get_transfer.args({"id": transfer.id})).first()
    if row is not None and transfer_from_row(row).same_movement(transfer):
        return False
    what = "checkout session or event" if row is None else "reference"
    raise Conflict(f"A different {transfer.kind} was already recorded for this {what}")


def open_accounts(conn: Connection, account_ids: Iterable[str]) -> None:
    """Create the accounts that do not exist yet (all counters zero); existing ones are left alone.

    A user's wallet, promo and escrow accounts are opened together, so a hold finds and locks all three
    of its payer's rows at once, in id order: opening one later, inside a hold, would lock it out of
    order (measured: a deadlock on PostgreSQL under concurrent first holds).
    """
    st = statements(conn.dialect)
    wanted: set[str] = set()
    for account in account_ids:
        owner = ids.owner_of(account)
        wanted.update(ids.user_accounts(owner) if owner is not None else (account,))
    rows = [st.open.args(account_row(a)) for a in sorted(wanted)]
    if rows:
        conn.exec_driver_sql(st.open.text, rows)


def apply_deltas(conn: Connection, deltas: flows.Deltas, may_open: Collection[str] = ()) -> None:
    """Add each account's counter changes, in account id order.

    Every account must exist, except those in ``may_open`` (accounts being credited, such as an agent
    owner's wallet at their first payout), which are opened when missing. Accounts are never deleted,
    so the common case is one UPDATE per account and nothing else.
    """
    if not deltas:
        return
    st = statements(conn.dialect)
    order = sorted(deltas)
    if st.multi_rowcount or len(order) == 1:  # a single statement's count is exact on every driver
        if _update(conn, st, deltas, order) == len(order):
            return
        found = set(conn.execute(st.existing, {"ids": order}).scalars())  # rare: who was missing?
        missing = [a for a in order if a not in found]
    else:  # asyncpg counts no executemany: lock the rows (in id order), open the missing, update all
        found = set(conn.execute(st.lock, {"ids": order}).scalars())
        missing = [a for a in order if a not in found]
        if not set(missing) - set(may_open):
            open_accounts(conn, missing)
            _update(conn, st, deltas, order)
            return
    refused = set(missing) - set(may_open)
    if refused:
        raise LedgerInconsistent(f"the accounts {sorted(refused)} do not exist")
    open_accounts(conn, missing)
    _update(conn, st, deltas, missing)


def _update(conn: Connection, st: LedgerStatements, deltas: flows.Deltas, order: Sequence[str]) -> int:
    rows = [
        st.delta.args(
            {
                "account": a,
                "d_dp": deltas[a].debits_pending,
                "d_dpo": deltas[a].debits_posted,
                "d_cp": deltas[a].credits_pending,
                "d_cpo": deltas[a].credits_posted,
            }
        )
        for a in order
    ]
    return int(conn.exec_driver_sql(st.delta.text, rows).rowcount)


def insert_transfers(conn: Connection, transfers: Sequence[Transfer]) -> None:
    """Write transfers; a transfer id already taken fails the whole transaction."""
    if transfers:
        st = statements(conn.dialect)
        conn.exec_driver_sql(st.transfer.text, [st.transfer.args(transfer_row(t)) for t in transfers])


def _available(row: Row[Any] | None) -> int:
    if row is None:
        return 0
    return int(row.credits_posted - row.debits_posted - row.debits_pending)


def _existing_hold(conn: Connection, st: LedgerStatements, request: HoldRequest) -> Hold | None:
    row = conn.exec_driver_sql(st.get_hold.text, st.get_hold.args({"task_id": request.task_id})).first()
    if row is None:
        return None
    existing = hold_from_row(row)
    if not existing.same_terms(request.hold(0, 0)):
        raise Conflict("This task already holds a different price")
    return existing
