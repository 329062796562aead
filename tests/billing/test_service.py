"""BillingService over the in-memory ledger: holds, settlement, purchases, grants, history, usage."""

from __future__ import annotations

from datetime import timedelta

import pytest

from a2a_gateway.billing.models import Balance, HoldState, Outcome, Settlement, TransferKind
from a2a_gateway.billing.service import BillingService
from a2a_gateway.errors import Conflict, InsufficientCredits, InvalidParams
from tests.billing.fakes import FakeLedger
from tests.factories import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger() -> FakeLedger:
    return FakeLedger()


@pytest.fixture
def billing(ledger: FakeLedger, clock: Clock) -> BillingService:
    return BillingService(ledger, fee_bps=500, clock=clock)


async def funded(billing: BillingService, user: str = "alice", bought: int = 1000, promo: int = 0) -> None:
    await billing.purchase(f"cs_{user}", f"evt_{user}", user, bought)
    if promo:
        await billing.grant(user, promo, "welcome", reference=f"signup:{user}")


async def test_free_tasks_hold_nothing(billing: BillingService, ledger: FakeLedger) -> None:
    await funded(billing)
    assert await billing.hold("t0", "alice", 0, payee_user_id="bob") is None
    assert await billing.hold("t1", "alice", 50, payee_user_id="alice") is None  # own agent
    assert ledger.holds == {} and len(ledger.transfers) == 1
    assert await billing.capture("t1") is None


@pytest.mark.parametrize(
    ("price", "fee_bps", "field"), [(-1, None, "price"), (5, 10_001, "feeBps"), (5, -1, "feeBps")]
)
async def test_bad_prices_and_rates_are_refused(
    billing: BillingService, price: int, fee_bps: int | None, field: str
) -> None:
    with pytest.raises(InvalidParams) as refused:
        await billing.hold("t", "alice", price, payee_user_id="bob", fee_bps=fee_bps)
    assert refused.value.violations[0]["field"] == field


def test_a_bad_default_rate_is_refused() -> None:
    with pytest.raises(ValueError):
        BillingService(FakeLedger(), fee_bps=20_000)


async def test_hold_snapshots_price_rate_payee_and_the_promo_share(
    billing: BillingService, clock: Clock
) -> None:
    await funded(billing, promo=30)
    expires = clock.now + timedelta(minutes=5)
    held = await billing.hold("t1", "alice", 100, payee_user_id="bob", expires_at=expires)
    assert held is not None
    assert (held.price, held.fee_bps, held.payee_user_id, held.promo, held.purchased) == (
        100,
        500,
        "bob",
        30,
        70,
    )
    assert (held.state, held.created_at, held.expires_at) == (HoldState.PENDING, clock.now, expires)
    other = await billing.hold("t2", "alice", 10, payee_user_id="bob", fee_bps=1000)
    assert other is not None and other.fee_bps == 1000 and other.promo == 0
    assert await billing.balance("alice") == Balance(
        user_id="alice", balance=1030, available=920, held=110, total_earned=0, total_spent=0,
        total_purchased=1000, promo=0,
    )  # fmt: skip


async def test_short_of_credits_refuses_and_writes_nothing(
    billing: BillingService, ledger: FakeLedger
) -> None:
    await funded(billing, bought=50, promo=20)
    before = (dict(ledger.accounts), list(ledger.transfers))
    with pytest.raises(InsufficientCredits) as refused:
        await billing.hold("t1", "alice", 71, payee_user_id="bob")
    assert (refused.value.price, refused.value.available) == (71, 70)
    assert (dict(ledger.accounts), list(ledger.transfers)) == before and ledger.holds == {}
    assert await billing.hold("t1", "alice", 70, payee_user_id="bob") is not None  # exactly enough


async def test_a_retried_hold_is_the_same_hold(billing: BillingService, ledger: FakeLedger) -> None:
    await funded(billing, bought=100)
    first = await billing.hold("t1", "alice", 100, payee_user_id="bob")
    again = await billing.hold("t1", "alice", 100, payee_user_id="bob")  # the wallet is empty now
    assert again == first and len(ledger.transfers) == 2
    with pytest.raises(Conflict):
        await billing.hold("t1", "alice", 99, payee_user_id="bob")


