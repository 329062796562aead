"""The platform fee on a captured price, exact in integers: ``payout + fee == price`` always."""

from __future__ import annotations

MAX_BPS = 10_000  # basis points in a whole (10,000 bps = 100%)


def fee(price: int, fee_bps: int) -> int:
    """The platform's share of ``price`` at ``fee_bps`` basis points, rounded down."""
    check(price, fee_bps)
    return price * fee_bps // MAX_BPS


def payout(price: int, fee_bps: int) -> int:
    """The agent owner's share: whatever the fee leaves."""
    return price - fee(price, fee_bps)


def check(price: int, fee_bps: int) -> None:
    """Raise ValueError for a negative price or a fee rate outside 0..10,000 bps."""
    if price < 0:
        raise ValueError(f"a price is never negative (got {price})")
    if not 0 <= fee_bps <= MAX_BPS:
        raise ValueError(f"a fee rate is 0..{MAX_BPS} basis points (got {fee_bps})")
