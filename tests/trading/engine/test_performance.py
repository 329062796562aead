"""Performance figures of a trading agent, checked against values worked out by hand.

The fixed book: five round trips (A with a partial take-profit sell, then B to E), one still-open
position F that already took partial profit, and one open position G without sells. Amounts are in the
quote currency; times are simulated ms from 2024-01-01 00:00 UTC.
"""

from __future__ import annotations

import math
import statistics
from decimal import Decimal
from fractions import Fraction

import pytest

from agents_examples.trading.engine.domain.models import BalanceSnapshot, ClosedTrade, CloseReason, Position
from agents_examples.trading.engine.domain.performance import (
    Performance,
    performance,
    snapshot_points,
    window_start,
)

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR
D = Decimal


def trade(
    position_id: str,
    *,
    amount: str,
    change: str,
    pl: str,
    bought: int,
    sold: int,
    partial: bool = False,
    trade_id: str | None = None,
) -> ClosedTrade:
    return ClosedTrade(
        id=trade_id or f"{position_id}-{sold}",
        agent_id="agent-1",
        wallet_address="wallet-1",
        token_address=f"token-{position_id}",
        token_symbol=position_id,
        amount=D(amount),
        purchase_price=D(1),
        sale_price=D(1),
        change_percent=D(change),
        profit_loss=D(pl),
        fees=D("0.01"),
        purchase_ms=T0 + bought,
        sale_ms=T0 + sold,
        close_reason=CloseReason.TAKE_PROFIT if partial else CloseReason.MANUAL,
        position_id=position_id,
        partial=partial,
    )


# Round trip A: a partial TP sell (4 @ +20 %, P/L +9.5) then the final sell (6 @ -10 %, P/L -5.5).
#   P/L 9.5 - 5.5 = 4.0 (a winner); return weighted by amount (4*20 + 6*(-10)) / 10 = 2 %
#   (the plain mean would be 5 %); held 0 -> 90 min.
# B: 10 @ +30 %, P/L +14.0, held 60 -> 180 min = 120 min.
# C: 4 @ -25 %, P/L -10.0, held 120 -> 180 min = 60 min.
# D: 2 @ -5 %, P/L -3.0, held 180 -> 210 min = 30 min.
# E: 8 @ +12.5 %, P/L +6.5, held 240 -> 360 min = 120 min.
# F: still open, one partial sell 3 @ +50 %, P/L +7.25 at 300 min: realized, but no round trip.
TRADES = [
    trade("A", amount="4", change="20", pl="9.5", bought=0, sold=30 * MIN, partial=True),
    trade("A", amount="6", change="-10", pl="-5.5", bought=0, sold=90 * MIN),
    trade("B", amount="10", change="30", pl="14.0", bought=60 * MIN, sold=180 * MIN),
    trade("C", amount="4", change="-25", pl="-10.0", bought=120 * MIN, sold=180 * MIN),
    trade("D", amount="2", change="-5", pl="-3.0", bought=180 * MIN, sold=210 * MIN),
    trade("E", amount="8", change="12.5", pl="6.5", bought=240 * MIN, sold=360 * MIN),
    trade("F", amount="3", change="50", pl="7.25", bought=200 * MIN, sold=300 * MIN, partial=True),
]


def position(
    pid: str, *, price: str, amount: str, remaining: str | None, invested: str, now: str
) -> Position:
    return Position(
        id=pid,
        agent_id="agent-1",
        wallet_address="wallet-1",
        token_address=f"token-{pid}",
        token_symbol=pid,
        purchase_price=D(price),
        purchase_amount=D(amount),
        total_invested=D(invested),
        created_ms=T0,
        remaining_amount=None if remaining is None else D(remaining),
        current_price=D(now),
    )


