"""The ledger under real contention, on SQLite and (when configured) PostgreSQL.

Each "process" is a thread with its own event loop, engine and store, so the database's own locking
decides (SQLite's write lock, PostgreSQL's row locks), not the order of one event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from a2a_gateway.billing.models import Budget, BudgetState, Hold, HoldState, Outcome, Settlement, Transfer
from a2a_gateway.billing.service import BillingService
from a2a_gateway.errors import InsufficientCredits
from a2a_gateway.storage import engine as db
from a2a_gateway.storage.ledger_repository import SqlLedger

PROCESSES = 4


def in_process(url: str, work: Callable[[BillingService], Awaitable[list[Any]]]) -> list[Any]:
    """Run ``work`` in this thread on a store of its own, as another gateway process would."""

    async def run() -> list[Any]:
        engine = db.create_engine(url)
        ledger = SqlLedger(engine)
        try:
            return await work(BillingService(ledger))
        finally:
            await ledger.close()
            await engine.dispose()

    return asyncio.run(run())


async def processes(url: str, *works: Callable[[BillingService], Awaitable[list[Any]]]) -> list[list[Any]]:
    return list(await asyncio.gather(*(asyncio.to_thread(in_process, url, w) for w in works)))


async def setup(url: str, credits: int) -> None:
    engine = db.create_engine(url)
    await db.upgrade(engine)
    ledger = SqlLedger(engine)
    await BillingService(ledger).purchase("cs_1", "evt_1", "alice", credits)
    await ledger.close()
    await engine.dispose()


async def report_of(url: str) -> tuple[Any, Any]:
    engine = db.create_engine(url)
    ledger = SqlLedger(engine)
    billing = BillingService(ledger)
    try:
        return await billing.check(), await billing.balance("alice")
    finally:
        await ledger.close()
        await engine.dispose()


async def test_100_concurrent_holds_against_a_wallet_that_affords_10(database_url: str) -> None:
    await setup(database_url, credits=100)

    def holds(first: int) -> Callable[[BillingService], Awaitable[list[Any]]]:
        async def work(billing: BillingService) -> list[Any]:
            return await asyncio.gather(
                *(
                    billing.hold(f"t{n}", "alice", 10, payee_user_id="bob")
                    for n in range(first, 100, PROCESSES)
                ),
                return_exceptions=True,
            )

        return work

    outcomes = [
        o for batch in await processes(database_url, *(holds(p) for p in range(PROCESSES))) for o in batch
    ]
    held = [o for o in outcomes if isinstance(o, Hold)]
    refused = [o for o in outcomes if isinstance(o, InsufficientCredits)]
    assert len(outcomes) == 100 and len(held) == 10 and len(refused) == 90, [
        o for o in outcomes if not isinstance(o, Hold | InsufficientCredits)
    ]
    assert all(r.price == 10 and 0 <= r.available < 10 for r in refused)
    report, alice = await report_of(database_url)
    assert report.ok, report.lines()
    assert (report.transfers, report.holds, report.pending_holds) == (11, 10, 10)  # nothing else written
    assert (alice.available, alice.held) == (0, 100)


async def test_completion_racing_cancellation_settles_each_hold_once(database_url: str) -> None:
    tasks = [f"t{n}" for n in range(40)]
    await setup(database_url, credits=4000)

    async def hold_all(billing: BillingService) -> list[Any]:
        return [await billing.hold(t, "alice", 100, payee_user_id="bob") for t in tasks]

    await processes(database_url, hold_all)

    def settling(outcome: Outcome, order: list[str]) -> Callable[[BillingService], Awaitable[list[Any]]]:
        async def work(billing: BillingService) -> list[Any]:
            won = await asyncio.gather(*(billing.settle([Settlement(t, outcome)]) for t in order))
            return [h for batch in won for h in batch]

        return work

    captures, releases, again = await processes(
        database_url,
        settling(Outcome.CAPTURE, tasks),
        settling(Outcome.RELEASE, tasks[::-1]),
        settling(Outcome.CAPTURE, tasks[::2]),
    )
    winners = [h.task_id for h in (*captures, *releases, *again)]
    assert sorted(winners) == sorted(tasks)  # every hold settled, none twice
    assert all(h.state is HoldState.CAPTURED for h in (*captures, *again))
    assert all(h.state is HoldState.RELEASED for h in releases)
    report, alice = await report_of(database_url)
    assert report.ok, report.lines()
    assert (alice.held, alice.total_spent) == (0, 100 * (len(captures) + len(again)))
    assert alice.balance == 4000 - alice.total_spent


async def state_of(url: str, run_id: str) -> tuple[Any, Any, Budget | None, list[Transfer]]:
    """The check's report, alice's balance, a run's budget and every transfer, from a store of its own."""
    engine = db.create_engine(url)
    ledger = SqlLedger(engine)
    billing = BillingService(ledger)
    try:
        snapshot = await ledger.snapshot()
        budget = await billing.budget_of(run_id)
        return await billing.check(), await billing.balance("alice"), budget, snapshot.transfers
    finally:
        await ledger.close()
        await engine.dispose()


