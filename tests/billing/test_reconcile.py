"""The reconciliation finds each kind of broken ledger, and nothing in a sound one."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from a2a_gateway.billing import flows, ids
from a2a_gateway.billing.models import HoldState, Transfer, TransferKind
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
