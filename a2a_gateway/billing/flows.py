"""The transfers each movement of credits writes, and what they do to the accounts' counters.

One place builds them, so the SQL store and the in-memory fake cannot drift apart; the reconciliation
replays counters from transfers with its own code, which checks this module too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from a2a_gateway.billing import ids
from a2a_gateway.billing.models import Hold, Transfer, TransferKind


@dataclass(slots=True)
class Delta:
    """Changes to one account's four counters."""

    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0


Deltas = dict[str, Delta]  # by account id
# Transfers whose credit account may not exist yet: an agent owner's first payout opens their wallet.
PAYING = frozenset({TransferKind.CAPTURE_PAYOUT, TransferKind.CAPTURE_FEE})


def _delta(deltas: Deltas, account_id: str) -> Delta:
    found = deltas.get(account_id)
    if found is None:
        found = deltas[account_id] = Delta()
    return found


def post(deltas: Deltas, transfer: Transfer) -> None:
    """A posted transfer: debit and credit at once."""
    _delta(deltas, transfer.debit_account_id).debits_posted += transfer.amount
    _delta(deltas, transfer.credit_account_id).credits_posted += transfer.amount


def hold_legs(hold: Hold) -> list[Transfer]:
    """The pending transfers of a hold: its promo leg and its purchased leg (each when not zero)."""
    wallet, promo, escrow = ids.user_accounts(hold.payer_user_id)
    legs = []
    # Promo leg first: legs are listed (and their rows written) in a fixed order.
    for is_promo, account, amount in ((True, promo, hold.promo), (False, wallet, hold.purchased)):
        if amount:
            reference = ids.hold_ref(hold.task_id, is_promo)
            legs.append(
                Transfer(
                    id=ids.transfer_id(reference),
                    reference=reference,
                    kind=TransferKind.HOLD,
                    debit_account_id=account,
                    credit_account_id=escrow,
                    amount=amount,
                    created_at=hold.created_at,
                    task_id=hold.task_id,
                )
            )
    return legs


def pend(deltas: Deltas, hold: Hold) -> list[Transfer]:
    """Hold: each leg reserves its amount (debits pending on the payer, credits pending on escrow)."""
    legs = hold_legs(hold)
    for leg in legs:
        _delta(deltas, leg.debit_account_id).debits_pending += leg.amount
        _delta(deltas, leg.credit_account_id).credits_pending += leg.amount
    return legs


def capture(deltas: Deltas, hold: Hold, at: datetime) -> list[Transfer]:
    """Post every leg into escrow, then pay the owner ``price - fee`` and the platform ``fee`` from it."""
    for leg in hold_legs(hold):
        payer, escrow = _delta(deltas, leg.debit_account_id), _delta(deltas, leg.credit_account_id)
        payer.debits_pending -= leg.amount
        payer.debits_posted += leg.amount
        escrow.credits_pending -= leg.amount
        escrow.credits_posted += leg.amount
    escrow_id = ids.escrow(hold.payer_user_id)
    out = []
    for kind, reference, credit, amount in (
        (
            TransferKind.CAPTURE_PAYOUT,
            ids.payout_ref(hold.task_id),
            ids.wallet(hold.payee_user_id),
            hold.payout,
        ),
        (TransferKind.CAPTURE_FEE, ids.fee_ref(hold.task_id), ids.PLATFORM_REVENUE, hold.fee),
    ):
        if amount:
            transfer = Transfer(
                id=ids.transfer_id(reference),
                reference=reference,
                kind=kind,
                debit_account_id=escrow_id,
                credit_account_id=credit,
                amount=amount,
                created_at=at,
                task_id=hold.task_id,
            )
            post(deltas, transfer)
            out.append(transfer)
    return out


def release(deltas: Deltas, hold: Hold, at: datetime) -> list[Transfer]:
    """Void every leg: the reserved credits are the payer's to spend again."""
    out = []
    for leg in hold_legs(hold):
        reference = ids.release_ref(hold.task_id, leg.reference.endswith(":promo"))
        _delta(deltas, leg.debit_account_id).debits_pending -= leg.amount
        _delta(deltas, leg.credit_account_id).credits_pending -= leg.amount
        out.append(
            Transfer(
                id=ids.transfer_id(reference),
                reference=reference,
                kind=TransferKind.RELEASE,
                debit_account_id=leg.debit_account_id,
                credit_account_id=leg.credit_account_id,
                amount=leg.amount,
                created_at=at,
                task_id=hold.task_id,
                pending_id=leg.id,
            )
        )
    return out


def purchase(checkout_session_id: str, event_id: str, user_id: str, credits: int, at: datetime) -> Transfer:
    """Bought credits: purchases_clearing -> the buyer's wallet, one transfer per checkout session."""
    reference = ids.purchase_ref(checkout_session_id)
    return Transfer(
        id=ids.transfer_id(reference),
        reference=reference,
        kind=TransferKind.PURCHASE,
        debit_account_id=ids.PURCHASES_CLEARING,
        credit_account_id=ids.wallet(user_id),
        amount=credits,
        created_at=at,
        checkout_session_id=checkout_session_id,
        event_id=event_id,
    )


def grant(user_id: str, amount: int, reference: str, reason: str, at: datetime) -> Transfer:
    """Promotional credits: promo_grants -> the user's promo account."""
    full = ids.grant_ref(reference)
    return Transfer(
        id=ids.transfer_id(full),
        reference=full,
        kind=TransferKind.GRANT,
        debit_account_id=ids.PROMO_GRANTS,
        credit_account_id=ids.promo(user_id),
        amount=amount,
        created_at=at,
        description=reason,
    )
