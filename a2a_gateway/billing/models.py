"""Accounts, transfers, holds and the balance a user sees: the nouns of the credit ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from a2a_gateway.billing import fees
from a2a_gateway.billing.caps import SpendCap, day_of


class AccountKind(StrEnum):
    """What an account holds; user accounts have an owner, the others are one per ledger."""

    USER_WALLET = "user_wallet"  # purchased and earned credits
    USER_PROMO = "user_promo"  # promotional credits, kept apart so trust can weigh what they paid for
    ESCROW = "escrow"  # one per payer: the credits held for that user's tasks in flight
    PLATFORM_REVENUE = "platform_revenue"
    PURCHASES_CLEARING = "purchases_clearing"  # where bought credits come from: negative by design
    PROMO_GRANTS = "promo_grants"  # where promotional credits come from: negative by design


USER_KINDS = (AccountKind.USER_WALLET, AccountKind.USER_PROMO, AccountKind.ESCROW)
# Accounts whose debits may never exceed their posted credits (checked by the database too).
NO_OVERDRAFT = frozenset({*USER_KINDS, AccountKind.PLATFORM_REVENUE})


class TransferKind(StrEnum):
    """Why credits moved."""

    PURCHASE = "purchase"  # purchases_clearing -> user_wallet, once per checkout session
    GRANT = "grant"  # promo_grants -> user_promo
    HOLD = "hold"  # pending: user_wallet or user_promo -> escrow, while a task runs
    CAPTURE_PAYOUT = "capture_payout"  # escrow -> the agent owner's wallet, price - fee
    CAPTURE_FEE = "capture_fee"  # escrow -> platform_revenue
    RELEASE = "release"  # voids a pending hold leg (same accounts as the leg, no posted effect)
    ADJUSTMENT = "adjustment"  # an operator's correction: a new transfer, never an edit


POSTED_KINDS = frozenset(
    {
        TransferKind.PURCHASE,
        TransferKind.GRANT,
        TransferKind.CAPTURE_PAYOUT,
        TransferKind.CAPTURE_FEE,
        TransferKind.ADJUSTMENT,
    }
)


class HoldState(StrEnum):
    """A hold resolves once: pending, then captured or released."""

    PENDING = "pending"
    CAPTURED = "captured"
    RELEASED = "released"


class Outcome(StrEnum):
    """What a task's end does to its hold."""

    CAPTURE = "capture"  # the task completed: the owner is paid, the platform takes its fee
    RELEASE = "release"  # failed, canceled, rejected or timed out: the payer gets the credits back


@dataclass(slots=True)
class Account:
    """One account with TigerBeetle-style counters; balances are derived from them."""

    id: str
    kind: AccountKind
    owner_id: str | None
    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0

    @property
    def balance(self) -> int:
        """Posted credits minus posted debits."""
        return self.credits_posted - self.debits_posted

    @property
    def available(self) -> int:
        """What may still be spent: the balance less what is held."""
        return self.balance - self.debits_pending

    @property
    def counters(self) -> tuple[int, int, int, int]:
        """debits pending, debits posted, credits pending, credits posted."""
        return self.debits_pending, self.debits_posted, self.credits_pending, self.credits_posted


@dataclass(frozen=True, slots=True)
class Transfer:
    """An immutable movement of ``amount`` credits from the debit account to the credit account.

    ``id`` is the uuid5 of ``reference`` (ids.transfer_id), so a retried movement carries the same id.
    """

    id: str
    reference: str
    kind: TransferKind
    debit_account_id: str
    credit_account_id: str
    amount: int
    created_at: datetime
    task_id: str | None = None
    pending_id: str | None = None  # a release names the hold leg it voids
    checkout_session_id: str | None = None
    event_id: str | None = None
    description: str | None = None
    budget_id: str | None = None  # a run budget's own legs and releases (its steps' holds are tasks')

    def same_movement(self, other: Transfer) -> bool:
        """Whether ``other`` moves the same credits the same way (a retry, not a different transfer)."""
        return (
            self.id == other.id
            and self.kind == other.kind
            and self.debit_account_id == other.debit_account_id
            and self.credit_account_id == other.credit_account_id
            and self.amount == other.amount
            and self.task_id == other.task_id
            and self.pending_id == other.pending_id
            and self.checkout_session_id == other.checkout_session_id
            and self.budget_id == other.budget_id
        )