# F: bought 6 @ 2 for 12.06 (fee 0.06), 3 left, now @ 3: value 9, cost of held 12.06*3/6 = 6.03,
#    unrealized 9 - 6.03 = 2.97.
# G: bought 1 @ 10 for 10.01, now @ 9: value 9, unrealized 9 - 10.01 = -1.01.
POSITIONS = [
    position("F", price="2", amount="6", remaining="3", invested="12.06", now="3"),
    position("G", price="10", amount="1", remaining=None, invested="10.01", now="9"),
]
CASH = D("100.5")
FEES = D("1.23")


def snap(at: int, balance: str) -> BalanceSnapshot:
    return BalanceSnapshot(
        agent_id="agent-1",
        timestamp_ms=T0 + at,
        portfolio_balance=D(balance),
        cash_balance=D(balance),
        positions_value=D(0),
        unrealized=D(0),
    )


# Four days, two snapshots a day (06:00 and 18:00); the 18:00 one closes the day.
# Running peak 110 (day 0, 18:00) falls to 88 (day 1, 06:00): (110 - 88) / 110 = 20 %, the worst;
# the later fall 120 -> 108 is only 10 %.
# Daily closes 110, 99, 108, 118.8; returns -1/10, 1/11, 1/10.
SNAPSHOTS = [
    snap(6 * HOUR, "100"),
    snap(18 * HOUR, "110"),
    snap(DAY + 6 * HOUR, "88"),
    snap(DAY + 18 * HOUR, "99"),
    snap(2 * DAY + 6 * HOUR, "120"),
    snap(2 * DAY + 18 * HOUR, "108"),
    snap(3 * DAY + 6 * HOUR, "115"),
    snap(3 * DAY + 18 * HOUR, "118.8"),
]


def sharpe_by_hand(returns: list[Fraction]) -> float:
    as_floats = [float(r) for r in returns]
    return statistics.mean(as_floats) / statistics.stdev(as_floats) * math.sqrt(365)


def sortino_by_hand(returns: list[Fraction]) -> float:
    downside = math.sqrt(sum(float(min(Fraction(0), r)) ** 2 for r in returns) / len(returns))
    return float(sum(returns) / len(returns)) / downside * math.sqrt(365)


def assert_four_places(value: Decimal | None, expected: float) -> None:
    assert value is not None
    assert value.as_tuple().exponent == -4
    assert float(value) == pytest.approx(expected, abs=0.00005)


def full() -> Performance:
    return performance(TRADES, SNAPSHOTS, POSITIONS, CASH, FEES)


def test_balance_and_profit_loss_of_the_fixed_book() -> None:
    doc = full().to_doc()
    # cash 100.5 + values 9 + 9 = 118.5
    assert doc["portfolioBalanceSol"] == D("118.5")
    # realized: 9.5 - 5.5 + 14 - 10 - 3 + 6.5 + 7.25 (F's partial) = 18.75
    assert doc["realizedProfitLossSol"] == D("18.75")
    # unrealized: 2.97 - 1.01 = 1.96
    assert doc["unrealizedProfitLossSol"] == D("1.96")
    # total: 18.75 + 1.96 = 20.71
    assert doc["totalProfitLossSol"] == D("20.71")
    assert doc["totalOpenPositions"] == 2
    assert doc["feesPaidSol"] == D("1.23")


def test_round_trip_statistics_of_the_fixed_book() -> None:
    doc = full().to_doc()
    # A..E are round trips; F (partial only) is not.
    assert doc["totalClosedTrades"] == 5
    # winners A (4.0), B (14.0), E (6.5); losers C (-10.0), D (-3.0)
    assert doc["winningTrades"] == 3
    assert doc["losingTrades"] == 2
    assert doc["winRate"] == D("60.0000")  # 3 / 5
    assert doc["grossProfitSol"] == D("24.5")  # 4 + 14 + 6.5
    assert doc["grossLossSol"] == D("-13.0")  # -10 - 3
    assert doc["profitFactor"] == D("1.8846")  # 24.5 / 13 = 1.884615...
    assert doc["expectancy"] == D("2.3")  # (4 + 14 - 10 - 3 + 6.5) / 5 = 11.5 / 5
    assert doc["averageReturn"] == D("2.9000")  # (2 + 30 - 25 - 5 + 12.5) / 5 = 14.5 / 5
    assert doc["averageHoldingMinutes"] == D("84.0000")  # (90 + 120 + 60 + 30 + 120) / 5 = 420 / 5