async def test_concurrent_steps_carve_a_run_budget_as_far_as_it_goes_and_no_further(
    database_url: str,
) -> None:
    await setup(database_url, credits=1000)

    async def open_run(billing: BillingService) -> list[Any]:
        await billing.grant("alice", 30, "welcome", reference="signup:alice")
        return [await billing.open_budget("run1", "alice", 100)]

    ((opened,),) = await processes(database_url, open_run)
    assert (opened.promo, opened.purchased) == (30, 70)  # promo first: steps carve promo, then wallet parts

    def steps(first: int) -> Callable[[BillingService], Awaitable[list[Any]]]:
        async def work(billing: BillingService) -> list[Any]:
            return await asyncio.gather(
                *(
                    billing.hold(f"s{n}", "alice", 7, payee_user_id="bob", budget_id="run1")
                    for n in range(first, 40, PROCESSES)
                ),
                return_exceptions=True,
            )

        return work

    outcomes = [
        o for batch in await processes(database_url, *(steps(p) for p in range(PROCESSES))) for o in batch
    ]
    held = [o for o in outcomes if isinstance(o, Hold)]
    refused = [o for o in outcomes if isinstance(o, InsufficientCredits)]
    assert (len(outcomes), len(held), len(refused)) == (40, 100 // 7, 40 - 100 // 7), [
        o for o in outcomes if not isinstance(o, Hold | InsufficientCredits)
    ]
    assert all(h.budget_id == "run1" and h.promo + h.purchased == 7 for h in held)
    assert sum(h.promo for h in held) == 30  # every promo credit of the budget went to a step, once
    assert all((r.price, r.available) == (7, 100 % 7) for r in refused)  # refused only once it ran dry
    report, alice, budget, _ = await state_of(database_url, "run1")
    assert report.ok, report.lines()
    # purchase, grant, the budget's two legs; a carve release and a leg per step, two more for the step
    # that took the last promo credits and then purchased ones
    assert (report.holds, report.pending_holds, report.transfers) == (14, 14, 4 + 2 * 14 + 2)
    assert budget is not None and (budget.remaining_promo, budget.remaining_purchased) == (0, 100 - 14 * 7)
    assert (alice.available, alice.held, alice.promo) == (1030 - 100, 100, 0)  # the wallet paid no step


async def test_a_runs_close_racing_its_steps_releases_and_captures_settles_every_credit_once(
    database_url: str,
) -> None:
    price, amount, rounds = 10, 100, 3
    await setup(database_url, credits=1000)
    captured_total = 0
    for r in range(rounds):
        run = f"run{r}"
        steps = [f"{run}.s{n}" for n in range(8)]  # 80 of the 100 carved; 20 left when the race starts

        async def open_and_carve(
            billing: BillingService, run: str = run, steps: list[str] = steps
        ) -> list[Any]:
            await billing.open_budget(run, "alice", amount)
            return [await billing.hold(s, "alice", price, payee_user_id="bob", budget_id=run) for s in steps]

        await processes(database_url, open_and_carve)
        before, releasing, capturing = steps[:r], steps[2:5], steps[5:7]  # the rest are released after

        async def driver(billing: BillingService, run: str = run, before: list[str] = before) -> list[Any]:
            for s in before:  # released by the closing process before it closes: certainly given back
                await billing.release(s)
            return [await billing.close_budget(run), await billing.close_budget(run)]

        def settling(outcome: Outcome, order: list[str]) -> Callable[[BillingService], Awaitable[list[Any]]]:
            async def work(billing: BillingService) -> list[Any]:
                return [await billing.settle([Settlement(s, outcome)]) for s in order]

            return work

        closes, _, _ = await processes(
            database_url, driver, settling(Outcome.RELEASE, releasing), settling(Outcome.CAPTURE, capturing)
        )
        closed, again = closes
        assert closed is not None and again is None  # closed once
        late = [s for s in steps if s not in (*before, *releasing, *capturing)]
        await processes(database_url, settling(Outcome.RELEASE, late))  # after the close: to the wallet
        captured_total += price * len(capturing)

        report, alice, budget, transfers = await state_of(database_url, run)
        assert report.ok, report.lines()
        given_back = {
            t.reference.split(":")[3] for t in transfers if t.reference.startswith(f"run:{run}:return:")
        }
        released = set(before) | set(releasing) | set(late)
        assert set(before) <= given_back <= set(before) | set(releasing)  # never a late one, never a capture
        assert budget is not None and budget.state is BudgetState.CLOSED and budget.remaining == 0
        assert budget.refunded == closed.refunded == amount - price * len(steps) + price * len(given_back)
        to_wallet = released - given_back
        assert budget.refunded + price * len(capturing) + price * len(to_wallet) == amount
        assert (alice.balance, alice.held, alice.available) == (
            1000 - captured_total,
            0,
            1000 - captured_total,
        )
        assert alice.total_spent == captured_total


async def test_two_processes_opening_one_runs_budget_hold_it_once(database_url: str) -> None:
    await setup(database_url, credits=1000)

    async def open_runs(billing: BillingService) -> list[Any]:
        return list(
            await asyncio.gather(
                *(
                    billing.open_budget(run, "alice", amount, key_id="k1", daily_spend_cap=5000)
                    for run, amount in (("big", 600), ("small", 100))  # the wallet affords one big budget
                )
            )
        )

    first, second = await processes(database_url, open_runs, open_runs)
    assert first == second  # both processes got the one budget of each run
    assert [(b.id, b.amount, b.remaining) for b in first] == [("big", 600, 600), ("small", 100, 100)]
    report, alice, _, transfers = await state_of(database_url, "big")
    assert report.ok, report.lines()  # the key's counter too: each budget counted once
    assert len([t for t in transfers if t.budget_id]) == 2  # one opening leg per budget
    assert (alice.held, alice.available) == (700, 300)
