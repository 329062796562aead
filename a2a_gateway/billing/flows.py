"""The transfers each movement of credits writes, and what they do to the accounts' counters.

One place builds them, so the SQL store and the in-memory fake cannot drift apart; the reconciliation
replays counters from transfers with its own code, which checks this module too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from a2a_gateway.billing import ids
from a2a_gateway.billing.models import Budget, Hold, Transfer, TransferKind


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


# --- run budgets: one hold for a whole workflow run, that its steps' holds are carved out of ----------


def _budget_transfers(
    budget_id: str, payer: str, what: str, kind: TransferKind, *, parts: tuple[int, int], at: datetime
) -> list[Transfer]:
    """A budget's movement on its payer's promo and wallet parts (each when not zero), promo first."""
    wallet, promo, escrow = ids.user_accounts(payer)
    out = []
    for is_promo, account, amount in ((True, promo, parts[0]), (False, wallet, parts[1])):
        if amount:
            reference = ids.budget_ref(budget_id, what, is_promo)
            out.append(
                Transfer(
                    id=ids.transfer_id(reference),
                    reference=reference,
                    kind=kind,
                    debit_account_id=account,
                    credit_account_id=escrow,
                    amount=amount,
                    created_at=at,
                    budget_id=budget_id,
                )
            )
    return out


def _pending(deltas: Deltas, transfers: list[Transfer], sign: int) -> list[Transfer]:
    for t in transfers:
        _delta(deltas, t.debit_account_id).debits_pending += sign * t.amount
        _delta(deltas, t.credit_account_id).credits_pending += sign * t.amount
    return transfers


def open_budget(deltas: Deltas, budget: Budget) -> list[Transfer]:
    """Open a run budget: pending legs from the payer's promo and wallet into escrow, like a hold's."""
    parts = (budget.promo, budget.purchased)
    legs = _budget_transfers(
        budget.id, budget.payer_user_id, "hold", TransferKind.HOLD, parts=parts, at=budget.created_at
    )
    return _pending(deltas, legs, +1)


def carve(hold: Hold) -> list[Transfer]:
    """A step's hold taken out of its run's budget: the budget releases the step's parts and the step's
    own legs hold them again, so no counter moves (the credits stay pending in the same escrow)."""
    assert hold.budget_id is not None
    released = _budget_transfers(
        hold.budget_id,
        hold.payer_user_id,
        f"carve:{hold.task_id}",
        TransferKind.RELEASE,
        parts=(hold.promo, hold.purchased),
        at=hold.created_at,
    )
    return released + hold_legs(hold)


def give_back(deltas: Deltas, hold: Hold, at: datetime) -> list[Transfer]:
    """A step's hold released while its budget is open: its legs are voided and the budget holds the
    same parts again (no counter moves in all)."""
    assert hold.budget_id is not None
    returned = _budget_transfers(
        hold.budget_id,
        hold.payer_user_id,
        f"return:{hold.task_id}",
        TransferKind.HOLD,
        parts=(hold.promo, hold.purchased),
        at=at,
    )
    return release(deltas, hold, at) + _pending(deltas, returned, +1)


def close_budget(deltas: Deltas, budget: Budget, at: datetime) -> list[Transfer]:
    """Close a run budget: what its steps did not take goes back to the payer (``budget`` is the open
    budget, with what remains)."""
    parts = (budget.remaining_promo, budget.remaining_purchased)
    released = _budget_transfers(
        budget.id, budget.payer_user_id, "close", TransferKind.RELEASE, parts=parts, at=at
    )
    return _pending(deltas, released, -1)


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
