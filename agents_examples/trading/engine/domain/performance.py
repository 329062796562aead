"""A trading agent's performance: Nexgent's eight figures plus the risk metrics traders expect.

:func:`performance` reads the agent's closed trades, balance snapshots, open positions, cash and the fees
it paid, and returns a :class:`Performance`. Its :meth:`~Performance.to_doc` has Nexgent's fields
(``portfolioBalanceSol``, ``totalProfitLossSol``, ``realizedProfitLossSol``, ``unrealizedProfitLossSol``,
``averageReturn``, ``winRate``, ``totalClosedTrades``, ``totalOpenPositions``) and ours (``winningTrades``,
``losingTrades``, ``grossProfitSol``, ``grossLossSol``, ``profitFactor``, ``expectancy``,
``maxDrawdownPercent``, ``sharpeRatio``, ``sortinoRatio``, ``feesPaidSol``, ``averageHoldingMinutes``).
``Sol`` means the quote currency, as in :mod:`.models`.

**Round trips.** A position sold in parts (take-profit levels) leaves several :class:`ClosedTrade` records
with the same ``position_id``; the trade statistics (win rate, average return, profit factor,
expectancy, holding time) count a *round trip*, the group of one position's records once its final
(non-partial) sell happened. A round trip's P/L is the sum of its records' ``profit_loss``, its return
the amount-weighted mean of their ``change_percent``, its holding time from the purchase to its last
sale. A position that so far only had partial sells is still open: it is no round trip, but its partial
P/L is realized and counts in ``realizedProfitLossSol``. A record without a ``position_id`` is a round
trip of its own.

**The window** (``since_ms``, ``timeframe=24h``). Realized P/L sums the records sold at or after
``since_ms``; a round trip counts when it *closed* at or after ``since_ms``, whole (its earlier partial
sells included, so that a position that took profit and then stopped out is judged by its total).
Snapshots before ``since_ms`` are left out. Balance, unrealized P/L and open positions are the current
ones whatever the window; ``fees_paid`` is taken as given (the caller knows its window).

**Risk metrics.** Max drawdown is the largest fall from a running peak of the snapshots'
``portfolio_balance``, in percent of that peak. Sharpe and Sortino use *daily* returns, as Jesse does
for crypto: the last snapshot of each UTC day (simulated time), the return between consecutive days,
annualized with √365. Sharpe divides the mean return by the sample standard deviation; Sortino by the
downside deviation, √(mean of min(0, r)² over all returns). Either is None with fewer than two returns
or a zero deviation. A day whose previous balance is zero or less gives no return.

**Numbers.** Money stays :class:`~decimal.Decimal` (sums exact, the expectancy rounded to 8 places);
percents, ratios and minutes are Decimals rounded half-up to 4 places (Sharpe and Sortino go through
floats for the square roots). Nothing is a float in the doc, so it encodes as exact JSON numbers. Empty
input gives zeros and Nones.

:func:`snapshot_points` picks ``balance-history``'s points: the hourly snapshots of the last 24 simulated
hours for ``24h``, the last snapshot of each UTC day for ``all``. :func:`window_start` turns a timeframe
into the ``since_ms`` both use.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

from agents_examples.trading.engine.domain.models import HUNDRED, ZERO, BalanceSnapshot, ClosedTrade, Position

HOUR_MS: Final = 3_600_000
DAY_MS: Final = 24 * HOUR_MS
MINUTE_MS: Final = 60_000
TIMEFRAMES: Final = ("24h", "all")
ANNUALIZATION_DAYS: Final = 365

_FOUR_PLACES: Final = Decimal("0.0001")
_EIGHT_PLACES: Final = Decimal("0.00000001")


@dataclass(frozen=True, slots=True)
class Performance:
    """The figures of ``GET /agents/:id/performance`` (see the module doc for each definition)."""

    portfolio_balance: Decimal
    total_profit_loss: Decimal
    realized_profit_loss: Decimal
    unrealized_profit_loss: Decimal
    average_return: Decimal
    win_rate: Decimal
    total_closed_trades: int
    total_open_positions: int
    winning_trades: int
    losing_trades: int
    gross_profit: Decimal
    gross_loss: Decimal
    profit_factor: Decimal | None
    expectancy: Decimal
    max_drawdown_percent: Decimal
    sharpe_ratio: Decimal | None
    sortino_ratio: Decimal | None
    fees_paid: Decimal
    average_holding_minutes: Decimal

    def to_doc(self) -> dict[str, Any]:
        """The camelCase document: Nexgent's eight fields first, then ours."""
        return {
            "portfolioBalanceSol": self.portfolio_balance,
            "totalProfitLossSol": self.total_profit_loss,
            "realizedProfitLossSol": self.realized_profit_loss,
            "unrealizedProfitLossSol": self.unrealized_profit_loss,
            "averageReturn": self.average_return,
            "winRate": self.win_rate,
            "totalClosedTrades": self.total_closed_trades,
            "totalOpenPositions": self.total_open_positions,
            "winningTrades": self.winning_trades,
            "losingTrades": self.losing_trades,
            "grossProfitSol": self.gross_profit,
            "grossLossSol": self.gross_loss,
            "profitFactor": self.profit_factor,
            "expectancy": self.expectancy,
            "maxDrawdownPercent": self.max_drawdown_percent,
            "sharpeRatio": self.sharpe_ratio,
            "sortinoRatio": self.sortino_ratio,
            "feesPaidSol": self.fees_paid,
            "averageHoldingMinutes": self.average_holding_minutes,
        }


