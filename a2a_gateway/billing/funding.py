"""Which credits pay for a hold: promotional credits first, then purchased and earned ones.

Promo first because promotional credits are the platform's gift: spending them before the user's own
money keeps what the user paid for (and could ask back) intact the longest, and it is the order users
expect from gift balances. The hold records the split, so trust can weigh promo-funded tasks lower.
"""

from __future__ import annotations

from a2a_gateway.errors import InsufficientCredits


def fund(price: int, promo_available: int, wallet_available: int) -> tuple[int, int]:
    """The (promo, purchased) parts of ``price``; InsufficientCredits when both together fall short."""
    promo_available, wallet_available = max(promo_available, 0), max(wallet_available, 0)
    available = promo_available + wallet_available
    if price > available:
        raise InsufficientCredits(price=price, available=available)
    promo = min(price, promo_available)
    return promo, price - promo
