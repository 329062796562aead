"""A user's balance view, derived from their accounts' counters and a few sums of transfers by kind.

Counters make it O(1): posted credits into the wallet are purchases, payouts and adjustments, so what
was earned is the rest once purchases (and adjustments) are taken out; posted debits of the wallet and
the promo account are captured holds, i.e. spending. The reconciliation checks these identities.
"""

from __future__ import annotations

from a2a_gateway.billing.models import Account, AccountKind, Balance


def balance_of(
    user_id: str,
    wallet: Account | None,
    promo: Account | None,
    *,
    purchased: int,
    adjusted_in: int = 0,
    adjusted_out: int = 0,
) -> Balance:
    """The view; ``adjusted_in`` is adjustments into the wallet, ``adjusted_out`` out of either account."""
    w = wallet or Account(id="", kind=AccountKind.USER_WALLET, owner_id=user_id)
    p = promo or Account(id="", kind=AccountKind.USER_PROMO, owner_id=user_id)
    balance = w.balance + p.balance
    held = w.debits_pending + p.debits_pending
    return Balance(
        user_id=user_id,
        balance=balance,
        available=balance - held,
        held=held,
        total_earned=w.credits_posted - purchased - adjusted_in,
        total_spent=w.debits_posted + p.debits_posted - adjusted_out,
        total_purchased=purchased,
        promo=p.available,
    )
