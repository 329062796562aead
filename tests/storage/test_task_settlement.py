"""A task's hold settles in the write of its terminal state (decision 0016), on SQLite and PostgreSQL.

The grouped task writer captures or releases each batch's holds in the batch's own transaction: the
terminal state and the money commit together or not at all, a settlement the ledger refuses fails only
its own task's write, two writers ending one task pay once, and the tasks failed at start-up give
their credits back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from a2a_gateway.billing import ids
from a2a_gateway.billing.models import AccountKind, HoldState, Outcome, Settlement, Transfer
from a2a_gateway.billing.service import BillingService
from a2a_gateway.errors import Unavailable
from a2a_gateway.protocol import v1
from a2a_gateway.storage import engine as db
from a2a_gateway.storage import ledger_sql
from a2a_gateway.storage.ledger_repository import SqlLedger
from a2a_gateway.storage.tables import ledger_accounts
from a2a_gateway.storage.task_repository import SqlTaskRepository
from a2a_gateway.tasks import state
from a2a_gateway.tasks.models import TaskOrigin, TaskWrite
from tests.factories import Clock

PRICE = 200  # at the default 5% fee: 190 to the agent's owner, 10 to the platform
PLATFORM = ids.account_id(AccountKind.PLATFORM_REVENUE)
ENDS = {
    v1.TaskState.COMPLETED: Outcome.CAPTURE,
    v1.TaskState.FAILED: Outcome.RELEASE,
    v1.TaskState.CANCELED: Outcome.RELEASE,
    v1.TaskState.REJECTED: Outcome.RELEASE,
}


@dataclass
class Env:
    engine: AsyncEngine
    repo: SqlTaskRepository
    ledger: SqlLedger
    billing: BillingService
    clock: Clock

    async def started(self, task_id: str, *, price: int = PRICE, origin: TaskOrigin | None = None) -> v1.Task:
        """A task admitted as the relay does it: its price held first, then its first write."""
        if price:
            assert await self.billing.hold(task_id, "alice", price, payee_user_id="bob") is not None
        task = _task(task_id)
        state.set_status(task, v1.TaskState.WORKING, self.clock.now)
        await self.repo.submit(_write(task, origin=origin))
        return task

    async def posted(self, account: str) -> int:
        """An account's posted balance (0 when it was never opened)."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(ledger_accounts).where(ledger_accounts.c.id == account))).first()
        return 0 if row is None else int(row.credits_posted - row.debits_posted)

    async def stored(self, task_id: str) -> v1.TaskState | None:
        task = await self.repo.get(task_id, "alice", None)
        return None if task is None else task.status.state

    async def hold_state(self, task_id: str) -> HoldState | None:
        found = await self.billing.hold_of(task_id)
        return None if found is None else found.state


async def make_env(url: str) -> Env:
    engine = db.create_engine(url)
    ledger = SqlLedger(engine)
    clock = Clock()
    return Env(engine, SqlTaskRepository(engine), ledger, BillingService(ledger, clock=clock), clock)


async def close_env(env: Env) -> None:
    await env.repo.close()
    await env.ledger.close()
    await env.engine.dispose()


@pytest.fixture
async def env(database_url: str) -> AsyncIterator[Env]:
    created = await make_env(database_url)
    await db.upgrade(created.engine)
    await created.billing.purchase("cs_1", "evt_1", "alice", 10_000)
    yield created
    await close_env(created)


def _task(task_id: str) -> v1.Task:
    msg = v1.Message(
        message_id=f"m-{task_id}",
        role=v1.Role.USER,
        parts=[v1.Part(text="x")],
        task_id=task_id,
        context_id="c",
    )
    return state.new_task(task_id, "c", msg, Clock().now)


def _write(task: v1.Task, settlement: Outcome | None = None, origin: TaskOrigin | None = None) -> TaskWrite:
    """A write of the whole task (history rows already stored are skipped by the writer)."""
    return TaskWrite(
        task=task.model_copy(deep=True),
        owner="alice",
        created_at=Clock().now,
        messages_from=0,
        origin=origin,
        settlement=settlement,
    )


def _ended(task: v1.Task, ended: v1.TaskState, settle: bool = True) -> TaskWrite:
    """The write that carries a task's terminal state and, as a held task's does, its settlement."""
    task = task.model_copy(deep=True)
    state.set_status(task, ended, Clock().now)
    return _write(task, ENDS[ended] if settle else None)


async def assert_clean(env: Env) -> None:
    report = await env.billing.check()
    assert report.ok, report.lines()


async def test_a_completed_write_captures_the_hold(env: Env) -> None:
    task = await env.started("t1")
    assert await env.posted(ids.wallet("alice")) == 10_000
    await env.repo.submit(_ended(task, v1.TaskState.COMPLETED))
    assert await env.stored("t1") is v1.TaskState.COMPLETED
    assert await env.hold_state("t1") is HoldState.CAPTURED
    assert await env.posted(ids.wallet("alice")) == 10_000 - PRICE
    assert await env.posted(ids.wallet("bob")) == PRICE - 10
    assert await env.posted(PLATFORM) == 10
    alice = await env.billing.balance("alice")
    assert (alice.available, alice.held, alice.total_spent) == (10_000 - PRICE, 0, PRICE)
    await assert_clean(env)


