"""A Hypothesis state machine over the SQL ledger, with a plain-Python model as its oracle.

Purchases (duplicate events and sessions, conflicting replays), grants and their retries, holds and
their retries, captures, releases, double settles and mixed batches; after every step the balances,
the holds and the transaction history must match the model, and ``ledger check`` must find nothing.
Runs on SQLite, and on PostgreSQL when A2A_GATEWAY_TEST_POSTGRES_URL is set.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
    run_state_machine_as_test,
)

from a2a_gateway.billing.models import Hold, HoldState, Outcome, Settlement
from a2a_gateway.billing.service import BillingService
from a2a_gateway.errors import Conflict, InsufficientCredits
from a2a_gateway.storage import engine as db
from a2a_gateway.storage.ledger_repository import SqlLedger
from tests.conftest import POSTGRES_URL
from tests.factories import Clock

T = TypeVar("T")
RUNS = itertools.count()


@dataclass
class ModelHold:
    payer: str
    payee: str
    price: int
    fee_bps: int
    promo: int
    purchased: int
    state: HoldState = HoldState.PENDING
    budget: str | None = None


@dataclass
class ModelBudget:
    payer: str
    amount: int
    promo: int  # what is left of each part
    purchased: int
    open: bool = True


@dataclass
class Model:
    """What the ledger should say, kept in the simplest terms: per-user balances and holds."""

    wallet: dict[str, int] = field(default_factory=dict)  # posted purchased and earned credits
    promo: dict[str, int] = field(default_factory=dict)  # posted promotional credits
    purchased: dict[str, int] = field(default_factory=dict)
    earned: dict[str, int] = field(default_factory=dict)
    spent: dict[str, int] = field(default_factory=dict)
    sessions: dict[str, tuple[str, str, int]] = field(default_factory=dict)  # session -> event, user, credits
    events: set[str] = field(default_factory=set)
    grants: dict[str, tuple[str, int]] = field(default_factory=dict)
    holds: dict[str, ModelHold] = field(default_factory=dict)
    budgets: dict[str, ModelBudget] = field(default_factory=dict)

    def held(self, user: str, promo: bool) -> int:
        in_holds = sum(
            h.promo if promo else h.purchased
            for h in self.holds.values()
            if h.payer == user and h.state is HoldState.PENDING
        )
        in_budgets = sum(b.promo if promo else b.purchased for b in self.budgets.values() if b.payer == user)
        return in_holds + in_budgets

    def available(self, user: str, promo: bool) -> int:
        source = self.promo if promo else self.wallet
        return source.get(user, 0) - self.held(user, promo)

    def settle(self, task: str, outcome: Outcome) -> bool:
        h = self.holds.get(task)
        if h is None or h.state is not HoldState.PENDING:
            return False
        if outcome is Outcome.RELEASE:
            h.state = HoldState.RELEASED
            budget = self.budgets.get(h.budget) if h.budget is not None else None
            if budget is not None and budget.open:  # back to the run's budget
                budget.promo += h.promo
                budget.purchased += h.purchased
            return True
        h.state = HoldState.CAPTURED
        fee = h.price * h.fee_bps // 10_000
        self.promo[h.payer] = self.promo.get(h.payer, 0) - h.promo
        self.wallet[h.payer] = self.wallet.get(h.payer, 0) - h.purchased
        self.spent[h.payer] = self.spent.get(h.payer, 0) + h.price
        self.wallet[h.payee] = self.wallet.get(h.payee, 0) + h.price - fee
        self.earned[h.payee] = self.earned.get(h.payee, 0) + h.price - fee
        return True


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database (sync fixture: the state machine drives its own event loop)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'stateful.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("A2A_GATEWAY_TEST_POSTGRES_URL is not set; PostgreSQL stateful test skipped")
    import asyncpg

    dsn = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")
    name = f"a2a_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    base = (
        POSTGRES_URL
        if "+asyncpg" in POSTGRES_URL
        else POSTGRES_URL.replace("postgresql://", "postgresql+asyncpg://")
    )
    yield base.rsplit("/", 1)[0] + "/" + name
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_the_sql_ledger_follows_its_model(ledger_url: str) -> None:
    with asyncio.Runner() as runner:
        engine = db.create_engine(ledger_url)
        runner.run(db.upgrade(engine))
        store = SqlLedger(engine)
        try:
            LedgerMachine.run = staticmethod(runner.run)
            LedgerMachine.billing = BillingService(store, clock=Clock())
            run_state_machine_as_test(
                LedgerMachine,
                settings=settings(
                    max_examples=15,
                    stateful_step_count=20,
                    deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
                ),
            )
        finally:
            runner.run(store.close())
            runner.run(engine.dispose())


class LedgerMachine(RuleBasedStateMachine):
    """Every example runs on the same database under its own ids, so the checks also cover the rows
    earlier examples left (the ledger must stay sound as it grows)."""

    run: Any
    billing: BillingService
    sessions = Bundle("sessions")
    grants = Bundle("grants")
    tasks = Bundle("tasks")
    budgets = Bundle("budgets")

    def __init__(self) -> None:
        super().__init__()
        self.prefix = f"r{next(RUNS)}"
        self.users = [f"{self.prefix}u{n}" for n in range(3)]
        self.model = Model()
        self.ids = itertools.count()

    def new_id(self, kind: str) -> str:
        return f"{self.prefix}{kind}{next(self.ids)}"

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        result: T = self.run(coro)
        return result

    # --- purchases and grants ---------------------------------------------------------------------

    @rule(target=sessions, user=st.integers(0, 2), credits=st.integers(1, 300))
    def purchase(self, user: int, credits: int) -> str:
        session, event, buyer = self.new_id("cs"), self.new_id("evt"), self.users[user]
        assert self.call(self.billing.purchase(session, event, buyer, credits))
        m = self.model
        m.sessions[session] = (event, buyer, credits)
        m.events.add(event)
        m.wallet[buyer] = m.wallet.get(buyer, 0) + credits
        m.purchased[buyer] = m.purchased.get(buyer, 0) + credits
        return session

    @rule(session=sessions, same_event=st.booleans())
    def duplicate_delivery(self, session: str, same_event: bool) -> None:
        event, buyer, credits = self.model.sessions[session]
        if not same_event:  # async_payment_succeeded after completed: a new event, the same session
            event = self.new_id("evt")
        assert not self.call(self.billing.purchase(session, event, buyer, credits))

    @rule(session=sessions, extra=st.integers(1, 50))
    def conflicting_replay(self, session: str, extra: int) -> None:
        event, buyer, credits = self.model.sessions[session]
        with pytest.raises(Conflict):
            self.call(self.billing.purchase(session, self.new_id("evt"), buyer, credits + extra))
        with pytest.raises(Conflict):  # one event never credits a second session
            self.call(self.billing.purchase(self.new_id("cs"), event, buyer, credits))

    @rule(target=grants, user=st.integers(0, 2), amount=st.integers(1, 100))
    def grant(self, user: int, amount: int) -> str:
        reference, receiver = self.new_id("g"), self.users[user]
        assert self.call(self.billing.grant(receiver, amount, "promo", reference=reference))
        self.model.grants[reference] = (receiver, amount)
        self.model.promo[receiver] = self.model.promo.get(receiver, 0) + amount
        return reference

    @rule(reference=grants)
    def retried_grant(self, reference: str) -> None:
        receiver, amount = self.model.grants[reference]
        assert not self.call(self.billing.grant(receiver, amount, "promo", reference=reference))

    # --- holds and settlement ---------------------------------------------------------------------

    @rule(
        target=tasks,
        payer=st.integers(0, 2),
        payee=st.integers(0, 2),
        price=st.integers(0, 200),
        fee_bps=st.sampled_from([0, 1, 500, 2500, 10_000]),
    )
    def hold(self, payer: int, payee: int, price: int, fee_bps: int) -> str:
        task, m = self.new_id("t"), self.model
        a, b = self.users[payer], self.users[payee]
        expected_available = m.available(a, True) + m.available(a, False)
        free = price == 0 or a == b
        if not free and price > expected_available:
            with pytest.raises(InsufficientCredits) as refused:
                self.call(self.billing.hold(task, a, price, payee_user_id=b, fee_bps=fee_bps))
            assert (refused.value.price, refused.value.available) == (price, expected_available)
            return task
        held = self.call(self.billing.hold(task, a, price, payee_user_id=b, fee_bps=fee_bps))
        if free:
            assert held is None
            return task
        promo = min(price, m.available(a, True))
        assert held is not None and (held.promo, held.purchased, held.fee_bps) == (
            promo,
            price - promo,
            fee_bps,
        )
        m.holds[task] = ModelHold(a, b, price, fee_bps, promo, price - promo)
        return task

    @rule(task=tasks)
    def retried_hold(self, task: str) -> None:
        h = self.model.holds.get(task)
        if h is None:
            return

        def hold(price: int, budget: str | None) -> Hold | None:
            return self.call(
                self.billing.hold(
                    task, h.payer, price, payee_user_id=h.payee, fee_bps=h.fee_bps, budget_id=budget
                )
            )

        again = hold(h.price, h.budget)
        assert again is not None and again.state is h.state
        with pytest.raises(Conflict):
            hold(h.price + 1, h.budget)
        if h.budget is not None:  # the same task paid another way is another hold
            with pytest.raises(Conflict):
                hold(h.price, None)

    @rule(task=tasks, outcome=st.sampled_from(Outcome))
    def settle_one(self, task: str, outcome: Outcome) -> None:
        settled = self.call(
            self.billing.capture(task) if outcome is Outcome.CAPTURE else self.billing.release(task)
        )
        assert (settled is not None) == self.model.settle(task, outcome)

    @rule(task=consumes(tasks))
    def complete_and_cancel_race(self, task: str) -> None:
        """Both ends of one task arrive in one batch: the first wins, the other does nothing."""
        won = self.call(
            self.billing.settle([Settlement(task, Outcome.CAPTURE), Settlement(task, Outcome.RELEASE)])
        )
        assert [h.task_id for h in won] == ([task] if self.model.settle(task, Outcome.CAPTURE) else [])

    @rule(batch=st.lists(st.tuples(tasks, st.sampled_from(Outcome)), max_size=6))
    def settle_batch(self, batch: list[tuple[str, Outcome]]) -> None:
        settled = self.call(self.billing.settle([Settlement(t, o) for t, o in batch]))
        expected = []
        seen: set[str] = set()
        for task, outcome in batch:
            if task not in seen:
                seen.add(task)
                if self.model.settle(task, outcome):
                    expected.append(task)
        assert sorted(h.task_id for h in settled) == sorted(expected)

    # --- run budgets: a workflow run's one hold, its steps' holds carved out of it -------------------

    @rule(target=budgets, payer=st.integers(0, 2), amount=st.integers(1, 300))
    def open_budget(self, payer: int, amount: int) -> str:
        run, m = self.new_id("run"), self.model
        a = self.users[payer]
        available = m.available(a, True) + m.available(a, False)
        if amount > available:
            with pytest.raises(InsufficientCredits):
                self.call(self.billing.open_budget(run, a, amount))
            return run
        opened = self.call(self.billing.open_budget(run, a, amount))
        promo = min(amount, m.available(a, True))
        assert opened is not None and (opened.promo, opened.purchased) == (promo, amount - promo)
        m.budgets[run] = ModelBudget(a, amount, promo, amount - promo)
        again = self.call(self.billing.open_budget(run, a, amount))  # a retry holds nothing more
        assert again is not None and again.amount == amount
        with pytest.raises(Conflict):
            self.call(self.billing.open_budget(run, a, amount + 1))
        return run

    @rule(
        target=tasks,
        run=budgets,
        payee=st.integers(0, 2),
        price=st.integers(1, 150),
        fee_bps=st.sampled_from([0, 500, 10_000]),
    )
    def step_hold(self, run: str, payee: int, price: int, fee_bps: int) -> str:
        task, m = self.new_id("t"), self.model
        budget = m.budgets.get(run)
        payer = budget.payer if budget is not None else self.users[0]
        b = self.users[payee]
        call = self.billing.hold(task, payer, price, payee_user_id=b, fee_bps=fee_bps, budget_id=run)
        if payer == b:
            assert self.call(call) is None
            return task
        if budget is None or not budget.open or price > budget.promo + budget.purchased:
            with pytest.raises(InsufficientCredits):
                self.call(call)
            return task
        held = self.call(call)
        promo = min(price, budget.promo)
        assert held is not None and (held.promo, held.purchased, held.budget_id) == (
            promo,
            price - promo,
            run,
        )
        budget.promo -= promo
        budget.purchased -= price - promo
        m.holds[task] = ModelHold(payer, b, price, fee_bps, promo, price - promo, budget=run)
        return task

    @rule(run=budgets)
    def close_budget(self, run: str) -> None:
        budget = self.model.budgets.get(run)
        closed = self.call(self.billing.close_budget(run))
        if budget is None or not budget.open:
            assert closed is None
            return
        assert closed is not None and closed.refunded == budget.promo + budget.purchased
        budget.open, budget.promo, budget.purchased = False, 0, 0

    @rule(run=budgets, payee=st.integers(0, 2))
    def another_payer_cannot_spend_a_budget(self, run: str, payee: int) -> None:
        budget = self.model.budgets.get(run)
        if budget is None:
            return
        thief = next(u for u in self.users if u != budget.payer)
        with pytest.raises(InsufficientCredits):
            self.call(
                self.billing.hold(self.new_id("t"), thief, 1, payee_user_id=budget.payer, budget_id=run)
            )

    # --- after every step --------------------------------------------------------------------------

    @invariant()
    def balances_match_the_model(self) -> None:
        m = self.model
        for user in self.users:
            b = self.call(self.billing.balance(user))
            held = m.held(user, True) + m.held(user, False)
            balance = m.wallet.get(user, 0) + m.promo.get(user, 0)
            assert (b.balance, b.held, b.available, b.promo) == (
                balance,
                held,
                balance - held,
                m.available(user, True),
            )
            assert (b.total_purchased, b.total_earned, b.total_spent) == (
                m.purchased.get(user, 0),
                m.earned.get(user, 0),
                m.spent.get(user, 0),
            )
            history = self.call(self.billing.transactions(user, limit=200))
            assert (history[0].balance_after if history else 0) == b.available
            for newer, older in itertools.pairwise(history):
                assert newer.balance_after == older.balance_after + newer.amount

    @invariant()
    def holds_match_the_model(self) -> None:
        for task, h in self.model.holds.items():
            stored: Hold | None = self.call(self.billing.hold_of(task))
            assert stored is not None and (stored.state, stored.price, stored.promo) == (
                h.state,
                h.price,
                h.promo,
            )

    @invariant()
    def budgets_match_the_model(self) -> None:
        for run, expected in self.model.budgets.items():
            stored = self.call(self.billing.budget_of(run))
            assert stored is not None
            assert (stored.remaining_promo, stored.remaining_purchased, stored.state.value) == (
                expected.promo,
                expected.purchased,
                "open" if expected.open else "closed",
            )
            spent = sum(
                h.price
                for h in self.model.holds.values()
                if h.budget == run and h.state is HoldState.CAPTURED
            )
            assert spent <= expected.amount

    @invariant()
    def the_reconciliation_finds_nothing(self) -> None:
        report = self.call(self.billing.check())
        assert report.ok, report.lines()