def test_risk_metrics_of_the_fixed_snapshots() -> None:
    doc = full().to_doc()
    assert doc["maxDrawdownPercent"] == D("20.0000")
    returns = [Fraction(-1, 10), Fraction(1, 11), Fraction(1, 10)]
    # mean 1/33 = 0.030303; sample stdev 0.112937; * sqrt(365) -> about 5.1262
    assert_four_places(doc["sharpeRatio"], sharpe_by_hand(returns))
    assert_four_places(doc["sharpeRatio"], 5.1262)
    # downside deviation sqrt((0.1^2 + 0 + 0) / 3) = 0.057735; 0.030303 / 0.057735 * sqrt(365) -> 10.0275
    assert_four_places(doc["sortinoRatio"], sortino_by_hand(returns))
    assert_four_places(doc["sortinoRatio"], 10.0275)


def test_the_doc_has_every_field_and_no_floats() -> None:
    doc = full().to_doc()
    assert list(doc) == [
        "portfolioBalanceSol",
        "totalProfitLossSol",
        "realizedProfitLossSol",
        "unrealizedProfitLossSol",
        "averageReturn",
        "winRate",
        "totalClosedTrades",
        "totalOpenPositions",
        "winningTrades",
        "losingTrades",
        "grossProfitSol",
        "grossLossSol",
        "profitFactor",
        "expectancy",
        "maxDrawdownPercent",
        "sharpeRatio",
        "sortinoRatio",
        "feesPaidSol",
        "averageHoldingMinutes",
    ]
    assert all(isinstance(value, Decimal | int) for value in doc.values())


def test_the_input_order_does_not_matter() -> None:
    shuffled = performance(list(reversed(TRADES)), list(reversed(SNAPSHOTS)), POSITIONS, CASH, FEES)
    assert shuffled == full()


def test_no_trades_no_snapshots_no_positions() -> None:
    doc = performance([], [], [], D("250"), D(0)).to_doc()
    assert doc["portfolioBalanceSol"] == D("250")
    for key in (
        "totalProfitLossSol",
        "realizedProfitLossSol",
        "unrealizedProfitLossSol",
        "averageReturn",
        "winRate",
        "grossProfitSol",
        "grossLossSol",
        "expectancy",
        "maxDrawdownPercent",
        "feesPaidSol",
        "averageHoldingMinutes",
    ):
        assert doc[key] == 0, key
    for key in ("totalClosedTrades", "totalOpenPositions", "winningTrades", "losingTrades"):
        assert doc[key] == 0, key
    assert doc["profitFactor"] is None
    assert doc["sharpeRatio"] is None
    assert doc["sortinoRatio"] is None


def test_all_winners_have_no_profit_factor() -> None:
    winners = [
        trade("B", amount="10", change="30", pl="14.0", bought=0, sold=60 * MIN),
        trade("E", amount="8", change="12.5", pl="6.5", bought=0, sold=30 * MIN),
    ]
    doc = performance(winners, [], [], D(0), D(0)).to_doc()
    assert doc["profitFactor"] is None
    assert doc["losingTrades"] == 0
    assert doc["grossLossSol"] == 0
    assert doc["winRate"] == D("100.0000")
    assert doc["grossProfitSol"] == D("20.5")


def test_all_losers_have_a_zero_profit_factor() -> None:
    losers = [trade("C", amount="4", change="-25", pl="-10.0", bought=0, sold=MIN)]
    doc = performance(losers, [], [], D(0), D(0)).to_doc()
    assert doc["profitFactor"] == 0
    assert doc["winRate"] == 0
    assert doc["expectancy"] == D("-10")


