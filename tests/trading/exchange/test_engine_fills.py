"""The paper fill model, with the numbers worked out by hand: slippage, impact, limit prices, the volume
share per bar, the unfilled timeout, fees on both legs and rounding for the exchange."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agents_examples.trading.exchange.engine import (
    Exchange,
    FillConfig,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
)
from agents_examples.trading.exchange.market.bars import Bar, to_price, to_qty
from tests.trading.exchange.engine_helpers import FLAT, MINUTE, T0, bar, flat, limit, market


def _exchange(config: FillConfig | None = None, cash: str = "1000000") -> Exchange:
    exchange = Exchange(config)
    exchange.open_account("a", Decimal(cash))
    return exchange


# ---------------------------------------------------------------------------------- market orders


def test_a_market_buy_pays_slippage_plus_impact_and_the_fee() -> None:
    exchange = _exchange(cash="100000")
    exchange.on_bar("BTC", flat(T0, "50000", volume="100"))
    order = exchange.place("a", market("BTC", "buy", "1"), T0)
    v = exchange.order_view(order)
    # 50,000 x (1 + 10 bps + 0.1 x 1 BTC / 100 BTC) = 50,000 x 1.002
    assert v["status"] == "closed"
    assert v["average"] == Decimal("50100")
    assert v["cost"] == Decimal("50100")
    assert v["fee"] == {"currency": "USD", "cost": Decimal("50.1"), "rate": Decimal("0.001")}
    assert v["filled"] == Decimal(1) and v["remaining"] == 0
    assert v["trades"][0]["takerOrMaker"] == "taker"
    assert exchange.portfolio("a")["cash"] == Decimal("49849.9")


def test_a_market_sell_gets_the_price_moved_down_and_pays_its_own_fee() -> None:
    exchange = _exchange(cash="100000")
    exchange.on_bar("BTC", flat(T0, "50000", volume="100"))
    exchange.place("a", market("BTC", "buy", "1"), T0)
    sell = exchange.place("a", market("BTC", "sell", "1"), T0)
    v = exchange.order_view(sell)
    assert v["average"] == Decimal("49900")  # 50,000 x 0.998
    assert v["fee"]["cost"] == Decimal("49.9")
    p = exchange.portfolio("a")
    assert p["cash"] == Decimal("99700")  # 100,000 - 50,150.1 + 49,850.1
    assert p["feesPaid"] == Decimal("100")
    assert p["realizedPnl"] == Decimal("-300")
    assert p["positions"] == []
    assert exchange.fees_collected == 100 * 10**8


def test_impact_grows_with_the_order_against_the_bar_volume() -> None:
    exchange = _exchange()
    exchange.on_bar("BTC", flat(T0, "50000", volume="100"))
    order = exchange.place("a", market("BTC", "buy", "4"), T0)
    # impact 0.1 x 4 / 100 = 0.004, plus 0.001 slippage: 50,000 x 1.005
    assert exchange.order_view(order)["average"] == Decimal("50250")
    assert exchange.order_view(order)["cost"] == Decimal("201000")


def test_an_order_whose_impact_reaches_the_cap_is_rejected() -> None:
    exchange = _exchange(cash="100000000")
    exchange.on_bar("BTC", flat(T0, "50000", volume="100"))
    # maxPriceImpact 0.05 = 0.1 x 50 / 100: at the cap is refused, just under it fills
    refused = exchange.place("a", market("BTC", "buy", "50"), T0)
    assert (refused.status, refused.reason) == (OrderStatus.REJECTED, "PRICE_IMPACT_TOO_HIGH")
    taken = exchange.place("a", market("BTC", "buy", "49.99999999"), T0)
    assert taken.status is OrderStatus.CLOSED


def test_a_market_order_needs_a_price_and_a_bar_with_volume() -> None:
    exchange = Exchange(symbols=["BTC"])
    exchange.open_account("a")
    no_price = exchange.place("a", market("BTC", "buy", "1"), T0)
    assert no_price.reason == "NO_PRICE"
    exchange.on_bar("BTC", flat(T0, "50000", volume="0"))
    no_volume = exchange.place("a", market("BTC", "buy", "1"), T0)
    assert no_volume.reason == "NO_LIQUIDITY"


def test_taker_prices_and_costs_round_for_the_exchange() -> None:
    config = FillConfig(impact_coefficient=Decimal(0))
    exchange = _exchange(config)
    exchange.on_bar("X", Bar(T0, MINUTE, 100_000_001, 100_000_001, 100_000_001, 100_000_001, to_qty(1000)))
    buy = exchange.place("a", market("X", "buy", "3"), T0)
    sell = exchange.place("a", market("X", "sell", "3"), T0)
    # 1.00000001 x 1.001 = 1.00100001001 -> up to 1.00100002; x 0.999 = 0.99900000999 -> down to 0.999
    assert buy.trades[0].price == 100_100_002
    assert sell.trades[0].price == 99_900_000
    exchange.on_bar("Y", Bar(T0, MINUTE, 33_333_333, 33_333_333, 33_333_333, 33_333_333, to_qty(1000)))
    tiny_buy = exchange.place("a", OrderRequest("Y", Side.BUY, OrderType.MARKET, 3), T0)
    # 0.33333333 x 1.001 -> up to 0.33366667; 3e-8 x that = 1.001e-8 USD -> up to 2e-8; fee 0.002e-8 -> 1e-8
    assert (tiny_buy.trades[0].price, tiny_buy.cost, tiny_buy.fee) == (33_366_667, 2, 1)
    tiny_sell = exchange.place("a", OrderRequest("Y", Side.SELL, OrderType.MARKET, 3), T0)
    # 0.33333333 x 0.999 -> down to 0.33299999; 3e-8 x that = 0.999e-8 USD -> down to 0; no fee on 0
    assert (tiny_sell.trades[0].price, tiny_sell.cost, tiny_sell.fee) == (33_299_999, 0, 0)


# ----------------------------------------------------------------------------------- limit orders


def test_a_buy_limit_crossed_inside_a_bar_fills_at_the_limit() -> None:
    exchange = _exchange(FLAT)
    exchange.on_bar("BTC", flat(T0, "100"))
    order = exchange.place("a", limit("BTC", "buy", "1", "99"), T0 + 1)
    assert order.status is OrderStatus.OPEN
    exchange.replay_bar("BTC", bar(T0 + MINUTE, "100", "101", "98", "100.5"))
    v = exchange.order_view(order)
    assert v["status"] == "closed"
    assert v["average"] == Decimal("99")
    assert v["trades"][0]["takerOrMaker"] == "maker"
    assert v["trades"][0]["timestamp"] == T0 + MINUTE + MINUTE // 4  # the low tick of an up bar


def test_a_bar_that_opens_through_the_limit_fills_at_its_better_open() -> None:
    exchange = _exchange(FLAT)
    exchange.on_bar("BTC", flat(T0, "100"))
    buy = exchange.place("a", limit("BTC", "buy", "1", "99"), T0 + 1)
    exchange.place("a", market("BTC", "buy", "1"), T0 + 1)
    sell = exchange.place("a", limit("BTC", "sell", "1", "101"), T0 + 1)
    exchange.replay_bar("BTC", bar(T0 + MINUTE, "97", "97.5", "96", "97.2"))
    assert exchange.order_view(buy)["average"] == Decimal("97")
    assert buy.trades[0].timestamp == T0 + MINUTE
    exchange.replay_bar("BTC", bar(T0 + 2 * MINUTE, "102", "103", "101.5", "102.5"))
    assert exchange.order_view(sell)["average"] == Decimal("102")


def test_a_sell_limit_fills_only_when_the_high_reaches_it() -> None:
    exchange = _exchange(FLAT)
    exchange.on_bar("BTC", flat(T0, "100"))
    exchange.place("a", market("BTC", "buy", "1"), T0)
    sell = exchange.place("a", limit("BTC", "sell", "1", "102"), T0)
    exchange.replay_bar("BTC", bar(T0 + MINUTE, "100", "101.99999999", "99", "101"))
    assert sell.filled == 0
    exchange.replay_bar("BTC", bar(T0 + 2 * MINUTE, "101", "102", "100", "100.5"))  # a down bar: O H L C
    assert sell.status is OrderStatus.CLOSED
    assert exchange.order_view(sell)["average"] == Decimal("102")
    assert sell.trades[0].timestamp == T0 + 2 * MINUTE + MINUTE // 4  # the high tick of a down bar


def test_a_limit_is_not_matched_against_the_part_of_the_bar_before_it_was_placed() -> None:
    exchange = _exchange()
    exchange.on_bar("BTC", bar(T0, "100", "101", "97", "100"))
    exchange.on_tick("BTC", to_price("97"), T0 + 15_000)  # the low, already past
    # Marketable (97 <= 97.05), but a taker would pay 97 x 1.00101 > 97.05: it rests
    order = exchange.place("a", limit("BTC", "buy", "1", "97.05"), T0 + 20_000)
    assert order.status is OrderStatus.OPEN
    exchange.on_tick("BTC", to_price("101"), T0 + 30_000)
    exchange.on_tick("BTC", to_price("100"), T0 + 45_000)
    assert order.filled == 0  # the bar's low came before the order
    exchange.on_bar("BTC", bar(T0 + MINUTE, "97", "98", "96.5", "97.5"))
    assert exchange.order_view(order)["average"] == Decimal("97")


def test_a_resting_limit_placed_through_the_price_fills_at_the_next_tick_price() -> None:
    exchange = _exchange()
    exchange.on_bar("BTC", flat(T0, "50000", volume="100"))
    order = exchange.place("a", limit("BTC", "buy", "1", "50050"), T0 + 1)  # a taker would pay 50,100
    assert order.status is OrderStatus.OPEN
    exchange.on_tick("BTC", to_price("50010"), T0 + 15_000)
    assert exchange.order_view(order)["average"] == Decimal("50010")


def test_a_marketable_limit_within_the_taker_price_fills_at_once_as_a_taker() -> None:
    exchange = _exchange()
    exchange.on_bar("BTC", flat(T0, "50000", volume="100"))
    order = exchange.place("a", limit("BTC", "buy", "1", "50200"), T0)
    assert order.status is OrderStatus.CLOSED
    assert exchange.order_view(order)["average"] == Decimal("50100")  # the market price, not the limit
    assert order.trades[0].taker


def test_partial_fills_over_several_bars_keep_the_order_open_with_its_remaining() -> None:
    exchange = _exchange(FLAT)
    exchange.on_bar("BTC", flat(T0, "100"))
    order = exchange.place("a", limit("BTC", "buy", "25", "99"), T0 + 1)
    crossing = [bar(T0 + k * MINUTE, "100", "100.5", "98.5", "100", v="100") for k in (1, 2, 4)]
    exchange.replay_bar("BTC", crossing[0])  # 10% of 100 BTC
    v = exchange.order_view(order)
    assert (v["status"], v["filled"], v["remaining"]) == ("open", Decimal(10), Decimal(15))
    exchange.replay_bar("BTC", crossing[1])
    assert exchange.order_view(order)["remaining"] == Decimal(5)
    exchange.replay_bar("BTC", bar(T0 + 3 * MINUTE, "100", "101", "99.5", "100.5"))  # not crossed
    assert exchange.order_view(order)["remaining"] == Decimal(5)
    exchange.replay_bar("BTC", crossing[2])
    v = exchange.order_view(order)
    assert (v["status"], v["filled"], v["remaining"]) == ("closed", Decimal(25), Decimal(0))
    assert [t["amount"] for t in v["trades"]] == [Decimal(10), Decimal(10), Decimal(5)]
    assert v["cost"] == Decimal(25 * 99)


def test_the_volume_share_is_shared_by_price_then_time() -> None:
    exchange = _exchange(FLAT)
    exchange.on_bar("BTC", flat(T0, "100"))
    first = exchange.place("a", limit("BTC", "buy", "6", "99"), T0 + 1)
    second = exchange.place("a", limit("BTC", "buy", "6", "99"), T0 + 2)
    better = exchange.place("a", limit("BTC", "buy", "3", "99.5"), T0 + 3)
    exchange.replay_bar("BTC", bar(T0 + MINUTE, "100", "100", "98", "99", v="100"))  # a share of 10
    assert (better.filled, first.filled, second.filled) == (to_qty(3), to_qty(6), to_qty(1))


def test_an_unfilled_limit_is_canceled_at_its_timeout_and_releases_its_cash() -> None:
    exchange = _exchange(FLAT, cash="1000")
    exchange.on_bar("BTC", flat(T0, "100"))
    placed_at = T0 + 5_000
    order = exchange.place("a", limit("BTC", "buy", "5", "99"), placed_at)
    assert exchange.portfolio("a")["balances"]["USD"] == {
        "free": Decimal(505),
        "used": Decimal(495),
        "total": Decimal(1000),
    }
    for k in range(1, 10):
        exchange.replay_bar("BTC", flat(T0 + k * MINUTE, "100"))
    exchange.on_bar("BTC", flat(T0 + 10 * MINUTE, "100"))  # T0 + 600 s: 5 s before its timeout
    assert order.status is OrderStatus.OPEN
    exchange.on_tick("BTC", to_price("100"), T0 + 10 * MINUTE + 15_000)
    v = exchange.order_view(order)
    assert (v["status"], v["reason"]) == ("canceled", "UNFILLED_TIMEOUT")
    assert v["lastUpdateTimestamp"] == placed_at + 600_000
    assert exchange.portfolio("a")["balances"]["USD"]["free"] == Decimal(1000)


def test_a_partly_filled_limit_keeps_its_fills_when_it_times_out() -> None:
    exchange = _exchange(FLAT)
    exchange.on_bar("BTC", flat(T0, "100"))
    order = exchange.place("a", limit("BTC", "buy", "15", "99"), T0)
    exchange.replay_bar("BTC", bar(T0 + MINUTE, "100", "100", "98", "99"))
    exchange.advance(T0 + 600_000)
    v = exchange.order_view(order)
    assert (v["status"], v["filled"], v["remaining"]) == ("canceled", Decimal(10), Decimal(0))
    assert exchange.portfolio("a")["balances"]["USD"]["used"] == 0
    assert exchange.portfolio("a")["cash"] == Decimal(1_000_000 - 990)


def test_a_buy_limit_filled_below_its_limit_releases_what_it_held_beyond_the_cost() -> None:
    exchange = _exchange(cash="1000")
    exchange.on_bar("BTC", flat(T0, "100"))
    order = exchange.place("a", limit("BTC", "buy", "5", "99"), T0)
    held = exchange.portfolio("a")["balances"]["USD"]["used"]
    assert held == Decimal("495.495")  # 495 + its 0.1% fee
    exchange.replay_bar("BTC", flat(T0 + MINUTE, "90"))  # opens through it: fills at 90
    p = exchange.portfolio("a")
    assert order.status is OrderStatus.CLOSED
    assert p["balances"]["USD"] == {"free": Decimal("549.55"), "used": Decimal(0), "total": Decimal("549.55")}


def test_fees_are_charged_on_both_legs_of_a_round_trip() -> None:
    exchange = _exchange(FillConfig(fee_rate=Decimal("0.0025")), cash="10000")
    exchange.on_bar("BTC", flat(T0, "100"))
    buy = exchange.place("a", limit("BTC", "buy", "10", "99"), T0)
    exchange.replay_bar("BTC", bar(T0 + MINUTE, "100", "100", "98", "99"))
    sell = exchange.place("a", limit("BTC", "sell", "10", "101"), T0 + MINUTE)
    exchange.replay_bar("BTC", bar(T0 + 2 * MINUTE, "100", "102", "100", "101"))
    assert exchange.order_view(buy)["fee"]["cost"] == Decimal("2.475")  # 990 x 0.25%
    assert exchange.order_view(sell)["fee"]["cost"] == Decimal("2.525")  # 1010 x 0.25%
    p = exchange.portfolio("a")
    assert p["feesPaid"] == Decimal(5)
    assert p["realizedPnl"] == Decimal(15)  # 1010 - 990 - 5
    assert p["cash"] == Decimal(10_015)


def test_fill_parameters_are_configurable_by_their_reference_names() -> None:
    config = FillConfig.from_json(
        {"feeRate": 0.002, "slippageBps": 25, "impactCoefficient": "0.5", "participationRate": "0.2"}
    )
    assert config.fee_rate == Decimal("0.002") and config.unfilled_timeout_seconds == 600
    exchange = _exchange(config)
    exchange.on_bar("BTC", flat(T0, "1000", volume="100"))
    order = exchange.place("a", market("BTC", "buy", "2"), T0)
    # 1000 x (1 + 0.0025 + 0.5 x 2 / 100) = 1012.5; fee 0.2% of 2025
    assert exchange.order_view(order)["average"] == Decimal("1012.5")
    assert exchange.order_view(order)["fee"]["cost"] == Decimal("4.05")
    assert FillConfig.from_json(config.to_json()) == config
    with pytest.raises(ValueError, match="unknown"):
        FillConfig.from_json({"feeRatio": 1})
    with pytest.raises(ValueError, match="participationRate"):
        FillConfig(participation_rate=Decimal(0))