async def test_capture_pays_owner_and_platform_once(
    billing: BillingService, ledger: FakeLedger, clock: Clock
) -> None:
    await funded(billing, promo=30)
    await billing.hold("t1", "alice", 100, payee_user_id="bob")
    clock.now += timedelta(seconds=3)
    captured = await billing.capture("t1")
    assert captured is not None and captured.state is HoldState.CAPTURED and captured.settled_at == clock.now
    assert (captured.payout, captured.fee) == (95, 5)
    assert await billing.capture("t1") is None and await billing.release("t1") is None
    alice, bob = await billing.balance("alice"), await billing.balance("bob")
    assert (alice.balance, alice.available, alice.held, alice.total_spent) == (930, 930, 0, 100)
    assert (bob.balance, bob.total_earned, bob.total_spent) == (95, 95, 0)
    assert ledger.accounts["platform_revenue"].balance == 5
    assert (await billing.hold_of("t1")) == captured
    assert (await billing.check()).ok


async def test_release_gives_every_credit_back(billing: BillingService) -> None:
    await funded(billing, promo=30)
    await billing.hold("t1", "alice", 100, payee_user_id="bob")
    released = await billing.release("t1")
    assert released is not None and released.state is HoldState.RELEASED
    assert await billing.capture("t1") is None
    alice = await billing.balance("alice")
    assert (alice.available, alice.held, alice.promo, alice.total_spent) == (1030, 0, 30, 0)
    assert (await billing.balance("bob")).balance == 0
    assert (await billing.check()).ok


async def test_a_batch_settles_each_task_by_its_first_entry(billing: BillingService) -> None:
    await funded(billing)
    for task in ("a", "b", "c"):
        await billing.hold(task, "alice", 10, payee_user_id="bob")
    settled = await billing.settle(
        [
            Settlement("b", Outcome.RELEASE),
            Settlement("a", Outcome.CAPTURE),
            Settlement("a", Outcome.RELEASE),  # loses: a's first entry captures
            Settlement("unknown", Outcome.CAPTURE),
        ]
    )
    assert {(h.task_id, h.state) for h in settled} == {("a", HoldState.CAPTURED), ("b", HoldState.RELEASED)}
    assert await billing.settle([]) == []
    assert (await billing.hold_of("c")).state is HoldState.PENDING  # type: ignore[union-attr]


async def test_purchases_credit_once_per_session_and_per_event(billing: BillingService) -> None:
    assert await billing.purchase("cs_1", "evt_1", "alice", 1000)
    assert not await billing.purchase("cs_1", "evt_1", "alice", 1000)  # the same event again
    assert not await billing.purchase(
        "cs_1", "evt_2", "alice", 1000
    )  # async_payment_succeeded after completed
    with pytest.raises(Conflict):
        await billing.purchase("cs_1", "evt_3", "alice", 5000)  # the session says another package
    with pytest.raises(Conflict):
        await billing.purchase("cs_2", "evt_1", "alice", 1000)  # one event credits one session
    assert (await billing.balance("alice")).total_purchased == 1000


@pytest.mark.parametrize(("session", "event", "credits"), [("", "e", 1), ("s", "", 1), ("s", "e", 0)])
async def test_a_purchase_must_name_its_session_event_and_credits(
    billing: BillingService, session: str, event: str, credits: int
) -> None:
    with pytest.raises(InvalidParams):
        await billing.purchase(session, event, "alice", credits)


async def test_grants_are_promotional_and_once_per_reference(billing: BillingService) -> None:
    assert await billing.grant("alice", 100, "welcome", reference="signup:alice")
    assert not await billing.grant("alice", 100, "welcome", reference="signup:alice")
    with pytest.raises(Conflict):
        await billing.grant("alice", 200, "welcome", reference="signup:alice")
    assert await billing.grant("alice", 5, "goodwill")  # no reference: every call grants
    assert await billing.grant("alice", 5, "goodwill")
    balance = await billing.balance("alice")
    assert (balance.balance, balance.promo, balance.total_purchased) == (110, 110, 0)
    for amount, reason in ((0, "x"), (5, "  ")):
        with pytest.raises(InvalidParams):
            await billing.grant("alice", amount, reason)