def test_a_break_even_round_trip_is_neither_winner_nor_loser() -> None:
    flat = [
        trade("X", amount="1", change="0", pl="0", bought=0, sold=MIN),
        trade("B", amount="10", change="30", pl="14.0", bought=0, sold=MIN),
    ]
    doc = performance(flat, [], [], D(0), D(0)).to_doc()
    assert (doc["totalClosedTrades"], doc["winningTrades"], doc["losingTrades"]) == (2, 1, 0)
    assert doc["winRate"] == D("50.0000")


def test_partial_sells_only_are_realized_but_no_round_trip() -> None:
    doc = performance([TRADES[-1]], [], [], D(0), D(0)).to_doc()
    assert doc["realizedProfitLossSol"] == D("7.25")
    assert doc["totalClosedTrades"] == 0
    assert doc["averageReturn"] == 0
    assert doc["averageHoldingMinutes"] == 0


def test_a_trade_without_position_id_is_its_own_round_trip() -> None:
    loose = [
        trade("", amount="1", change="10", pl="1", bought=0, sold=MIN, trade_id="t1"),
        trade("", amount="1", change="-10", pl="-1", bought=0, sold=2 * MIN, trade_id="t2"),
    ]
    doc = performance(loose, [], [], D(0), D(0)).to_doc()
    assert (doc["totalClosedTrades"], doc["winningTrades"], doc["losingTrades"]) == (2, 1, 1)


def test_a_single_snapshot_has_no_drawdown_nor_ratios() -> None:
    doc = performance([], [snap(0, "100")], [], D(0), D(0)).to_doc()
    assert doc["maxDrawdownPercent"] == 0
    assert doc["sharpeRatio"] is None
    assert doc["sortinoRatio"] is None


def test_one_daily_return_is_too_few_for_ratios() -> None:
    # two days -> one return; the intraday fall still counts for the drawdown: (100 - 90) / 100 = 10 %
    points = [snap(HOUR, "100"), snap(2 * HOUR, "90"), snap(DAY + HOUR, "105")]
    doc = performance([], points, [], D(0), D(0)).to_doc()
    assert doc["maxDrawdownPercent"] == D("10.0000")
    assert doc["sharpeRatio"] is None
    assert doc["sortinoRatio"] is None


def test_steady_returns_have_no_deviation_hence_no_ratios() -> None:
    # 100 -> 110 -> 121: returns 0.1 and 0.1, stdev 0 and no downside
    points = [snap(HOUR, "100"), snap(DAY + HOUR, "110"), snap(2 * DAY + HOUR, "121")]
    doc = performance([], points, [], D(0), D(0)).to_doc()
    assert doc["sharpeRatio"] is None
    assert doc["sortinoRatio"] is None
    assert doc["maxDrawdownPercent"] == 0


def test_a_zero_balance_day_gives_no_return() -> None:
    # closes 0, 100, 110, 99: the return from 0 is skipped, leaving 1/10 and -1/10
    points = [
        snap(HOUR, "0"),
        snap(DAY + HOUR, "100"),
        snap(2 * DAY + HOUR, "110"),
        snap(3 * DAY + HOUR, "99"),
    ]
    doc = performance([], points, [], D(0), D(0)).to_doc()
    # mean 0 -> both ratios are 0
    assert doc["sharpeRatio"] == 0
    assert doc["sortinoRatio"] == 0
    assert doc["maxDrawdownPercent"] == D("10.0000")  # (110 - 99) / 110


def test_window_counts_round_trips_closed_since_and_sales_since() -> None:
    # since 120 min: A closed at 90 min is out (both its records); B, C, D, E and F's partial are in.
    doc = performance(TRADES, [], POSITIONS, CASH, FEES, since_ms=T0 + 120 * MIN).to_doc()
    assert doc["realizedProfitLossSol"] == D("14.75")  # 14 - 10 - 3 + 6.5 + 7.25
    assert doc["totalClosedTrades"] == 4
    assert doc["winRate"] == D("50.0000")  # B, E of 4
    assert doc["expectancy"] == D("1.875")  # (14 - 10 - 3 + 6.5) / 4 = 7.5 / 4
    assert doc["averageReturn"] == D("3.1250")  # (30 - 25 - 5 + 12.5) / 4 = 12.5 / 4
    assert doc["averageHoldingMinutes"] == D("82.5000")  # (120 + 60 + 30 + 120) / 4
    # balance and open positions do not depend on the window
    assert doc["portfolioBalanceSol"] == D("118.5")
    assert doc["totalOpenPositions"] == 2
    assert doc["totalProfitLossSol"] == D("16.71")  # 14.75 + 1.96