@dataclass(frozen=True, slots=True)
class Hold:
    """A task's price held in its payer's escrow until the task ends.

    ``promo`` and ``purchased`` say which credits pay for it (they sum to ``price``); the payee and fee
    rate are snapshotted here, so settlement needs nothing but the task id and its outcome.
    ``subscription`` says the task is a subscription, captured when it starts streaming rather than when
    it completes (``ledger check`` accepts its capture whatever state the task is in). ``cap_key_id`` is
    the capped key whose daily counter the hold counts in (billing/caps.py), on the day it was made.
    ``budget_id`` is the run budget the hold was carved from (a workflow step's task): ``promo`` and
    ``purchased`` are then the parts of the budget it took, and a release gives them back to the budget
    while the budget is open.
    """

    task_id: str
    payer_user_id: str
    payee_user_id: str
    price: int
    fee_bps: int
    promo: int
    purchased: int
    created_at: datetime
    expires_at: datetime | None = None
    state: HoldState = HoldState.PENDING
    settled_at: datetime | None = None
    subscription: bool = False
    cap_key_id: str | None = None
    budget_id: str | None = None

    @property
    def cap_day(self) -> int:
        """The UTC day (days since the epoch) whose counter of ``cap_key_id`` the hold counts in."""
        return day_of(self.created_at)

    @property
    def fee(self) -> int:
        """The platform's share on capture."""
        return fees.fee(self.price, self.fee_bps)

    @property
    def payout(self) -> int:
        """The agent owner's share on capture."""
        return self.price - self.fee

    def same_terms(self, other: Hold) -> bool:
        """Whether ``other`` asks for the same hold (a retry of it)."""
        return (
            self.task_id == other.task_id
            and self.payer_user_id == other.payer_user_id
            and self.payee_user_id == other.payee_user_id
            and self.price == other.price
            and self.fee_bps == other.fee_bps
            and self.budget_id == other.budget_id
        )


@dataclass(frozen=True, slots=True)
class Settlement:
    """The end of one task's hold: capture it (completed) or release it (any other end)."""

    task_id: str
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class Balance:
    """What GET /billing/balance shows: the seed's fields plus ``available`` and ``held``.

    ``balance`` counts purchased, earned and promotional credits; ``held`` is what tasks in flight hold,
    ``available = balance - held``; ``promo`` is the promotional part of ``available``.
    """

    user_id: str
    balance: int
    available: int
    held: int
    total_earned: int
    total_spent: int
    total_purchased: int
    promo: int


@dataclass(frozen=True, slots=True)
class HoldRequest:
    """What a task asks to hold; the ledger decides which credits pay (funding.fund)."""

    task_id: str
    payer_user_id: str
    payee_user_id: str
    price: int
    fee_bps: int
    created_at: datetime
    expires_at: datetime | None = None
    subscription: bool = False  # the task is a subscription: captured when it starts streaming
    cap: SpendCap | None = None  # the daily spend cap of the key the call was made with
    budget_id: str | None = None  # the run budget that pays (a workflow step's task), not the wallet

    def hold(self, promo: int, purchased: int) -> Hold:
        """The pending hold this request becomes once funded."""
        return Hold(
            task_id=self.task_id,
            payer_user_id=self.payer_user_id,
            payee_user_id=self.payee_user_id,
            price=self.price,
            fee_bps=self.fee_bps,
            promo=promo,
            purchased=purchased,
            created_at=self.created_at,
            expires_at=self.expires_at,
            subscription=self.subscription,
            cap_key_id=self.cap.key_id if self.cap is not None else None,
            budget_id=self.budget_id,
        )


class BudgetState(StrEnum):
    """A run budget is open while its run goes on, then closed once, giving back what is left."""

    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Budget:
    """The credits a workflow run holds for all its steps, in one hold on its payer's escrow.

    ``promo`` and ``purchased`` are the parts it was opened with (promo first, as any hold); the
    ``remaining_*`` parts are what its steps have not taken yet. A step's task carves its price out of
    what remains into its own hold, which settles as any hold does; a step hold released while the budget
    is open gives its parts back. Closing releases what remains to the payer (``refunded``).
    ``cap_key_id`` is the capped key the run was started with: the whole amount counts in the key's
    counter of the day the budget opened, less what closing gave back.
    """

    id: str  # the run's id
    payer_user_id: str
    amount: int
    promo: int
    purchased: int
    remaining_promo: int
    remaining_purchased: int
    created_at: datetime
    state: BudgetState = BudgetState.OPEN
    closed_at: datetime | None = None
    refunded: int = 0
    cap_key_id: str | None = None

    @property
    def remaining(self) -> int:
        """What the run's steps may still take."""
        return self.remaining_promo + self.remaining_purchased

    @property
    def cap_day(self) -> int:
        """The UTC day whose counter of ``cap_key_id`` the budget counts in."""
        return day_of(self.created_at)


@dataclass(frozen=True, slots=True)
class BudgetRequest:
    """What a run asks to hold for its steps; the ledger funds it as a hold (promo first)."""

    budget_id: str
    payer_user_id: str
    amount: int
    created_at: datetime
    cap: SpendCap | None = None

    def budget(self, promo: int, purchased: int) -> Budget:
        """The open budget this request becomes once funded."""
        return Budget(
            id=self.budget_id,
            payer_user_id=self.payer_user_id,
            amount=self.amount,
            promo=promo,
            purchased=purchased,
            remaining_promo=promo,
            remaining_purchased=purchased,
            created_at=self.created_at,
            cap_key_id=self.cap.key_id if self.cap is not None else None,
        )

    def same_terms(self, other: Budget) -> bool:
        """Whether ``other`` is the budget this request asks for (a retry of it)."""
        return (self.budget_id, self.payer_user_id, self.amount) == (
            other.id,
            other.payer_user_id,
            other.amount,
        )
