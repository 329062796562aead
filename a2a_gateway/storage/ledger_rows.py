"""Ledger rows to domain values and back (instants as integer microseconds)."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy.engine import Row

from a2a_gateway.billing import ids
from a2a_gateway.billing.models import (
    Account,
    AccountKind,
    Budget,
    BudgetState,
    Hold,
    HoldState,
    Transfer,
    TransferKind,
)
from a2a_gateway.storage.timestamps import from_micros, micros


def _at(value: int) -> datetime:
    stamp = from_micros(value)
    assert stamp is not None
    return stamp


def account_row(account_id: str) -> dict[str, Any]:
    """A new account, every counter zero."""
    return {
        "id": account_id,
        "kind": ids.kind_of(account_id).value,
        "owner_id": ids.owner_of(account_id),
        "debits_pending": 0,
        "debits_posted": 0,
        "credits_pending": 0,
        "credits_posted": 0,
    }


def account_from_row(r: Row[Any]) -> Account:
    """An account with its counters."""
    return Account(
        id=r.id,
        kind=AccountKind(r.kind),
        owner_id=r.owner_id,
        debits_pending=int(r.debits_pending),
        debits_posted=int(r.debits_posted),
        credits_pending=int(r.credits_pending),
        credits_posted=int(r.credits_posted),
    )


def transfer_row(t: Transfer) -> dict[str, Any]:
    """The columns of a transfer (its ``seq`` is the database's)."""
    return {
        "id": t.id,
        "reference": t.reference,
        "kind": t.kind.value,
        "debit_account_id": t.debit_account_id,
        "credit_account_id": t.credit_account_id,
        "amount": t.amount,
        "task_id": t.task_id,
        "pending_id": t.pending_id,
        "checkout_session_id": t.checkout_session_id,
        "event_id": t.event_id,
        "description": t.description,
        "created_us": micros(t.created_at),
        "budget_id": t.budget_id,
    }


def transfer_from_row(r: Row[Any]) -> Transfer:
    """A stored transfer."""
    return Transfer(
        id=r.id,
        reference=r.reference,
        kind=TransferKind(r.kind),
        debit_account_id=r.debit_account_id,
        credit_account_id=r.credit_account_id,
        amount=int(r.amount),
        created_at=_at(r.created_us),
        task_id=r.task_id,
        pending_id=r.pending_id,
        checkout_session_id=r.checkout_session_id,
        event_id=r.event_id,
        description=r.description,
        budget_id=r.budget_id,
    )


def hold_row(h: Hold) -> dict[str, Any]:
    """The columns of a hold."""
    return {
        "task_id": h.task_id,
        "payer_user_id": h.payer_user_id,
        "payee_user_id": h.payee_user_id,
        "price": h.price,
        "fee_bps": h.fee_bps,
        "promo": h.promo,
        "purchased": h.purchased,
        "state": h.state.value,
        "created_us": micros(h.created_at),
        "expires_us": micros(h.expires_at) if h.expires_at is not None else None,
        "settled_us": micros(h.settled_at) if h.settled_at is not None else None,
        "subscription": h.subscription,
        "cap_key_id": h.cap_key_id,
        "budget_id": h.budget_id,
    }


def hold_from_row(r: Row[Any] | SimpleNamespace) -> Hold:
    """A stored hold (from a SQLAlchemy row, or a driver's record with its columns as attributes)."""
    return Hold(
        task_id=r.task_id,
        payer_user_id=r.payer_user_id,
        payee_user_id=r.payee_user_id,
        price=int(r.price),
        fee_bps=int(r.fee_bps),
        promo=int(r.promo),
        purchased=int(r.purchased),
        created_at=_at(r.created_us),
        expires_at=from_micros(r.expires_us),
        state=HoldState(r.state),
        settled_at=from_micros(r.settled_us),
        subscription=bool(r.subscription),
        cap_key_id=r.cap_key_id,
        budget_id=r.budget_id,
    )


def budget_row(b: Budget) -> dict[str, Any]:
    """The columns of a run budget."""
    return {
        "run_id": b.id,
        "payer_user_id": b.payer_user_id,
        "amount": b.amount,
        "promo": b.promo,
        "purchased": b.purchased,
        "remaining_promo": b.remaining_promo,
        "remaining_purchased": b.remaining_purchased,
        "refunded": b.refunded,
        "state": b.state.value,
        "created_us": micros(b.created_at),
        "closed_us": micros(b.closed_at) if b.closed_at is not None else None,
        "cap_key_id": b.cap_key_id,
    }


def budget_from_row(r: Row[Any]) -> Budget:
    """A stored run budget."""
    return Budget(
        id=r.run_id,
        payer_user_id=r.payer_user_id,
        amount=int(r.amount),
        promo=int(r.promo),
        purchased=int(r.purchased),
        remaining_promo=int(r.remaining_promo),
        remaining_purchased=int(r.remaining_purchased),
        created_at=_at(r.created_us),
        state=BudgetState(r.state),
        closed_at=from_micros(r.closed_us),
        refunded=int(r.refunded),
        cap_key_id=r.cap_key_id,
    )