async def test_transactions_are_signed_newest_first_with_running_balance(billing: BillingService) -> None:
    await funded(billing, bought=100, promo=20)
    await billing.hold("t1", "alice", 50, payee_user_id="bob")
    await billing.hold("t2", "alice", 30, payee_user_id="bob")
    await billing.release("t2")
    await billing.capture("t1")
    got = await billing.transactions("alice")
    assert [(e.type, e.amount, e.balance_after, e.promo) for e in got] == [
        (TransferKind.RELEASE, 30, 70, False),
        (TransferKind.HOLD, -30, 40, False),
        (TransferKind.HOLD, -30, 70, False),
        (TransferKind.HOLD, -20, 100, True),
        (TransferKind.GRANT, 20, 120, True),
        (TransferKind.PURCHASE, 100, 100, False),
    ]
    assert got[0].balance_after == (await billing.balance("alice")).available
    page = await billing.transactions("alice", limit=2, offset=1)
    assert [e.id for e in page] == [e.id for e in got[1:3]]
    holds = await billing.transactions("alice", kind=TransferKind.HOLD)
    assert [e.balance_after for e in holds] == [40, 70, 100]  # the running balance counts every entry
    bob = await billing.transactions("bob")
    assert [(e.type, e.amount) for e in bob] == [(TransferKind.CAPTURE_PAYOUT, 48)]
    for limit, offset in ((0, 0), (201, 0), (10, -1)):
        with pytest.raises(InvalidParams):
            await billing.transactions("alice", limit=limit, offset=offset)


async def test_usage_has_every_day_of_the_period(billing: BillingService, clock: Clock) -> None:
    await funded(billing)
    await funded(billing, user="bob")
    start = clock.now
    for day, (payer, payee, price) in enumerate(
        [("alice", "bob", 100), ("bob", "alice", 40), ("alice", "bob", 20)]
    ):
        clock.now = start + timedelta(days=day)
        await billing.hold(f"t{day}", payer, price, payee_user_id=payee)
        await billing.capture(f"t{day}")
    await billing.hold("open", "alice", 7, payee_user_id="bob")  # held, not spent
    usage = await billing.usage("alice", 7)
    assert usage.period_days == 7 and len(usage.daily) == 7
    assert (
        usage.daily[-1].date == clock.now.date()
        and usage.daily[0].date == (clock.now - timedelta(days=6)).date()
    )
    assert [(d.spent, d.earned) for d in usage.daily[-3:]] == [(100, 0), (0, 38), (20, 0)]
    assert (usage.total_spent, usage.total_earned) == (120, 38)
    assert sum(d.spent for d in (await billing.usage("alice", 1)).daily) == 20
    for period in (0, 367):
        with pytest.raises(InvalidParams):
            await billing.usage("alice", period)


async def test_expired_holds_are_listed_for_the_sweeper(billing: BillingService, clock: Clock) -> None:
    await funded(billing)
    soon, later = clock.now + timedelta(minutes=1), clock.now + timedelta(minutes=2)
    await billing.hold("later", "alice", 1, payee_user_id="bob", expires_at=later)
    await billing.hold("soon", "alice", 1, payee_user_id="bob", expires_at=soon)
    await billing.hold("never", "alice", 1, payee_user_id="bob")
    assert await billing.expired_holds() == []
    clock.now = later
    assert [h.task_id for h in await billing.expired_holds()] == ["soon", "later"]
    assert [h.task_id for h in await billing.expired_holds(limit=1)] == ["soon"]
    await billing.release("soon")
    assert [h.task_id for h in await billing.expired_holds()] == ["later"]


async def test_check_reports_what_the_ledger_says(
    billing: BillingService, ledger: FakeLedger, clock: Clock
) -> None:
    await funded(billing)
    await billing.hold("t1", "alice", 10, payee_user_id="bob")
    assert (await billing.check()).ok
    clock.now += timedelta(minutes=11)  # past the default ten minutes, and there is no task
    report = await billing.check()
    assert [(f.invariant, f.subject) for f in report.findings] == [("orphan", "t1")]
    assert billing.fee_bps == 500
