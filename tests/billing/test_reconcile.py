"""The reconciliation finds each kind of broken ledger, and nothing in a sound one."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from a2a_gateway.billing import flows, ids
from a2a_gateway.billing.models import BudgetState, HoldState, Transfer, TransferKind
from a2a_gateway.billing.reconcile import reconcile
from a2a_gateway.billing.report import LedgerReport
from a2a_gateway.billing.service import BillingService
from a2a_gateway.protocol.v1 import TaskState
from tests.billing.fakes import FakeLedger
from tests.factories import Clock

GRACE = timedelta(minutes=10)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def ledger(clock: Clock) -> FakeLedger:
    """A sound ledger: a purchase, a grant, a captured, a released and a pending hold."""
    fake = FakeLedger()
    billing = BillingService(fake, clock=clock)
    await billing.purchase("cs_1", "evt_1", "alice", 1000)
    await billing.grant("alice", 30, "welcome", reference="signup:alice")
    for task in ("done", "dropped", "running"):
        await billing.hold(task, "alice", 100, payee_user_id="bob")
    await billing.capture("done")
    await billing.release("dropped")
    fake.task_states.update(
        done=TaskState.COMPLETED.value, dropped=TaskState.CANCELED.value, running=TaskState.WORKING.value
    )
    return fake


async def check(ledger: FakeLedger, clock: Clock) -> LedgerReport:
    return reconcile(await ledger.snapshot(), clock.now, GRACE)


def invariants(report: LedgerReport) -> set[str]:
    return {f.invariant for f in report.findings}


def replace_transfer(ledger: FakeLedger, kind: TransferKind, **changes: object) -> Transfer:
    index = next(i for i, t in enumerate(ledger.transfers) if t.kind is kind)
    ledger.transfers[index] = dataclasses.replace(ledger.transfers[index], **changes)  # type: ignore[arg-type]
    return ledger.transfers[index]


async def test_a_sound_ledger_has_no_finding(ledger: FakeLedger, clock: Clock) -> None:
    report = await check(ledger, clock)
    assert report.ok, report.lines()
    assert (report.holds, report.pending_holds, report.transfers) == (3, 1, 9)
    assert report.lines() == [f"ledger: {report.accounts} accounts, 9 transfers, 3 holds (1 pending): OK"]


async def test_a_tampered_counter_breaks_replay_double_entry_and_the_view(
    ledger: FakeLedger, clock: Clock
) -> None:
    ledger.accounts["wallet:bob"].credits_posted += 10
    report = await check(ledger, clock)
    assert {(f.invariant, f.subject) for f in report.findings} >= {
        ("I1", "posted"),
        ("I2", "wallet:bob"),
        ("I7", "inside"),
        ("I9", "bob"),
    }
    assert "I2 wallet:bob" in "\n".join(f.line() for f in report.findings)
    assert any(line.startswith("I2 replay") for line in report.lines())


async def test_credits_moved_behind_the_ledgers_back_are_found_even_when_they_balance(
    ledger: FakeLedger, clock: Clock
) -> None:
    ledger.accounts["wallet:alice"].debits_posted += 50  # both sides changed: double entry still holds
    ledger.accounts["platform_revenue"].credits_posted += 50
    report = await check(ledger, clock)
    assert "I1" not in invariants(report)
    assert {f.subject for f in report.of("I2")} == {"wallet:alice", "platform_revenue"}
    assert "I9" in invariants(report)


async def test_an_overdrawn_wallet_is_found(ledger: FakeLedger, clock: Clock) -> None:
    ledger.accounts["wallet:alice"].debits_pending += 10_000
    report = await check(ledger, clock)
    assert [f.subject for f in report.of("I3")] == ["wallet:alice"]


async def test_escrow_must_hold_exactly_the_pending_holds(ledger: FakeLedger, clock: Clock) -> None:
    ledger.accounts["escrow:alice"].credits_pending -= 1
    ledger.accounts["wallet:alice"].debits_pending -= 1
    report = await check(ledger, clock)
    assert ("I4", "escrow:alice") in {(f.invariant, f.subject) for f in report.findings}


async def test_a_hold_record_that_disagrees_with_its_transfers(ledger: FakeLedger, clock: Clock) -> None:
    ledger.holds["running"] = dataclasses.replace(ledger.holds["running"], state=HoldState.CAPTURED)
    ledger.holds["done"] = dataclasses.replace(ledger.holds["done"], promo=0, purchased=100)
    report = await check(ledger, clock)
    assert {f.subject for f in report.of("I4")} == {"running", "done"}


async def test_a_hold_both_captured_and_released(ledger: FakeLedger, clock: Clock) -> None:
    ledger.transfers.extend(flows.release({}, ledger.holds["done"], clock.now))  # written past the guard
    report = await check(ledger, clock)
    assert any("captured and released" in f.detail for f in report.of("I4"))


async def test_a_capture_that_pays_the_wrong_amounts(ledger: FakeLedger, clock: Clock) -> None:
    fee = next(t for t in ledger.transfers if t.kind is TransferKind.CAPTURE_FEE)
    ledger.transfers.remove(fee)
    report = await check(ledger, clock)
    assert [f.subject for f in report.of("I5")] == ["done"]


async def test_money_that_contradicts_the_task_state(ledger: FakeLedger, clock: Clock) -> None:
    ledger.task_states.update(done=TaskState.FAILED.value, dropped=TaskState.COMPLETED.value)
    ledger.task_states["running"] = TaskState.CANCELED.value
    report = await check(ledger, clock)
    assert {f.subject for f in report.of("I5")} == {"done", "dropped"}
    assert [f.subject for f in report.of("orphan")] == ["running"]


async def test_orphan_holds_expired_or_without_a_task(ledger: FakeLedger, clock: Clock) -> None:
    billing = BillingService(ledger, clock=clock)
    await billing.hold("lost", "alice", 5, payee_user_id="bob")
    await billing.hold("late", "alice", 5, payee_user_id="bob", expires_at=clock.now + timedelta(minutes=1))
    ledger.task_states["late"] = TaskState.WORKING.value
    assert (await check(ledger, clock)).ok  # a task row may follow its hold within the grace period
    clock.now += GRACE
    report = await check(ledger, clock)
    assert {f.subject: f.detail for f in report.of("orphan")} == {
        "lost": "held with no task",
        "late": f"expired at {(clock.now - GRACE + timedelta(minutes=1)).isoformat()}, still held",
    }
    assert report.pending_holds == 3 and not report.ok


async def test_a_second_purchase_for_one_session(ledger: FakeLedger, clock: Clock) -> None:
    purchase = next(t for t in ledger.transfers if t.kind is TransferKind.PURCHASE)
    reference = "purchase:cs_1:again"
    ledger.transfers.append(
        dataclasses.replace(purchase, id=ids.transfer_id(reference), reference=reference, event_id="evt_2")
    )
    ledger.accounts["wallet:alice"].credits_posted += purchase.amount
    ledger.accounts["purchases_clearing"].debits_posted += purchase.amount
    report = await check(ledger, clock)
    assert [f.subject for f in report.of("I6")] == ["session cs_1"]
    assert "I2" not in invariants(report)  # counters agree with the transfers: only I6 says it is wrong


async def test_malformed_transfers(ledger: FakeLedger, clock: Clock) -> None:
    replace_transfer(ledger, TransferKind.GRANT, reference="grant:someone-else")
    report = await check(ledger, clock)
    assert any("uuid5" in f.detail for f in report.of("I8"))


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"amount": 0}, "not positive"),
        ({"credit_account_id": "purchases_clearing"}, "same account"),
        ({"credit_account_id": "promo:alice"}, "cannot move credits"),
        ({"credit_account_id": "bank"}, "not a ledger account"),
    ],
)
async def test_transfers_of_the_wrong_shape(
    ledger: FakeLedger, clock: Clock, changes: dict[str, object], says: str
) -> None:
    replace_transfer(ledger, TransferKind.PURCHASE, **changes)
    report = await check(ledger, clock)
    assert any(says in f.detail for f in report.of("I8")), report.lines()


async def test_a_release_of_nothing(ledger: FakeLedger, clock: Clock) -> None:
    replace_transfer(ledger, TransferKind.RELEASE, pending_id=ids.transfer_id("task:nope:hold"))
    report = await check(ledger, clock)
    assert any("releases no hold leg" in f.detail for f in report.of("I8"))


async def test_hold_transfers_without_a_record(ledger: FakeLedger, clock: Clock) -> None:
    del ledger.holds["running"]
    report = await check(ledger, clock)
    assert {f.subject for f in report.of("I4")} == {"running", "escrow:alice"}  # escrow holds for no hold


async def test_an_account_that_transfers_name_but_does_not_exist(ledger: FakeLedger, clock: Clock) -> None:
    del ledger.accounts["wallet:bob"]
    report = await check(ledger, clock)
    assert any(f.subject == "wallet:bob" and "does not exist" in f.detail for f in report.of("I2"))


async def test_a_subscription_captured_when_it_started_is_sound_whatever_its_task_does(
    ledger: FakeLedger, clock: Clock
) -> None:
    billing = BillingService(ledger, clock=clock)
    for task in ("streaming", "stopped", "broke"):
        await billing.hold(task, "alice", 10, payee_user_id="bob", subscription=True)
        await billing.capture(task)  # with its first streamed event, while it is WORKING
    ledger.task_states.update(
        streaming=TaskState.WORKING.value, stopped=TaskState.CANCELED.value, broke=TaskState.FAILED.value
    )
    report = await check(ledger, clock)
    assert report.ok, report.lines()


async def test_a_subscription_settled_against_its_task_is_still_found(
    ledger: FakeLedger, clock: Clock
) -> None:
    billing = BillingService(ledger, clock=clock)
    await billing.hold("given_back", "alice", 10, payee_user_id="bob", subscription=True)
    await billing.release("given_back")  # released, yet the subscription streams on
    await billing.hold("forgotten", "alice", 10, payee_user_id="bob", subscription=True)
    await billing.hold("early", "alice", 10, payee_user_id="bob")  # no subscription: captured too early
    await billing.capture("early")
    ledger.task_states.update(
        given_back=TaskState.WORKING.value, forgotten=TaskState.CANCELED.value, early=TaskState.WORKING.value
    )
    report = await check(ledger, clock)
    assert {f.subject: f.detail for f in report.of("I5")} == {
        "given_back": "the task is still TASK_STATE_WORKING but its hold is released",
        "early": "the task is still TASK_STATE_WORKING but its hold is captured",
    }
    assert [f.subject for f in report.of("orphan")] == ["forgotten"]


async def test_a_capped_keys_counter_must_equal_what_its_holds_of_the_day_hold(
    ledger: FakeLedger, clock: Clock
) -> None:
    billing = BillingService(ledger, clock=clock)
    for task in ("kept", "given_back"):
        await billing.hold(task, "alice", 10, payee_user_id="bob", key_id="k1", daily_spend_cap=50)
    await billing.release("given_back")
    ledger.task_states.update(kept=TaskState.WORKING.value, given_back=TaskState.CANCELED.value)
    assert (await check(ledger, clock)).ok
    (counter,) = ledger.key_spend
    ledger.key_spend[counter] += 10  # the release did not give back, say
    report = await check(ledger, clock)
    assert [f.line() for f in report.findings] == [
        f"cap k1 day {counter[1]}: the counter says 20, its holds 10"
    ]


# --- run budgets --------------------------------------------------------------------------------------


@pytest.fixture
async def runs(ledger: FakeLedger, clock: Clock) -> FakeLedger:
    """The sound ledger and two workflow runs alice pays: one open, one closed, with steps of each fate."""
    billing = BillingService(ledger, clock=clock)
    await billing.grant("alice", 20, "runs", reference="runs:alice")
    await billing.open_budget("open", "alice", 50)  # 20 promo + 30 purchased
    for step, price in (("o.done", 15), ("o.failed", 10), ("o.running", 10)):
        await billing.hold(step, "alice", price, payee_user_id="bob", budget_id="open")
    await billing.capture("o.done")
    await billing.release("o.failed")  # given back to the open budget
    await billing.open_budget("closed", "alice", 40)  # purchased credits only: the promo ones are taken
    for step in ("c.done", "c.dropped", "c.late"):
        await billing.hold(step, "alice", 10, payee_user_id="bob", budget_id="closed")
    await billing.capture("c.done")
    await billing.release("c.dropped")  # given back: the close refunds it with what was never carved
    await billing.close_budget("closed")
    await billing.release("c.late")  # after the close: back to alice's wallet
    done, ended, working = TaskState.COMPLETED.value, TaskState.FAILED.value, TaskState.WORKING.value
    ledger.task_states.update(
        {"o.done": done, "o.failed": ended, "o.running": working}
        | {"c.done": done, "c.dropped": ended, "c.late": ended}
    )
    return ledger


def findings(report: LedgerReport) -> set[tuple[str, str]]:
    return {(f.invariant, f.subject) for f in report.findings}


def step_transfer(ledger: FakeLedger, reference: str, **changes: object) -> None:
    index = next(i for i, t in enumerate(ledger.transfers) if t.reference == reference)
    ledger.transfers[index] = dataclasses.replace(ledger.transfers[index], **changes)  # type: ignore[arg-type]


async def test_a_sound_ledger_with_open_and_closed_run_budgets_has_no_finding(
    runs: FakeLedger, clock: Clock
) -> None:
    report = await check(runs, clock)
    assert report.ok, report.lines()
    opened, closed = runs.budgets["open"], runs.budgets["closed"]
    assert (opened.state, opened.remaining_promo, opened.remaining_purchased) == (BudgetState.OPEN, 5, 20)
    assert (closed.state, closed.remaining, closed.refunded) == (BudgetState.CLOSED, 0, 40 - 30 + 10)
    alice = await runs.balance("alice")
    assert alice.held == 100 + 25 + 10  # the plain running hold, what the open budget keeps, its running step


async def test_a_budget_that_keeps_other_than_its_transfers_say(runs: FakeLedger, clock: Clock) -> None:
    runs.budgets["open"] = dataclasses.replace(runs.budgets["open"], remaining_purchased=19)
    report = await check(runs, clock)
    assert [f.line() for f in report.findings] == ["I4 run open: keeps 5 + 19, its transfers (5, 20)"]


async def test_a_closed_budget_that_still_holds_credits(runs: FakeLedger, clock: Clock) -> None:
    runs.budgets["open"] = dataclasses.replace(runs.budgets["open"], state=BudgetState.CLOSED)  # no release
    report = await check(runs, clock)
    assert [f.line() for f in report.findings] == ["I4 run open: closed but still holds 25"]


async def test_a_budget_opened_with_other_than_its_legs(runs: FakeLedger, clock: Clock) -> None:
    runs.budgets["open"] = dataclasses.replace(runs.budgets["open"], amount=60)
    report = await check(runs, clock)
    assert findings(report) == {("I4", "run open")}
    assert "opened with 60 as 20 + 30" in report.findings[0].detail


async def test_a_step_hold_that_names_a_budget_it_was_not_carved_from(runs: FakeLedger, clock: Clock) -> None:
    runs.holds["running"] = dataclasses.replace(runs.holds["running"], budget_id="open")  # the wallet paid it
    report = await check(runs, clock)
    assert findings(report) == {("I4", "run open"), ("I4", "running")}
    assert {f.detail for f in report.findings} == {
        "carved 35 for steps whose holds take 135",
        "holds 0 + 100, run open carved 0 + 0",
    }


async def test_a_step_hold_carved_from_a_budget_another_user_pays(runs: FakeLedger, clock: Clock) -> None:
    billing = BillingService(runs, clock=clock)
    await billing.purchase("cs_bob", "evt_bob", "bob", 100)
    await billing.hold("bobs", "bob", 10, payee_user_id="carol")
    runs.task_states["bobs"] = TaskState.WORKING.value
    runs.holds["bobs"] = dataclasses.replace(runs.holds["bobs"], budget_id="open")
    report = await check(runs, clock)
    assert ("I4", "bobs") in findings(report)
    assert any(
        f.subject == "bobs" and "carved from the budget of run open, which another user pays" in f.detail
        for f in report.findings
    )


async def test_budget_transfers_and_steps_without_their_budget(runs: FakeLedger, clock: Clock) -> None:
    del runs.budgets["closed"]
    report = await check(runs, clock)
    details = {f.detail for f in report.findings if f.subject == "run closed"}
    assert details == {
        "run budget transfers without a budget record",
        "step holds carved from a budget that does not exist",
    }


async def test_steps_that_carved_each_others_parts(runs: FakeLedger, clock: Clock) -> None:
    """Two steps' carves that swapped a credit: the budget, the accounts and the total all still agree."""
    step_transfer(runs, ids.budget_ref("closed", "carve:c.done", promo=False), amount=11)
    step_transfer(runs, ids.budget_ref("closed", "carve:c.late", promo=False), amount=9)
    report = await check(runs, clock)
    assert findings(report) == {("I4", "c.done"), ("I4", "c.late")}, report.lines()


