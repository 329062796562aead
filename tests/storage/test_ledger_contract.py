"""The SQL ledger on SQLite and (when configured) PostgreSQL: what the database itself guarantees.

Refusals write nothing, retries are harmless, the database refuses overdrafts and edits of transfers
even when Python is wrong, settlement rides in a caller's transaction, and the reconciliation finds
counters changed behind the ledger's back and holds nobody will settle.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from a2a_gateway.billing import flows
from a2a_gateway.billing.history import entries
from a2a_gateway.billing.models import HoldState, Outcome, Settlement, TransferKind
from a2a_gateway.billing.service import BillingService
from a2a_gateway.errors import Conflict, InsufficientCredits
from a2a_gateway.protocol.v1 import TaskState
from a2a_gateway.storage import engine as db
from a2a_gateway.storage import ledger_sql
from a2a_gateway.storage.ledger_repository import SqlLedger
from a2a_gateway.storage.tables import ledger_accounts, ledger_holds, ledger_transfers, tasks
from a2a_gateway.storage.timestamps import micros
from tests.factories import Clock


@dataclass
class Env:
    engine: AsyncEngine
    ledger: SqlLedger
    billing: BillingService
    clock: Clock


@pytest.fixture
async def env(database_url: str) -> AsyncIterator[Env]:
    engine = db.create_engine(database_url)
    await db.upgrade(engine)
    ledger = SqlLedger(engine)
    clock = Clock()
    yield Env(engine, ledger, BillingService(ledger, clock=clock), clock)
    await ledger.close()
    await engine.dispose()


async def dump(engine: AsyncEngine) -> tuple[list[Any], ...]:
    """Every ledger row, to show that a refusal wrote nothing."""
    out = []
    async with engine.connect() as conn:
        for table in (ledger_accounts, ledger_transfers, ledger_holds):
            rows = await conn.execute(select(table).order_by(*table.primary_key.columns))
            out.append([tuple(r) for r in rows])
    return tuple(out)


async def in_transaction(engine: AsyncEngine, fn: Callable[[Connection], Any]) -> Any:
    """Run ``fn`` on a sync connection inside a transaction of the test's own (as the task writer does)."""
    sync = db.sqlite_writer_engine(engine)
    if sync is None:
        async with engine.begin() as conn:
            return await conn.run_sync(fn)
    try:
        with sync.begin() as conn:
            return fn(conn)
    finally:
        sync.dispose()


async def test_purchases_and_grants_credit_once(env: Env) -> None:
    b = env.billing
    assert await b.purchase("cs_1", "evt_1", "alice", 1000)
    assert not await b.purchase("cs_1", "evt_1", "alice", 1000)
    assert not await b.purchase("cs_1", "evt_2", "alice", 1000)
    with pytest.raises(Conflict):
        await b.purchase("cs_2", "evt_1", "alice", 1000)
    with pytest.raises(Conflict):
        await b.purchase("cs_1", "evt_3", "bob", 1000)
    assert await b.grant("alice", 50, "welcome", reference="signup:alice")
    assert not await b.grant("alice", 50, "welcome", reference="signup:alice")
    with pytest.raises(Conflict):
        await b.grant("alice", 60, "welcome", reference="signup:alice")
    balance = await b.balance("alice")
    assert (balance.balance, balance.total_purchased, balance.promo) == (1050, 1000, 50)
    assert (await b.balance("nobody")).balance == 0
    assert (await b.check()).ok


async def test_a_refused_hold_writes_nothing(env: Env) -> None:
    await env.billing.purchase("cs_1", "evt_1", "alice", 60)
    await env.billing.grant("alice", 10, "welcome", reference="signup:alice")
    before = await dump(env.engine)
    with pytest.raises(InsufficientCredits) as refused:
        await env.billing.hold("t1", "alice", 71, payee_user_id="bob")
    assert (refused.value.price, refused.value.available) == (71, 70)
    with pytest.raises(InsufficientCredits):
        await env.billing.hold("t2", "stranger", 1, payee_user_id="bob")  # no account at all
    assert await dump(env.engine) == before