@dataclass(frozen=True, slots=True)
class RoundTrip:
    """One position from its buy to its final sell: the sum of its closed-trade records."""

    position_id: str
    profit_loss: Decimal
    change_percent: Decimal
    purchase_ms: int
    close_ms: int

    @property
    def holding_ms(self) -> int:
        return self.close_ms - self.purchase_ms


def performance(
    trades: Sequence[ClosedTrade],
    snapshots: Sequence[BalanceSnapshot],
    positions: Sequence[Position],
    cash: Decimal,
    fees_paid: Decimal,
    *,
    since_ms: int | None = None,
) -> Performance:
    """The agent's performance over everything, or since ``since_ms`` (see the module doc)."""
    in_window = [t for t in trades if since_ms is None or t.sale_ms >= since_ms]
    trips = [trip for trip in round_trips(trades) if since_ms is None or trip.close_ms >= since_ms]
    points = sorted(
        (s for s in snapshots if since_ms is None or s.timestamp_ms >= since_ms),
        key=lambda s: s.timestamp_ms,
    )

    realized = sum((t.profit_loss for t in in_window), ZERO)
    unrealized = sum((p.unrealized() for p in positions), ZERO)
    winners = [trip.profit_loss for trip in trips if trip.profit_loss > 0]
    losers = [trip.profit_loss for trip in trips if trip.profit_loss < 0]
    gross_profit = sum(winners, ZERO)
    gross_loss = sum(losers, ZERO)
    count = len(trips)
    returns = daily_returns(points)

    return Performance(
        portfolio_balance=cash + sum((p.value() for p in positions), ZERO),
        total_profit_loss=realized + unrealized,
        realized_profit_loss=realized,
        unrealized_profit_loss=unrealized,
        average_return=_four(_mean([trip.change_percent for trip in trips])),
        win_rate=_four(Decimal(len(winners)) / count * HUNDRED if count else ZERO),
        total_closed_trades=count,
        total_open_positions=len(positions),
        winning_trades=len(winners),
        losing_trades=len(losers),
        gross_profit=gross_profit,
        gross_loss=gross_loss,
        profit_factor=_four(gross_profit / -gross_loss) if gross_loss < 0 else None,
        expectancy=_mean([trip.profit_loss for trip in trips]).quantize(_EIGHT_PLACES, ROUND_HALF_UP),
        max_drawdown_percent=_four(max_drawdown_percent(points)),
        sharpe_ratio=_ratio(sharpe_ratio(returns)),
        sortino_ratio=_ratio(sortino_ratio(returns)),
        fees_paid=fees_paid,
        average_holding_minutes=_four(_mean([Decimal(trip.holding_ms) / MINUTE_MS for trip in trips])),
    )