@pytest.mark.parametrize("ended", [v1.TaskState.FAILED, v1.TaskState.CANCELED, v1.TaskState.REJECTED])
async def test_any_other_end_releases_the_hold(env: Env, ended: v1.TaskState) -> None:
    task = await env.started("t1")
    assert (await env.billing.balance("alice")).available == 10_000 - PRICE
    await env.repo.submit(_ended(task, ended))
    assert await env.stored("t1") is ended
    assert await env.hold_state("t1") is HoldState.RELEASED
    alice = await env.billing.balance("alice")
    assert (alice.balance, alice.available, alice.held, alice.total_spent) == (10_000, 10_000, 0, 0)
    assert await env.posted(ids.wallet("bob")) == 0 and await env.posted(PLATFORM) == 0
    await assert_clean(env)


async def test_a_batch_of_mixed_endings_settles_each_task_in_one_commit(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    ends = list(ENDS)
    tasks = [await env.started(f"t{n:02}") for n in range(24)]
    free = await env.started("free", price=0)  # no hold: its settlement finds nothing to do
    calls: list[list[Settlement]] = []
    real = ledger_sql.settle

    def counted(conn: Connection, settlements: Sequence[Settlement], at: datetime) -> Any:
        calls.append(list(settlements))
        return real(conn, settlements, at)

    monkeypatch.setattr(ledger_sql, "settle", counted)
    running = tasks.pop()  # written in the same batch without an ending: its hold stays
    still = running.model_copy(deep=True)
    still.metadata = {"progress": 1}
    # Submitted in one loop turn, so the writer commits them as one batch.
    writes = [env.repo.submit(_ended(t, ends[n % 4])) for n, t in enumerate(tasks)]
    writes += [env.repo.submit(_ended(free, v1.TaskState.COMPLETED)), env.repo.submit(_write(still))]
    await asyncio.gather(*writes)
    assert len(calls) == 1 and len(calls[0]) == len(tasks) + 1
    for n, task in enumerate(tasks):
        assert await env.stored(task.id) is ends[n % 4]
        expected = HoldState.CAPTURED if ends[n % 4] is v1.TaskState.COMPLETED else HoldState.RELEASED
        assert await env.hold_state(task.id) is expected, task.id
    assert await env.stored("free") is v1.TaskState.COMPLETED and await env.hold_state("free") is None
    assert await env.hold_state(running.id) is HoldState.PENDING
    captured = sum(1 for n in range(len(tasks)) if ends[n % 4] is v1.TaskState.COMPLETED)
    alice = await env.billing.balance("alice")
    assert (alice.balance, alice.held) == (10_000 - captured * PRICE, PRICE)
    assert await env.posted(ids.wallet("bob")) == captured * (PRICE - 10)
    assert await env.posted(PLATFORM) == captured * 10
    await assert_clean(env)


async def test_a_late_ending_of_an_ended_task_settles_nothing_and_changes_nothing(env: Env) -> None:
    task = await env.started("t1")
    await env.repo.submit(_ended(task, v1.TaskState.COMPLETED))
    for late in (v1.TaskState.CANCELED, v1.TaskState.FAILED):  # a cancel that lost the race, a retry
        await env.repo.submit(_ended(task, late))
    assert await env.stored("t1") is v1.TaskState.COMPLETED
    assert await env.hold_state("t1") is HoldState.CAPTURED
    assert await env.posted(ids.wallet("alice")) == 10_000 - PRICE
    assert await env.posted(ids.wallet("bob")) == PRICE - 10
    assert await env.posted(PLATFORM) == 10
    await assert_clean(env)


@pytest.mark.parametrize("race", [False, True])
async def test_two_processes_ending_one_task_pay_once(env: Env, database_url: str, race: bool) -> None:
    other = await make_env(database_url)  # another gateway process: its own engine and writer
    try:
        task = await env.started("t1")
        completed, canceled = _ended(task, v1.TaskState.COMPLETED), _ended(task, v1.TaskState.CANCELED)
        if race:
            await asyncio.gather(env.repo.submit(completed), other.repo.submit(canceled))
        else:
            await env.repo.submit(completed)
            await other.repo.submit(canceled)
        # Whichever wrote first, the stored state and the money agree: one settlement, one ending.
        ended = await env.stored("t1")
        assert ended in (v1.TaskState.COMPLETED, v1.TaskState.CANCELED)
        if not race:  # the first ending stays, as its settlement did
            assert ended is v1.TaskState.COMPLETED
        paid = ended is v1.TaskState.COMPLETED
        assert await env.hold_state("t1") is (HoldState.CAPTURED if paid else HoldState.RELEASED)
        assert await env.posted(ids.wallet("alice")) == 10_000 - (PRICE if paid else 0)
        assert await env.posted(ids.wallet("bob")) == (PRICE - 10 if paid else 0)
        await assert_clean(env)
    finally:
        await close_env(other)


def _crash_on(task_id: str, where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the ledger raise inside the writer's transaction whenever ``task_id`` is settled."""
    if where == "settle":
        real_settle = ledger_sql.settle

        def settle(conn: Connection, settlements: Sequence[Settlement], at: datetime) -> Any:
            if any(s.task_id == task_id for s in settlements):
                raise RuntimeError("crash inside settle")
            return real_settle(conn, settlements, at)

        monkeypatch.setattr(ledger_sql, "settle", settle)
        return
    real_move = ledger_sql.move

    def move(conn: Connection, deltas: Any, transfers: Sequence[Transfer], may_open: Any) -> None:
        real_move(conn, deltas, transfers, may_open)
        # The holds are resolved, the counters moved and the transfers written by now: all of it must
        # roll back.
        if any(t.task_id == task_id for t in transfers):
            raise RuntimeError("crash after moving the credits")

    monkeypatch.setattr(ledger_sql, "move", move)


@pytest.mark.parametrize("where", ["settle", "move"])
async def test_a_crash_in_a_settlement_leaves_its_task_unended_and_writes_the_rest(
    env: Env, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    good = [await env.started(t) for t in ("a", "b", "c")]
    bad = await env.started("bad")
    _crash_on("bad", where, monkeypatch)
    writes = [
        env.repo.submit(_ended(good[0], v1.TaskState.COMPLETED)),
        env.repo.submit(_ended(bad, v1.TaskState.COMPLETED)),
        env.repo.submit(_ended(good[1], v1.TaskState.CANCELED)),
        env.repo.submit(_ended(good[2], v1.TaskState.COMPLETED)),
    ]
    outcomes = await asyncio.gather(*writes, return_exceptions=True)
    assert isinstance(outcomes[1], Unavailable)
    assert outcomes[0] is None and outcomes[2] is None and outcomes[3] is None
    # The failed write left nothing: neither the terminal state nor the money.
    assert await env.stored("bad") is v1.TaskState.WORKING
    assert await env.hold_state("bad") is HoldState.PENDING
    # The batch's other writes were written one by one, each with its settlement.
    assert [await env.stored(t) for t in ("a", "b", "c")] == [
        v1.TaskState.COMPLETED,
        v1.TaskState.CANCELED,
        v1.TaskState.COMPLETED,
    ]
    assert [await env.hold_state(t) for t in ("a", "b", "c")] == [
        HoldState.CAPTURED,
        HoldState.RELEASED,
        HoldState.CAPTURED,
    ]
    alice = await env.billing.balance("alice")
    assert (alice.balance, alice.held) == (10_000 - 2 * PRICE, PRICE)
    await assert_clean(env)
    monkeypatch.undo()
    await env.repo.submit(_ended(bad, v1.TaskState.COMPLETED))  # written again, it settles
    assert await env.hold_state("bad") is HoldState.CAPTURED
    await assert_clean(env)


async def test_a_lone_write_whose_settlement_crashes_fails_whole(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = await env.started("bad")
    _crash_on("bad", "insert_transfers", monkeypatch)
    with pytest.raises(Unavailable):
        await env.repo.submit(_ended(task, v1.TaskState.FAILED))
    assert await env.stored("bad") is v1.TaskState.WORKING
    assert await env.hold_state("bad") is HoldState.PENDING
    assert (await env.billing.balance("alice")).held == PRICE


async def test_fail_inflight_releases_the_holds_of_the_tasks_it_fails_only(env: Env) -> None:
    for task_id in ("lost1", "lost2", "kept"):
        await env.started(task_id)
    await env.started("lost-free", price=0)
    paused = await env.started("paused", origin=TaskOrigin("ask"))
    waiting = paused.model_copy(deep=True)
    state.set_status(waiting, v1.TaskState.INPUT_REQUIRED, env.clock.now)
    await env.repo.submit(_write(waiting))
    done = await env.started("done")
    await env.repo.submit(_ended(done, v1.TaskState.COMPLETED))
    gone = await env.started("gone")
    await env.repo.submit(_ended(gone, v1.TaskState.FAILED, settle=False))  # ended, its hold left behind
    await env.billing.hold("no-task", "alice", PRICE, payee_user_id="bob")  # held, its task never written

    status = v1.TaskStatus(state=v1.TaskState.FAILED, timestamp=env.clock.now)
    assert await env.repo.fail_inflight(status, keep=["kept"], paused_skills=["ask"]) == 3
    assert [await env.stored(t) for t in ("lost1", "lost2", "lost-free")] == [v1.TaskState.FAILED] * 3
    assert [await env.hold_state(t) for t in ("lost1", "lost2")] == [HoldState.RELEASED] * 2
    # Not failed now, so not released: kept and paused tasks go on, the rest is the sweeper's.
    assert [await env.hold_state(t) for t in ("kept", "paused", "gone", "no-task")] == [HoldState.PENDING] * 4
    assert await env.hold_state("done") is HoldState.CAPTURED
    alice = await env.billing.balance("alice")
    assert (alice.balance, alice.held) == (10_000 - PRICE, 4 * PRICE)
    report = await env.billing.check()
    assert {(f.invariant, f.subject) for f in report.findings} == {("orphan", "gone")}
