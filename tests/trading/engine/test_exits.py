"""The exit rules, driven by scripted price paths: stop loss (fixed and trailing), take profit with its
moon bag, stale trades, their precedence, and the catch-up path after a gap in the price stream.

Every position is bought at 1.00 (100 tokens), so a price of 1.30 is a 30% gain; expected numbers are
worked out by hand in the comments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal

import pytest

from agents_examples.trading.engine.domain.config import (
    MoonBag,
    TakeProfitLevel,
    TradingConfig,
    TrailingLevel,
    default_config,
)
from agents_examples.trading.engine.domain.exits import (
    ExitOrder,
    apply_sale,
    catch_up_path,
    closed_trade,
    on_price,
    trailing_stop,
)
from agents_examples.trading.engine.domain.models import CloseReason, Position

D = Decimal
MINUTE = 60_000


def position(**changes: object) -> Position:
    base = Position(
        id="pos-1",
        agent_id="agent-1",
        wallet_address="wallet-1",
        token_address="TokenAddr1",
        token_symbol="TKN",
        purchase_price=D("1.00"),
        purchase_amount=D(100),
        total_invested=D(100),
        created_ms=0,
        purchase_transaction_id="tx-buy",
        signal_id=7,
    )
    for name, value in changes.items():
        setattr(base, name, value)
    return base


def config(
    *,
    stop_mode: str = "fixed",
    stop_enabled: bool = True,
    trailing: Sequence[TrailingLevel] = (),
    levels: Sequence[tuple[int, int]] | None = None,
    moon_bag: tuple[int, int] | None = None,
    stale: tuple[int, str, str] | None = None,
) -> TradingConfig:
    """Stop loss at -32% (``stop_mode``), take profit and stale trades off unless given."""
    base = default_config()
    take_profit = replace(base.take_profit, enabled=False)
    if levels is not None:
        bag = (
            MoonBag(enabled=False, trigger_percent=D(0), retain_percent=D(0))
            if moon_bag is None
            else MoonBag(enabled=True, trigger_percent=D(moon_bag[0]), retain_percent=D(moon_bag[1]))
        )
        take_profit = replace(
            base.take_profit,
            enabled=True,
            mode="custom",
            levels=tuple(TakeProfitLevel(target_percent=D(t), sell_percent=D(s)) for t, s in levels),
            moon_bag=bag,
        )
    stale_trade = replace(base.stale_trade, enabled=False)
    if stale is not None:
        stale_trade = replace(
            base.stale_trade,
            enabled=True,
            min_hold_time_minutes=stale[0],
            min_profit_percent=D(stale[1]),
            max_profit_percent=D(stale[2]),
        )
    stop_loss = replace(
        base.stop_loss,
        enabled=stop_enabled,
        default_percentage=D(-32),
        mode=stop_mode,
        trailing_levels=tuple(trailing),
    )
    return replace(base, stop_loss=stop_loss, take_profit=take_profit, stale_trade=stale_trade)


def feed(
    pos: Position, prices: Sequence[str], cfg: TradingConfig, start_ms: int = 1_000
) -> list[ExitOrder | None]:
    """Feed ``prices`` one second apart; stop after the first exit (the caller would sell then)."""
    orders: list[ExitOrder | None] = []
    for i, price in enumerate(prices):
        order = on_price(pos, D(price), start_ms + i * 1_000, cfg)
        orders.append(order)
        if order is not None:
            break
    return orders


def record(pos: Position, order: ExitOrder, sold: Decimal, net: Decimal, now_ms: int, tx: str) -> None:
    apply_sale(pos, order, sold=sold, net_proceeds=net, now_ms=now_ms, transaction_id=tx)


# -- the tick's bookkeeping -----------------------------------------------------------------------


def test_a_tick_records_the_price_and_the_peak_only_rises() -> None:
    pos = position()
    cfg = config()
    assert on_price(pos, D("1.10"), 5_000, cfg) is None
    assert (pos.current_price, pos.updated_ms, pos.peak_price) == (D("1.10"), 5_000, D("1.10"))
    assert on_price(pos, D("1.05"), 6_000, cfg) is None
    assert (pos.current_price, pos.updated_ms, pos.peak_price) == (D("1.05"), 6_000, D("1.10"))


def test_the_peak_starts_at_the_purchase_price() -> None:
    pos = position()
    on_price(pos, D("0.90"), 1_000, config())
    assert pos.peak_price == D("1.00")


# -- stop loss --------------------------------------------------------------------------------------


def test_fixed_stop_loss_sells_everything_at_the_default_percentage() -> None:
    pos = position()
    # -32% of 1.00 is 0.68: 0.69 holds, 0.68 stops out.
    orders = feed(pos, ["0.90", "0.75", "0.69", "0.68", "0.50"], config())
    assert orders[:3] == [None, None, None]
    assert orders[3] == ExitOrder(CloseReason.STOP_LOSS, D(100), full=True, level=None, moon_bag=False)
    assert len(orders) == 4
    assert pos.current_stop_loss_percentage == D(-32)


def test_a_disabled_stop_loss_never_fires_and_shows_no_stop() -> None:
    pos = position()
    assert feed(pos, ["0.50", "0.10"], config(stop_enabled=False)) == [None, None]
    assert pos.current_stop_loss_percentage is None


def test_fixed_trailing_stop_follows_the_peak_ten_points_below() -> None:
    pos = position()
    # 1.10: gain 10 < 20, stop stays -32. 1.30: peak gain 30, stop 30 - 10 = 20, i.e. 1.20.
    orders = feed(pos, ["1.10", "1.30", "1.25", "1.21", "1.20"], config())
    assert orders[:4] == [None, None, None, None]
    assert orders[4] == ExitOrder(CloseReason.STOP_LOSS, D(100), full=True)
    assert pos.peak_price == D("1.30")
    assert pos.current_stop_loss_percentage == D(20)
    assert pos.last_stop_loss_update_ms == 2_000  # set by the 1.30 tick, untouched after


def test_the_trailing_stop_starts_at_a_twenty_percent_peak_gain() -> None:
    pos = position()
    on_price(pos, D("1.19"), 1_000, config())
    assert pos.current_stop_loss_percentage == D(-32)
    on_price(pos, D("1.20"), 2_000, config())
    assert pos.current_stop_loss_percentage == D(10)  # 20 - 10


def test_zones_trailing_stop_keeps_a_growing_share_of_the_gain() -> None:
    pos = position()
    # 1.25: gain 25 keeps 0.50 -> 12.5. 1.40: gain 40 keeps 0.60 -> 24, i.e. 1.24.
    orders = feed(pos, ["1.25", "1.40", "1.30", "1.25", "1.24"], config(stop_mode="zones"))
    assert pos.current_stop_loss_percentage == D(24)
    assert orders[:4] == [None, None, None, None]
    assert orders[4] is not None and orders[4].reason is CloseReason.STOP_LOSS


@pytest.mark.parametrize(
    ("peak_gain", "stop"),
    [
        ("19.99", "-32"),
        ("20", "10"),  # 20 x 0.50
        ("25", "12.5"),  # 25 x 0.50
        ("50", "30"),  # 50 x 0.60
        ("100", "70"),  # 100 x 0.70
        ("200", "160"),  # 200 x 0.80
        ("300", "255"),  # 300 x 0.85
    ],
)
def test_zones_table(peak_gain: str, stop: str) -> None:
    assert trailing_stop(config(stop_mode="zones").stop_loss, D(peak_gain)) == D(stop)


def test_custom_trailing_stop_uses_the_highest_level_reached() -> None:
    cfg = config(
        stop_mode="custom",
        trailing=(
            TrailingLevel(change=D(100), stop_loss=D(60)),
            TrailingLevel(change=D(30), stop_loss=D(10)),
        ),
    )
    pos = position()
    on_price(pos, D("1.25"), 1_000, cfg)  # no level at 25%: the default
    assert pos.current_stop_loss_percentage == D(-32)
    on_price(pos, D("1.50"), 2_000, cfg)  # the 30% level
    assert pos.current_stop_loss_percentage == D(10)
    on_price(pos, D("2.10"), 3_000, cfg)  # the 100% level: stop at 1.60
    assert pos.current_stop_loss_percentage == D(60)
    assert on_price(pos, D("1.70"), 4_000, cfg) is None
    order = on_price(pos, D("1.60"), 5_000, cfg)
    assert order == ExitOrder(CloseReason.STOP_LOSS, D(100), full=True)


def test_the_stop_is_never_lowered() -> None:
    # A stop of +50 already in force (set under an earlier config); fixed mode at a 30% peak wants 20.
    pos = position(current_stop_loss_percentage=D(50), last_stop_loss_update_ms=500)
    assert on_price(pos, D("1.55"), 1_000, config()) is None
    assert (pos.current_stop_loss_percentage, pos.last_stop_loss_update_ms) == (D(50), 500)
    order = on_price(pos, D("1.50"), 2_000, config())
    assert order is not None and order.reason is CloseReason.STOP_LOSS


def test_the_stop_never_goes_below_the_default() -> None:
    stop_loss = config(
        stop_mode="custom", trailing=(TrailingLevel(change=D(20), stop_loss=D(-50)),)
    ).stop_loss
    assert trailing_stop(stop_loss, D(40)) == D(-32)


# -- take profit ------------------------------------------------------------------------------------


MODERATE = [(50, 25), (150, 25), (300, 25), (400, 15)]


def test_take_profit_levels_sell_shares_of_the_original_then_the_moon_bag_rides_the_stop() -> None:
    cfg = config(levels=MODERATE, moon_bag=(300, 10))
    pos = position()

    first = on_price(pos, D("1.50"), 1_000, cfg)  # +50%: level 0 sells 25 of the original 100
    assert first == ExitOrder(CloseReason.TAKE_PROFIT, D(25), full=False, level=0)
    record(pos, first, D(25), D("37.5"), 1_000, "tx-tp1")  # 25 x 1.50; cost 25
    assert (pos.held, pos.realized_profit, pos.take_profit_levels_hit) == (D(75), D("12.5"), 1)

    assert on_price(pos, D("2.00"), 2_000, cfg) is None  # +100%: no level
    second = on_price(pos, D("2.50"), 3_000, cfg)  # +150%: level 1, still 25 of the original
    assert second == ExitOrder(CloseReason.TAKE_PROFIT, D(25), full=False, level=1)
    record(pos, second, D(25), D("62.5"), 3_000, "tx-tp2")  # 62.5 - 25 = 37.5 more
    assert (pos.held, pos.realized_profit) == (D(50), D(50))
    assert not pos.moon_bag_activated

    third = on_price(pos, D("4.00"), 4_000, cfg)  # +300%: the moon bag (10) is set aside; level 2
    assert pos.moon_bag_activated and pos.moon_bag_amount == D(10)
    assert third == ExitOrder(CloseReason.TAKE_PROFIT, D(25), full=False, level=2)
    record(pos, third, D(25), D(100), 4_000, "tx-tp3")
    assert pos.held == D(25)

    fourth = on_price(pos, D("5.00"), 5_000, cfg)  # +400%: level 3 sells 15, the moon bag stays
    assert fourth == ExitOrder(CloseReason.TAKE_PROFIT, D(15), full=False, level=3)
    record(pos, fourth, D(15), D(75), 5_000, "tx-tp4")
    assert (pos.held, pos.take_profit_levels_hit) == (D(10), 4)
    assert pos.take_profit_transaction_ids == ["tx-tp1", "tx-tp2", "tx-tp3", "tx-tp4"]
    assert pos.last_take_profit_ms == 5_000

    # All levels hit: the 10 left ride on the trailing stop (fixed: peak gain - 10).
    assert on_price(pos, D("6.00"), 6_000, cfg) is None
    assert pos.current_stop_loss_percentage == D(490)  # peak 6.00: 500 - 10
    assert on_price(pos, D("5.91"), 7_000, cfg) is None
    last = on_price(pos, D("5.90"), 8_000, cfg)
    assert last == ExitOrder(CloseReason.STOP_LOSS, D(10), full=True, level=None, moon_bag=True)


def test_several_levels_in_one_jump_make_one_order() -> None:
    cfg = config(levels=MODERATE, moon_bag=(300, 10))
    pos = position()
    order = on_price(pos, D("2.60"), 1_000, cfg)  # +160%: levels 0 and 1, 25 + 25
    assert order == ExitOrder(CloseReason.TAKE_PROFIT, D(50), full=False, level=1)
    record(pos, order, D(50), D(130), 1_000, "tx-tp")
    assert (pos.held, pos.take_profit_levels_hit) == (D(50), 2)
    assert pos.take_profit_transaction_ids == ["tx-tp"]


def test_a_jump_past_the_moon_bag_trigger_keeps_the_bag_out_of_the_sale() -> None:
    cfg = config(levels=MODERATE, moon_bag=(300, 10))
    pos = position()
    order = on_price(pos, D("4.00"), 1_000, cfg)  # +300%: levels 0-2 = 75, bag of 10 set aside
    assert order == ExitOrder(CloseReason.TAKE_PROFIT, D(75), full=False, level=2)
    assert pos.moon_bag_amount == D(10)


def test_take_profit_sells_are_capped_so_the_moon_bag_stays() -> None:
    cfg = config(levels=[(50, 60), (100, 40)], moon_bag=(50, 10))
    pos = position()
    first = on_price(pos, D("1.50"), 1_000, cfg)  # 60 of 100; 90 may be sold
    assert first == ExitOrder(CloseReason.TAKE_PROFIT, D(60), full=False, level=0)
    record(pos, first, D(60), D(90), 1_000, "tx-1")
    second = on_price(pos, D("2.00"), 2_000, cfg)  # 40 wanted, 40 held, 10 kept: 30
    assert second == ExitOrder(CloseReason.TAKE_PROFIT, D(30), full=False, level=1)


def test_the_last_level_selling_everything_without_a_moon_bag_is_full() -> None:
    cfg = config(levels=[(50, 50), (100, 50)])
    pos = position()
    first = on_price(pos, D("1.50"), 1_000, cfg)
    assert first == ExitOrder(CloseReason.TAKE_PROFIT, D(50), full=False, level=0)
    record(pos, first, D(50), D(75), 1_000, "tx-1")
    second = on_price(pos, D("2.00"), 2_000, cfg)
    assert second == ExitOrder(CloseReason.TAKE_PROFIT, D(50), full=True, level=1)


def test_disabled_take_profit_sells_nothing() -> None:
    pos = position()
    assert on_price(pos, D("5.00"), 1_000, config()) is None


# -- stale trade ------------------------------------------------------------------------------------


def test_stale_trade_waits_for_the_minimum_hold_time() -> None:
    cfg = config(stale=(60, "1", "10"))
    pos = position()
    assert on_price(pos, D("1.05"), 59 * MINUTE, cfg) is None
    order = on_price(pos, D("1.05"), 60 * MINUTE, cfg)
    assert order == ExitOrder(CloseReason.STALE_TRADE, D(100), full=True)


@pytest.mark.parametrize(
    ("price", "stale"),
    [("1.00", False), ("1.01", True), ("1.05", True), ("1.10", True), ("1.11", False), ("0.95", False)],
)
def test_stale_trade_window_is_inclusive(price: str, stale: bool) -> None:
    cfg = config(stale=(60, "1", "10"))
    order = on_price(position(), D(price), 61 * MINUTE, cfg)
    assert (order is not None and order.reason is CloseReason.STALE_TRADE) is stale


def test_a_negative_stale_window_clears_small_losers() -> None:
    cfg = config(stale=(30, "-5", "0"))
    order = on_price(position(), D("0.97"), 30 * MINUTE, cfg)
    assert order == ExitOrder(CloseReason.STALE_TRADE, D(100), full=True)


# -- precedence and gaps ----------------------------------------------------------------------------


def test_stop_loss_wins_over_take_profit_at_the_same_tick() -> None:
    # Peak at 2.00 (fixed stop 90%, i.e. 1.90) and no level hit yet: 1.50 is both +50% and below 1.90.
    cfg = config(levels=[(50, 25)], stale=(0, "-100", "1000"))
    pos = position(peak_price=D("2.00"))
    order = on_price(pos, D("1.50"), 1_000, cfg)
    assert order == ExitOrder(CloseReason.STOP_LOSS, D(100), full=True)


def test_take_profit_wins_over_stale_trade() -> None:
    cfg = config(levels=[(5, 25)], stale=(0, "0", "10"))
    order = on_price(position(), D("1.05"), 1_000, cfg)
    assert order == ExitOrder(CloseReason.TAKE_PROFIT, D(25), full=False, level=0)


def test_a_bar_touching_stop_and_target_is_a_stop_out() -> None:
    cfg = config(levels=[(10, 50)])
    pos = position()
    path = catch_up_path(low=D("0.60"), high=D("1.20"), current=D("1.00"))
    orders = feed(pos, [str(p) for p in path], cfg)
    assert orders == [ExitOrder(CloseReason.STOP_LOSS, D(100), full=True)]


@pytest.mark.parametrize(
    ("low", "high", "current", "path"),
    [
        ("1", "2", "1.5", ["1", "2", "1.5"]),
        ("1", "2", "2", ["1", "2"]),
        ("1", "1", "1.5", ["1", "1.5"]),
        ("1", "1", "1", ["1"]),
        ("1", "2", "1", ["1", "2", "1"]),
    ],
)
def test_catch_up_path_goes_adverse_side_first(low: str, high: str, current: str, path: list[str]) -> None:
    assert catch_up_path(D(low), D(high), D(current)) == [D(p) for p in path]


# -- recording sales ------------------------------------------------------------------------------


def test_a_partial_sale_realizes_profit_against_the_cost_pro_rata() -> None:
    # 100 tokens cost 100.10 with the buy's fee: 25 tokens cost 25.025.
    pos = position(total_invested=D("100.10"))
    order = ExitOrder(CloseReason.TAKE_PROFIT, D(25), full=False, level=0)
    record(pos, order, D(25), D("37.4625"), 9_000, "tx-sell")
    assert pos.remaining_amount == D(75)
    assert pos.realized_profit == D("12.4375")
    assert (pos.take_profit_levels_hit, pos.last_take_profit_ms, pos.updated_ms) == (1, 9_000, 9_000)
    assert pos.cost_of_held() == D("75.075")


def test_closed_trade_is_the_swap_record() -> None:
    pos = position(total_invested=D("100.10"), created_ms=123)
    trade = closed_trade(
        pos,
        CloseReason.TAKE_PROFIT,
        sold=D(25),
        sale_price=D("1.50"),
        net_proceeds=D("37.4625"),
        fees=D("0.0375"),
        now_ms=9_000,
        trade_id="trade-1",
        transaction_id="tx-sell",
        partial=True,
    )
    assert trade.amount == D(25)
    assert trade.profit_loss == D("12.4375")  # 37.4625 - 25.025
    assert trade.change_percent == D(50)
    assert (trade.purchase_price, trade.sale_price, trade.fees) == (D("1.00"), D("1.50"), D("0.0375"))
    assert (trade.purchase_ms, trade.sale_ms, trade.close_reason) == (123, 9_000, CloseReason.TAKE_PROFIT)
    assert (trade.id, trade.sale_transaction_id, trade.purchase_transaction_id) == (
        "trade-1",
        "tx-sell",
        "tx-buy",
    )
    assert (trade.position_id, trade.signal_id, trade.partial) == ("pos-1", 7, True)
    assert (trade.agent_id, trade.token_address, trade.token_symbol) == ("agent-1", "TokenAddr1", "TKN")


def test_a_full_stop_out_records_a_loss() -> None:
    pos = position()
    order = on_price(pos, D("0.60"), 1_000, config())
    assert order is not None
    trade = closed_trade(
        pos,
        order.reason,
        sold=order.amount,
        sale_price=D("0.60"),
        net_proceeds=D("59.94"),
        fees=D("0.06"),
        now_ms=1_000,
        trade_id="t",
        transaction_id="x",
        partial=False,
    )
    assert trade.profit_loss == D("-40.06")
    assert trade.change_percent == D(-40)
    assert trade.close_reason is CloseReason.STOP_LOSS