def test_window_judges_a_round_trip_closed_in_it_by_its_total() -> None:
    # since 60 min: A's partial (+9.5 at 30 min) is out of realized, yet A closed at 90 min counts whole:
    # P/L 4.0, a winner, return 2 %.
    doc = performance(TRADES, [], [], D(0), D(0), since_ms=T0 + 60 * MIN).to_doc()
    assert doc["realizedProfitLossSol"] == D("9.25")  # 18.75 - 9.5
    assert doc["totalClosedTrades"] == 5
    assert doc["winningTrades"] == 3
    assert doc["grossProfitSol"] == D("24.5")


def test_window_drops_older_snapshots() -> None:
    # since day 1 12:00: 99, 120, 108, 115, 118.8 -> worst fall 120 -> 108 = 10 %
    # daily closes 99, 108, 118.8 -> returns 1/11, 1/10: no downside, so no Sortino
    doc = performance([], SNAPSHOTS, [], D(0), D(0), since_ms=T0 + DAY + 12 * HOUR).to_doc()
    assert doc["maxDrawdownPercent"] == D("10.0000")
    assert_four_places(doc["sharpeRatio"], sharpe_by_hand([Fraction(1, 11), Fraction(1, 10)]))
    assert doc["sortinoRatio"] is None


def hourly(hours: int) -> list[BalanceSnapshot]:
    return [snap(h * HOUR, str(100 + h)) for h in range(hours)]


def test_24h_points_are_the_hourly_snapshots_of_the_last_day() -> None:
    now = T0 + 71 * HOUR + 30 * MIN  # 3 days of hourly snapshots, hours 0..71
    points = snapshot_points(reversed(hourly(72)), "24h", now)
    assert [p.timestamp_ms for p in points] == [T0 + h * HOUR for h in range(48, 72)]


def test_24h_includes_the_snapshot_exactly_a_day_old_and_none_from_the_future() -> None:
    now = T0 + 48 * HOUR
    points = snapshot_points(hourly(72), "24h", now)
    assert points[0].timestamp_ms == T0 + 24 * HOUR
    assert points[-1].timestamp_ms == now
    assert len(points) == 25


def test_all_points_are_the_last_snapshot_of_each_day() -> None:
    now = T0 + 71 * HOUR
    points = snapshot_points(hourly(72), "all", now)
    assert [p.timestamp_ms for p in points] == [T0 + 23 * HOUR, T0 + 47 * HOUR, T0 + 71 * HOUR]
    assert [p.portfolio_balance for p in points] == [D(123), D(147), D(171)]
    # a day in progress ends at its latest snapshot up to now
    partial_day = snapshot_points(hourly(72), "all", T0 + 50 * HOUR)
    assert [p.timestamp_ms for p in partial_day] == [T0 + 23 * HOUR, T0 + 47 * HOUR, T0 + 50 * HOUR]


def test_no_snapshots_no_points() -> None:
    assert snapshot_points([], "24h", T0) == []
    assert snapshot_points([], "all", T0) == []


def test_unknown_timeframe_is_refused() -> None:
    with pytest.raises(ValueError, match="7d"):
        snapshot_points(hourly(3), "7d", T0)
    with pytest.raises(ValueError, match="7d"):
        window_start("7d", T0)


def test_window_start_of_each_timeframe() -> None:
    assert window_start("24h", T0 + DAY) == T0
    assert window_start("all", T0) is None
