"""Daily spend caps of keys in the SQL ledger, on SQLite and (when configured) PostgreSQL.

A capped key's holds count in its counter of the UTC day, in the hold's own transaction: a hold past the
cap is refused with nothing written, a release gives its price back (to the day it was made), a capture
keeps it, a retried hold counts once, and ``ledger check`` finds a counter changed behind its back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from a2a_gateway.billing.caps import SpendCapReached, day_of
from a2a_gateway.billing.models import Hold
from a2a_gateway.billing.service import BillingService
from a2a_gateway.errors import InsufficientCredits, InvalidParams
from a2a_gateway.storage import engine as db
from a2a_gateway.storage.ledger_repository import SqlLedger
from a2a_gateway.storage.tables import key_daily_spend, ledger_accounts, ledger_holds, ledger_transfers
from tests.factories import Clock
from tests.storage.test_ledger_concurrency import PROCESSES, processes, report_of, setup

KEY = "key-1"


@dataclass
class Env:
    engine: AsyncEngine
    billing: BillingService
    clock: Clock


@pytest.fixture
async def env(database_url: str) -> AsyncIterator[Env]:
    engine = db.create_engine(database_url)
    await db.upgrade(engine)
    ledger = SqlLedger(engine)
    clock = Clock()
    yield Env(engine, BillingService(ledger, clock=clock), clock)
    await ledger.close()
    await engine.dispose()


async def rows(engine: AsyncEngine) -> tuple[list[Any], ...]:
    """Every ledger row and every counter, to show that a refusal wrote nothing."""
    out = []
    async with engine.connect() as conn:
        for table in (ledger_accounts, ledger_transfers, ledger_holds, key_daily_spend):
            found = await conn.execute(select(table).order_by(*table.primary_key.columns))
            out.append([tuple(r) for r in found])
    return tuple(out)


async def counted(engine: AsyncEngine) -> dict[tuple[str, int], int]:
    async with engine.connect() as conn:
        found = await conn.execute(select(key_daily_spend))
        return {(r.key_id, r.day): r.held for r in found}


def capped(billing: BillingService, task: str, price: int, cap: int = 250) -> Awaitable[Hold | None]:
    return billing.hold(task, "alice", price, payee_user_id="bob", key_id=KEY, daily_spend_cap=cap)


async def test_a_capped_key_holds_up_to_its_cap_and_a_refusal_writes_nothing(env: Env) -> None:
    b = env.billing
    await b.purchase("cs_1", "evt_1", "alice", 10_000)
    today = day_of(env.clock.now)
    assert await capped(b, "t1", 100) is not None
    held = await capped(b, "t2", 150)
    assert held is not None and held.cap_key_id == KEY
    assert await counted(env.engine) == {(KEY, today): 250}
    before = await rows(env.engine)
    with pytest.raises(SpendCapReached) as refused:
        await capped(b, "t3", 1)
    assert refused.value.metadata == {"cap": "250", "spent": "250", "price": "1"}
    with pytest.raises(SpendCapReached) as first_too_dear:  # alone above the cap: no counter yet needed
        await capped(b, "t4", 300, cap=299)
    assert (first_too_dear.value.spent, first_too_dear.value.cap) == (250, 299)
    assert await rows(env.engine) == before
    assert await capped(b, "t2", 150) == held  # a retry: the same hold, counted once
    assert await counted(env.engine) == {(KEY, today): 250}
    assert await b.hold("t5", "alice", 400, payee_user_id="bob", key_id=KEY) is not None  # no cap given
    assert await counted(env.engine) == {(KEY, today): 250}
    assert (await b.check()).ok


async def test_a_release_gives_the_cap_back_to_its_day_and_a_capture_keeps_it(env: Env) -> None:
    b = env.billing
    await b.purchase("cs_1", "evt_1", "alice", 10_000)
    yesterday = day_of(env.clock.now)
    for task in ("paid", "failed", "late"):
        await capped(b, task, 80)
    await b.capture("paid")
    await b.release("failed")
    assert await counted(env.engine) == {(KEY, yesterday): 160}
    assert await capped(b, "again", 90) is not None  # what the failed call held is free again
    env.clock.now += timedelta(days=1)  # a new UTC day: a new counter
    assert await capped(b, "today", 250) is not None
    await b.release("late")  # made yesterday: gives back to yesterday
    assert await counted(env.engine) == {(KEY, yesterday): 170, (KEY, yesterday + 1): 250}
    report = await b.check()
    assert {f.invariant for f in report.findings} == {"orphan"}, report.lines()  # a day on, no tasks


async def test_a_hold_refused_for_credits_counts_nothing_and_bounds_are_checked(env: Env) -> None:
    await env.billing.purchase("cs_1", "evt_1", "alice", 50)
    with pytest.raises(InsufficientCredits):
        await capped(env.billing, "t1", 60)
    assert await counted(env.engine) == {}
    for cap in (-1, 10**12 + 1):
        with pytest.raises(InvalidParams):
            await capped(env.billing, "t1", 1, cap=cap)


async def test_ledger_check_finds_a_counter_changed_behind_its_back(env: Env) -> None:
    await env.billing.purchase("cs_1", "evt_1", "alice", 1000)
    await capped(env.billing, "t1", 100)
    async with env.engine.begin() as conn:
        await conn.execute(text("UPDATE key_daily_spend SET held = held - 40"))
    report = await env.billing.check()
    day = day_of(env.clock.now)
    assert [(f.invariant, f.subject, f.detail) for f in report.findings] == [
        ("cap", f"{KEY} day {day}", "the counter says 60, its holds 100")
    ]


async def test_100_concurrent_holds_with_a_cap_that_affords_10_hold_exactly_10(database_url: str) -> None:
    await setup(database_url, credits=100_000)  # the wallet could pay for all of them: the cap decides

    def holds(first: int) -> Callable[[BillingService], Awaitable[list[Any]]]:
        async def work(billing: BillingService) -> list[Any]:
            return await asyncio.gather(
                *(
                    billing.hold(f"t{n}", "alice", 10, payee_user_id="bob", key_id=KEY, daily_spend_cap=100)
                    for n in range(first, 100, PROCESSES)
                ),
                return_exceptions=True,
            )

        return work

    outcomes = [
        o for batch in await processes(database_url, *(holds(p) for p in range(PROCESSES))) for o in batch
    ]
    held = [o for o in outcomes if isinstance(o, Hold)]
    refused = [o for o in outcomes if isinstance(o, SpendCapReached)]
    assert len(held) == 10 and len(refused) == 90, [
        o for o in outcomes if not isinstance(o, Hold | SpendCapReached)
    ]
    assert all(r.spent == 100 and r.cap == 100 for r in refused)
    report, alice = await report_of(database_url)
    assert report.ok, report.lines()
    assert (report.holds, alice.held) == (10, 100)