async def test_a_hold_is_funded_promo_first_and_retried_harmlessly(env: Env) -> None:
    await env.billing.purchase("cs_1", "evt_1", "alice", 100)
    await env.billing.grant("alice", 30, "welcome", reference="signup:alice")
    held = await env.billing.hold("t1", "alice", 130, payee_user_id="bob")
    assert held is not None and (held.promo, held.purchased) == (30, 100)
    assert await env.ledger.get_hold("t1") == held
    before = await dump(env.engine)
    assert await env.billing.hold("t1", "alice", 130, payee_user_id="bob") == held  # empty wallet: still held
    with pytest.raises(Conflict):
        await env.billing.hold("t1", "alice", 129, payee_user_id="bob")
    assert await dump(env.engine) == before


async def test_the_database_refuses_an_overdraft_python_let_through(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    await env.billing.purchase("cs_1", "evt_1", "alice", 10)
    before = await dump(env.engine)
    monkeypatch.setattr(ledger_sql, "fund", lambda price, _promo, _wallet: (0, price))  # a wrong check
    with pytest.raises(InsufficientCredits):
        await env.billing.hold("t1", "alice", 11, payee_user_id="bob")
    assert await dump(env.engine) == before
    async with env.engine.connect() as conn:  # and the constraint stands behind the conditional update
        with pytest.raises(DBAPIError, match=r"(?i)check|constraint"):
            await conn.execute(
                update(ledger_accounts)
                .where(ledger_accounts.c.id == "wallet:alice")
                .values(debits_pending=ledger_accounts.c.credits_posted + 1)
            )


async def test_transfers_never_change_and_resolved_holds_stay_resolved(env: Env) -> None:
    await env.billing.purchase("cs_1", "evt_1", "alice", 10)
    await env.billing.hold("t1", "alice", 5, payee_user_id="bob")
    await env.billing.capture("t1")
    refused = [
        update(ledger_transfers).values(amount=1),
        delete(ledger_transfers),
        update(ledger_holds).where(ledger_holds.c.task_id == "t1").values(state="released"),
        update(ledger_holds).where(ledger_holds.c.task_id == "t1").values(state="pending"),
        delete(ledger_holds),
        delete(ledger_accounts).where(ledger_accounts.c.id == "wallet:bob"),
    ]
    for statement in refused:
        async with env.engine.begin() as conn:
            with pytest.raises(DBAPIError, match="ledger"):
                await conn.execute(statement)
    assert (await env.billing.check()).ok


async def test_capture_and_release_settle_exactly_once(env: Env) -> None:
    b = env.billing
    await b.purchase("cs_1", "evt_1", "alice", 1000)
    await b.grant("alice", 30, "welcome", reference="signup:alice")
    await b.hold("done", "alice", 100, payee_user_id="bob")
    await b.hold("dropped", "alice", 50, payee_user_id="bob")
    env.clock.now += timedelta(seconds=2)
    captured = await b.capture("done")
    assert (
        captured is not None and captured.state is HoldState.CAPTURED and captured.settled_at == env.clock.now
    )
    released = await b.release("dropped")
    assert released is not None and released.state is HoldState.RELEASED
    before = await dump(env.engine)
    for again in (b.capture("done"), b.release("done"), b.capture("dropped"), b.release("nothing")):
        assert await again is None
    assert await dump(env.engine) == before
    alice, bob = await b.balance("alice"), await b.balance("bob")
    assert (alice.balance, alice.available, alice.held, alice.total_spent, alice.promo) == (
        930,
        930,
        0,
        100,
        0,
    )
    assert (bob.balance, bob.total_earned) == (95, 95)
    assert (await b.check()).ok


async def test_settlement_rides_in_the_callers_transaction(env: Env) -> None:
    await env.billing.purchase("cs_1", "evt_1", "alice", 1000)
    for task in ("a", "b", "c"):
        await env.billing.hold(task, "alice", 100, payee_user_id="bob")
    batch = [
        Settlement("a", Outcome.CAPTURE),
        Settlement("b", Outcome.RELEASE),
        Settlement("a", Outcome.RELEASE),
        Settlement("missing", Outcome.CAPTURE),
    ]
    before = await dump(env.engine)

    def settle_then_fail(conn: Connection) -> None:
        assert len(ledger_sql.settle(conn, batch, env.clock.now)) == 2
        raise RuntimeError("the task write failed")  # the caller's transaction rolls back

    with pytest.raises(RuntimeError):
        await in_transaction(env.engine, settle_then_fail)
    assert await dump(env.engine) == before
    settled = await in_transaction(env.engine, lambda conn: ledger_sql.settle(conn, batch, env.clock.now))
    assert [(h.task_id, h.state) for h in settled] == [("a", HoldState.CAPTURED), ("b", HoldState.RELEASED)]
    assert await in_transaction(env.engine, lambda conn: ledger_sql.settle(conn, batch, env.clock.now)) == []
    assert (await env.ledger.get_hold("c")).state is HoldState.PENDING  # type: ignore[union-attr]
    assert (await env.billing.check()).ok


async def test_first_payouts_open_the_owners_wallets_within_a_batch(env: Env) -> None:
    await env.billing.purchase("cs_1", "evt_1", "alice", 1000)
    await env.billing.purchase("cs_2", "evt_2", "bob", 1)  # bob has a wallet, carol and dave do not
    for task, owner in (("t1", "bob"), ("t2", "carol"), ("t3", "dave"), ("t4", "carol")):
        await env.billing.hold(task, "alice", 100, payee_user_id=owner)
    settled = await env.billing.settle([Settlement(t, Outcome.CAPTURE) for t in ("t1", "t2", "t3", "t4")])
    assert len(settled) == 4
    assert [(await env.billing.balance(u)).balance for u in ("bob", "carol", "dave")] == [96, 190, 95]
    assert (await env.billing.check()).ok


async def test_counters_of_a_missing_account_are_refused(env: Env) -> None:
    deltas = {"wallet:ghost": flows.Delta(debits_pending=1), "wallet:new": flows.Delta(credits_posted=1)}
    with pytest.raises(ledger_sql.LedgerInconsistent, match="wallet:ghost"):
        await in_transaction(
            env.engine, lambda conn: ledger_sql.apply_deltas(conn, deltas, may_open={"wallet:new"})
        )
    assert await dump(env.engine) == ([], [], [])


@pytest.mark.parametrize("flow", ["hold", "capture", "release", "purchase"])
async def test_a_crash_inside_the_transaction_leaves_nothing(
    env: Env, monkeypatch: pytest.MonkeyPatch, flow: str
) -> None:
    await env.billing.purchase("cs_1", "evt_1", "alice", 1000)
    if flow in ("capture", "release"):
        await env.billing.hold("t1", "alice", 100, payee_user_id="bob")
    before = await dump(env.engine)
    seen: list[Any] = []

    def counters(conn: Connection) -> list[Any]:
        return [tuple(r) for r in conn.execute(select(ledger_accounts).order_by(ledger_accounts.c.id))]

    def crash(conn: Connection, *_args: Any, **_kw: Any) -> None:
        seen.append(counters(conn))  # proves the counters had been updated when the crash came
        raise RuntimeError("crash")

    if flow == "purchase":  # a purchase writes its transfer first (idempotency), then the counters
        real = ledger_sql.apply_deltas

        def apply_then_crash(conn: Connection, *args: Any, **kw: Any) -> None:
            real(conn, *args, **kw)
            crash(conn)

        monkeypatch.setattr(ledger_sql, "apply_deltas", apply_then_crash)
        action: Awaitable[object] = env.billing.purchase("cs_2", "evt_2", "alice", 500)
    elif flow == "hold":
        # The last step of a hold on either path: a capped key's counter, after the hold row, the
        # counters and the legs (on PostgreSQL one statement wrote those, in the same transaction).
        monkeypatch.setattr(ledger_sql, "count_against_cap", crash)
        action = env.billing.hold("t2", "alice", 100, payee_user_id="bob", key_id="k", daily_spend_cap=500)
    else:
        real_move = ledger_sql.move

        def move_then_crash(conn: Connection, *args: Any, **kw: Any) -> None:
            real_move(conn, *args, **kw)  # the counters and the transfers (one statement on PostgreSQL)
            crash(conn)

        monkeypatch.setattr(ledger_sql, "move", move_then_crash)
        action = (env.billing.capture if flow == "capture" else env.billing.release)("t1")
    with pytest.raises(RuntimeError, match="crash"):
        await action
    assert seen and seen[0] != before[0]
    assert await dump(env.engine) == before
    monkeypatch.undo()
    assert (await env.billing.check()).ok


async def test_history_and_usage_match_the_transfers(env: Env) -> None:
    b, clock = env.billing, env.clock
    start = clock.now
    await b.purchase("cs_1", "evt_1", "alice", 500)
    await b.purchase("cs_2", "evt_2", "bob", 500)
    await b.grant("alice", 25, "welcome", reference="signup:alice")
    for day, (payer, payee, price, outcome) in enumerate(
        [("alice", "bob", 40, "capture"), ("bob", "alice", 60, "capture"), ("alice", "bob", 30, "release")]
    ):
        clock.now = start + timedelta(days=day, hours=1)
        await b.hold(f"t{day}", payer, price, payee_user_id=payee)
        await (b.capture if outcome == "capture" else b.release)(f"t{day}")
    await b.hold("open", "alice", 10, payee_user_id="bob")
    transfers = (await env.ledger.snapshot()).transfers
    for user in ("alice", "bob", "carol"):
        expected = entries(user, transfers)[::-1]
        assert await b.transactions(user, limit=200) == expected
        assert await b.transactions(user, limit=2, offset=1) == expected[1:3]
        holds = [e for e in expected if e.type is TransferKind.HOLD]
        assert await b.transactions(user, limit=200, kind=TransferKind.HOLD) == holds
    alice = await b.transactions("alice", limit=200)
    assert alice[0].balance_after == (await b.balance("alice")).available
    usage = await b.usage("alice", 7)
    assert [(d.spent, d.earned) for d in usage.daily[-3:]] == [(40, 0), (0, 57), (0, 0)]
    assert (usage.total_spent, usage.total_earned) == (40, 57)


async def test_expired_holds_oldest_first(env: Env) -> None:
    await env.billing.purchase("cs_1", "evt_1", "alice", 100)
    now = env.clock.now
    for task, minutes in (("b", 2), ("a", 1), ("c", 60)):
        await env.billing.hold(
            task, "alice", 1, payee_user_id="bob", expires_at=now + timedelta(minutes=minutes)
        )
    await env.billing.hold("never", "alice", 1, payee_user_id="bob")
    env.clock.now = now + timedelta(minutes=5)
    assert [h.task_id for h in await env.billing.expired_holds()] == ["a", "b"]
    await env.billing.release("a")
    assert [h.task_id for h in await env.billing.expired_holds(limit=5)] == ["b"]


async def test_reconciliation_finds_tampering_orphans_and_contradictions(env: Env) -> None:
    b = env.billing
    await b.purchase("cs_1", "evt_1", "alice", 1000)
    for task in ("done", "ended", "lost", "running"):
        await b.hold(task, "alice", 100, payee_user_id="bob")
    await b.capture("done")
    now = micros(env.clock.now)
    async with env.engine.begin() as conn:
        await conn.execute(
            insert(tasks),
            [
                {"id": t, "context_id": "c", "owner": "alice", "state": s, "status": "{}"}
                | {"status_ts": now, "created_us": now, "updated_us": now}
                for t, s in (
                    ("done", TaskState.FAILED.value),
                    ("ended", TaskState.CANCELED.value),
                    ("running", TaskState.WORKING.value),
                )
            ],
        )
    env.clock.now += timedelta(minutes=11)
    report = await b.check()
    assert {(f.invariant, f.subject) for f in report.findings} == {
        ("I5", "done"),  # captured, but the task failed
        ("orphan", "ended"),  # the task ended, the hold is still pending
        ("orphan", "lost"),  # no task ever came
    }
    async with env.engine.begin() as conn:  # a counter changed behind the ledger's back
        await conn.execute(
            text("UPDATE ledger_accounts SET credits_posted = credits_posted + 7 WHERE id = 'wallet:bob'")
        )
    report = await b.check()
    assert {("I1", "posted"), ("I2", "wallet:bob"), ("I7", "inside"), ("I9", "bob")} <= {
        (f.invariant, f.subject) for f in report.findings
    }
    assert report.lines()[0].endswith("finding(s)")


async def test_a_subscription_hold_is_stored_as_one_and_its_early_capture_is_sound(env: Env) -> None:
    b = env.billing
    await b.purchase("cs_1", "evt_1", "alice", 1000)
    for task in ("streaming", "stopped"):
        held = await b.hold(task, "alice", 100, payee_user_id="bob", subscription=True)
        assert held is not None and held.subscription
        captured = await b.capture(task)  # with its first streamed event
        assert captured is not None and captured.subscription
    await b.hold("plain", "alice", 100, payee_user_id="bob")
    assert not (await b.capture("plain") or pytest.fail("not captured")).subscription
    now = micros(env.clock.now)
    async with env.engine.begin() as conn:
        await conn.execute(
            insert(tasks),
            [
                {"id": t, "context_id": "c", "owner": "alice", "state": s, "status": "{}"}
                | {"status_ts": now, "created_us": now, "updated_us": now}
                for t, s in (
                    ("streaming", TaskState.WORKING.value),
                    ("stopped", TaskState.CANCELED.value),
                    ("plain", TaskState.WORKING.value),
                )
            ],
        )
    report = await b.check()
    assert {(f.invariant, f.subject) for f in report.findings} == {("I5", "plain")}
    assert (await env.ledger.get_hold("stopped")) == captured


async def test_a_payer_with_a_lone_wallet_gets_its_escrow_opened(env: Env) -> None:
    async with env.engine.begin() as conn:  # an account made by hand, without its promo and escrow
        await conn.execute(
            insert(ledger_accounts).values(
                id="wallet:zed",
                kind="user_wallet",
                owner_id="zed",
                debits_pending=0,
                debits_posted=0,
                credits_pending=0,
                credits_posted=50,
            )
        )
    held = await env.billing.hold("t1", "zed", 20, payee_user_id="bob")
    assert held is not None and held.purchased == 20
    async with env.engine.connect() as conn:
        escrow = (
            await conn.execute(select(ledger_accounts).where(ledger_accounts.c.id == "escrow:zed"))
        ).one()
    assert escrow.credits_pending == 20


async def test_the_async_engine_path_without_a_sqlite_file() -> None:
    """An in-memory SQLite database has no file for the on-loop driver: the async engine runs it all."""
    engine = db.create_engine("sqlite+aiosqlite:///:memory:")
    await db.upgrade(engine)
    ledger = SqlLedger(engine)
    billing = BillingService(ledger)
    try:
        await billing.purchase("cs_1", "evt_1", "alice", 100)
        await billing.hold("t1", "alice", 60, payee_user_id="bob")
        with pytest.raises(InsufficientCredits):
            await billing.hold("t2", "alice", 41, payee_user_id="bob")
        assert (await billing.capture("t1")) is not None
        assert (await billing.balance("bob")).balance == 57
        assert (await billing.check()).ok
    finally:
        await ledger.close()
        await engine.dispose()