def round_trips(trades: Iterable[ClosedTrade]) -> list[RoundTrip]:
    """The closed round trips among ``trades``, in the order they closed (positions still open left out)."""
    groups: dict[str, list[ClosedTrade]] = {}
    for trade in trades:
        groups.setdefault(trade.position_id or f"trade:{trade.id}", []).append(trade)
    trips: list[RoundTrip] = []
    for key, records in groups.items():
        if all(record.partial for record in records):
            continue
        sold = sum((record.amount for record in records), ZERO)
        if sold:
            change = sum((record.amount * record.change_percent for record in records), ZERO) / sold
        else:
            change = _mean([record.change_percent for record in records])
        trips.append(
            RoundTrip(
                position_id=key,
                profit_loss=sum((record.profit_loss for record in records), ZERO),
                change_percent=change,
                purchase_ms=min(record.purchase_ms for record in records),
                close_ms=max(record.sale_ms for record in records),
            )
        )
    trips.sort(key=lambda trip: trip.close_ms)
    return trips


def max_drawdown_percent(snapshots: Sequence[BalanceSnapshot]) -> Decimal:
    """The largest peak-to-trough fall of the portfolio balance, in percent of the peak (0 under 2 points)."""
    if len(snapshots) < 2:
        return ZERO
    worst = ZERO
    peak: Decimal | None = None
    for snapshot in sorted(snapshots, key=lambda s: s.timestamp_ms):
        balance = snapshot.portfolio_balance
        if peak is None or balance > peak:
            peak = balance
        if peak > 0:
            worst = max(worst, (peak - balance) / peak * HUNDRED)
    return worst


def daily_closes(snapshots: Iterable[BalanceSnapshot]) -> list[BalanceSnapshot]:
    """The last snapshot of each UTC day (simulated time), oldest day first."""
    last: dict[int, BalanceSnapshot] = {}
    for snapshot in sorted(snapshots, key=lambda s: s.timestamp_ms):
        last[snapshot.timestamp_ms // DAY_MS] = snapshot
    return [last[day] for day in sorted(last)]


def daily_returns(snapshots: Iterable[BalanceSnapshot]) -> list[float]:
    """Returns between consecutive daily closes (a fraction: 0.01 is 1 %); none after a balance <= 0."""
    closes = [snapshot.portfolio_balance for snapshot in daily_closes(snapshots)]
    return [float(today / yesterday - 1) for yesterday, today in itertools.pairwise(closes) if yesterday > 0]


def sharpe_ratio(returns: Sequence[float]) -> float | None:
    """Mean over sample standard deviation, times √365; None under 2 returns or with no deviation."""
    if len(returns) < 2:
        return None
    deviation = statistics.stdev(returns)
    if deviation == 0:
        return None
    return statistics.fmean(returns) / deviation * math.sqrt(ANNUALIZATION_DAYS)


def sortino_ratio(returns: Sequence[float]) -> float | None:
    """Mean over downside deviation, times √365; None under 2 returns or with no losing day."""
    if len(returns) < 2:
        return None
    downside = math.sqrt(statistics.fmean([min(0.0, r) ** 2 for r in returns]))
    if downside == 0:
        return None
    return statistics.fmean(returns) / downside * math.sqrt(ANNUALIZATION_DAYS)


def window_start(timeframe: str, now_ms: int) -> int | None:
    """The ``since_ms`` of a timeframe: 24 simulated hours before ``now_ms`` for ``24h``, None for ``all``."""
    if timeframe == "24h":
        return now_ms - DAY_MS
    if timeframe == "all":
        return None
    raise ValueError(f"unknown timeframe {timeframe!r}: expected one of {', '.join(TIMEFRAMES)}")


def snapshot_points(
    snapshots: Iterable[BalanceSnapshot], timeframe: str, now_ms: int
) -> list[BalanceSnapshot]:
    """``balance-history``'s points up to ``now_ms``, oldest first.

    ``24h``: every (hourly) snapshot from 24 simulated hours before ``now_ms`` on, that instant included;
    ``all``: the last snapshot of each UTC day. Any other timeframe is a :class:`ValueError`.
    """
    since = window_start(timeframe, now_ms)
    taken = [s for s in snapshots if s.timestamp_ms <= now_ms]
    if since is None:
        return daily_closes(taken)
    return sorted((s for s in taken if s.timestamp_ms >= since), key=lambda s: s.timestamp_ms)


def _mean(values: Sequence[Decimal]) -> Decimal:
    return sum(values, ZERO) / len(values) if values else ZERO


def _four(value: Decimal) -> Decimal:
    return value.quantize(_FOUR_PLACES, ROUND_HALF_UP)


def _ratio(value: float | None) -> Decimal | None:
    return None if value is None else _four(Decimal(repr(value)))
