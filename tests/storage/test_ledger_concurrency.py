"""The ledger under real contention, on SQLite and (when configured) PostgreSQL.

Each "process" is a thread with its own event loop, engine and store, so the database's own locking
decides (SQLite's write lock, PostgreSQL's row locks), not the order of one event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from a2a_gateway.billing.models import Hold, HoldState, Outcome, Settlement
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