async def test_a_captured_step_given_back_to_its_budget_then_overspent(
    runs: FakeLedger, clock: Clock
) -> None:
    """A give-back for a step that was paid for: the budget keeps it as its transfers say, so only the
    step's own record tells it is wrong, until the run spends more than its budget."""
    billing = BillingService(runs, clock=clock)
    await billing.grant("alice", 100, "more")  # so that the promo account can hold the 15 again
    captured = runs.holds["o.done"]  # 15 promo credits
    back = [
        t for t in flows.give_back({}, dataclasses.replace(captured, state=HoldState.RELEASED), clock.now)
    ]
    for t in back:
        if t.budget_id is not None:  # only the budget's new leg, written past the guard, counters and all
            runs.transfers.append(t)
            runs.accounts[t.debit_account_id].debits_pending += t.amount
            runs.accounts[t.credit_account_id].credits_pending += t.amount
    runs.budgets["open"] = dataclasses.replace(runs.budgets["open"], remaining_promo=5 + 15)
    report = await check(runs, clock)
    assert findings(report) == {("I4", "o.done")}, report.lines()
    await billing.hold("o.more", "alice", 40, payee_user_id="bob", budget_id="open")
    await billing.capture("o.more")
    runs.task_states["o.more"] = TaskState.COMPLETED.value
    report = await check(runs, clock)
    assert [f.line() for f in report.of("I5")] == [
        "I5 run open: its steps spent 55, more than its budget of 50"
    ]


async def test_a_closed_budget_that_says_it_refunded_other_than_it_did(
    runs: FakeLedger, clock: Clock
) -> None:
    runs.budgets["closed"] = dataclasses.replace(runs.budgets["closed"], refunded=30)
    report = await check(runs, clock)
    assert findings(report) == {("I4", "run closed")}, report.lines()


async def test_a_budget_that_takes_back_credits_for_no_step_of_it(runs: FakeLedger, clock: Clock) -> None:
    ghost = dataclasses.replace(runs.holds["o.running"], task_id="ghost", state=HoldState.RELEASED)
    for t in flows.give_back({}, ghost, clock.now):
        if t.budget_id is not None:  # the budget's leg alone, as if a step nobody carved gave back
            runs.transfers.append(t)
            runs.accounts[t.debit_account_id].debits_pending += t.amount
            runs.accounts[t.credit_account_id].credits_pending += t.amount
    runs.budgets["open"] = dataclasses.replace(runs.budgets["open"], remaining_purchased=20 + 10)
    report = await check(runs, clock)
    assert [f.line() for f in report.findings] == [
        "I4 run open: moves credits for no step of it: run:open:return:ghost"
    ]
