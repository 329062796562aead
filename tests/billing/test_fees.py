"""Fees are exact in integers, and the spend order is promo first."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from a2a_gateway.billing import fees
from a2a_gateway.billing.funding import fund
from a2a_gateway.errors import InsufficientCredits

prices = st.integers(min_value=0, max_value=10**15)
rates = st.integers(min_value=0, max_value=fees.MAX_BPS)


@given(prices, rates)
def test_payout_and_fee_always_add_up_to_the_price(price: int, bps: int) -> None:
    fee, payout = fees.fee(price, bps), fees.payout(price, bps)
    assert payout + fee == price
    assert 0 <= fee <= price and 0 <= payout <= price
    assert fee == price * bps // 10_000  # rounded down: the owner gets any fraction


@given(prices, rates, rates)
def test_a_higher_rate_never_takes_less(price: int, a: int, b: int) -> None:
    low, high = sorted((a, b))
    assert fees.fee(price, low) <= fees.fee(price, high)


@pytest.mark.parametrize(
    ("price", "bps", "fee"),
    [(100, 500, 5), (19, 500, 0), (20, 500, 1), (999, 500, 49), (7, 10_000, 7), (7, 0, 0)],
)
def test_known_fees(price: int, bps: int, fee: int) -> None:
    assert fees.fee(price, bps) == fee


@pytest.mark.parametrize(("price", "bps"), [(-1, 500), (10, -1), (10, 10_001)])
def test_out_of_range_is_refused(price: int, bps: int) -> None:
    with pytest.raises(ValueError):
        fees.fee(price, bps)


def test_promo_credits_pay_first() -> None:
    assert fund(100, promo_available=30, wallet_available=500) == (30, 70)
    assert fund(100, promo_available=300, wallet_available=0) == (100, 0)
    assert fund(100, promo_available=0, wallet_available=100) == (0, 100)


def test_short_of_credits_says_price_and_what_is_available() -> None:
    with pytest.raises(InsufficientCredits) as refused:
        fund(100, promo_available=30, wallet_available=60)
    assert (refused.value.price, refused.value.available) == (100, 90)
    assert refused.value.metadata == {"price": "100", "available": "90"}


@given(st.integers(0, 1000), st.integers(-50, 1000), st.integers(-50, 1000))
def test_the_split_is_exact_or_refused(price: int, promo: int, wallet: int) -> None:
    try:
        from_promo, purchased = fund(price, promo, wallet)
    except InsufficientCredits as refused:
        assert price > max(promo, 0) + max(wallet, 0) == refused.available
        return
    assert from_promo + purchased == price
    assert 0 <= from_promo <= max(promo, 0) and 0 <= purchased <= max(wallet, 0)
    assert purchased == 0 or from_promo == max(promo, 0)  # purchased credits only once promo ran out
