"""What a new price does to an open position: the exit rules of Nexgent's price-tick evaluation.

On every price the engine calls :func:`on_price`. It records the price on the position, raises the peak
price, ratchets the stop loss up, then evaluates the exit rules in Nexgent's order -- stop loss, take
profit, stale trade -- and answers the first :class:`ExitOrder` that fires, or None. The caller sells
(through the exchange), then either closes the position (a full sale) or records the partial sale with
:func:`apply_sale`; :func:`closed_trade` builds the historical swap record of either.

All percentages are measured from the purchase price:

* **Stop loss** fires when ``price <= purchase_price * (1 + stop / 100)``. Until the peak gain reaches
  20% the stop is the configured ``default_percentage`` (e.g. -32); from there it trails the peak gain
  (``fixed``: gain - 10; ``zones``: gain times a keep ratio growing with the gain; ``custom``: the
  highest trailing level the gain reached). The stop never goes below the default and never goes down.
  A stop-loss exit sells everything, the moon bag included.
* **Take profit** levels are hit in order; each sells ``sell_percent`` of the *original* amount. Several
  levels reached in one jump make one order. Once the gain reaches the moon bag's trigger,
  ``retain_percent`` of the original is set aside: take-profit sells never touch it, and after the last
  level it rides on the trailing stop.
* **Stale trade**: after the minimum hold time, a position whose price change lies inside
  ``[min_profit_percent, max_profit_percent]`` is sold entirely.

When the price stream had a gap (a bar whose low and high the engine never saw tick by tick),
:func:`catch_up_path` gives the prices to feed, the adverse side first, so that a bar that touched both
the stop and a target counts as stopped out (the conservative assumption of backtesters).

Pure functions over the records of :mod:`.models`; nothing here reads a clock or does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from .config import StopLoss, TradingConfig
from .models import HUNDRED, ZERO, ClosedTrade, CloseReason, Position

TRAILING_START_GAIN: Final = Decimal(20)
"""The peak gain (percent) from which the stop trails the peak instead of sitting at the default."""

FIXED_TRAIL_DISTANCE: Final = Decimal(10)
"""``fixed`` mode: the stop sits this many points of gain below the peak gain."""

ZONES: Final[tuple[tuple[Decimal, Decimal], ...]] = (
    (Decimal(25), Decimal("0.50")),
    (Decimal(50), Decimal("0.60")),
    (Decimal(100), Decimal("0.70")),
    (Decimal(200), Decimal("0.80")),
)
"""``zones`` mode: (peak gain up to and including, share of the gain kept); above the last, 0.85."""

TOP_ZONE_KEEP: Final = Decimal("0.85")

MS_PER_MINUTE: Final = 60_000


@dataclass(frozen=True, slots=True)
class ExitOrder:
    """A sell the exit rules ask for.

    ``amount`` is the tokens to sell (> 0). ``full`` says the sale empties the position (it closes).
    ``level`` is the 0-based index of the last take-profit level this sale completes (take profit
    only). ``moon_bag`` says the sale includes the moon bag's tokens (a stop-loss or stale-trade exit
    after the moon bag was set aside).
    """

    reason: CloseReason
    amount: Decimal
    full: bool
    level: int | None = None
    moon_bag: bool = False


def on_price(position: Position, price: Decimal, now_ms: int, config: TradingConfig) -> ExitOrder | None:
    """Record ``price`` on ``position`` and answer the first exit it triggers, if any.

    Updates ``current_price``, ``updated_ms``, ``peak_price``, the stop in force
    (``current_stop_loss_percentage``, ``last_stop_loss_update_ms``) and the moon bag's activation.
    """
    position.current_price = price
    position.updated_ms = now_ms
    peak = position.purchase_price if position.peak_price is None else position.peak_price
    position.peak_price = max(peak, price)
    _ratchet_stop(position, config.stop_loss, now_ms)
    if position.held <= ZERO:
        return None
    return _stop_loss(position, config) or _take_profit(position, config) or _stale(position, now_ms, config)


def trailing_stop(stop_loss: StopLoss, peak_gain: Decimal) -> Decimal:
    """The stop (percent from the purchase price) a peak gain of ``peak_gain`` percent calls for.

    It is never below ``default_percentage``; callers keep the highest value seen (it never drops).
    """
    default = stop_loss.default_percentage
    if peak_gain < TRAILING_START_GAIN:
        return default
    if stop_loss.mode == "zones":
        keep = next((k for upper, k in ZONES if peak_gain <= upper), TOP_ZONE_KEEP)
        candidate = peak_gain * keep
    elif stop_loss.mode == "custom":
        reached = [lv for lv in stop_loss.trailing_levels if lv.change <= peak_gain]
        candidate = max(reached, key=lambda lv: lv.change).stop_loss if reached else default
    else:
        candidate = peak_gain - FIXED_TRAIL_DISTANCE
    return max(candidate, default)


def _gain(position: Position, price: Decimal) -> Decimal:
    if position.purchase_price == 0:
        return ZERO
    return (price - position.purchase_price) / position.purchase_price * HUNDRED


def _ratchet_stop(position: Position, stop_loss: StopLoss, now_ms: int) -> None:
    if not stop_loss.enabled:
        position.current_stop_loss_percentage = None
        return
    assert position.peak_price is not None
    wanted = trailing_stop(stop_loss, _gain(position, position.peak_price))
    current = position.current_stop_loss_percentage
    if current is None or wanted > current:
        position.current_stop_loss_percentage = wanted
        position.last_stop_loss_update_ms = now_ms


def _has_moon_bag(position: Position) -> bool:
    return position.moon_bag_activated and (position.moon_bag_amount or ZERO) > ZERO


def _sell_all(position: Position, reason: CloseReason) -> ExitOrder:
    return ExitOrder(reason, position.held, full=True, moon_bag=_has_moon_bag(position))


def _stop_loss(position: Position, config: TradingConfig) -> ExitOrder | None:
    stop = position.current_stop_loss_percentage
    if not config.stop_loss.enabled or stop is None:
        return None
    trigger = position.purchase_price * (1 + stop / HUNDRED)
    if position.price() <= trigger:
        return _sell_all(position, CloseReason.STOP_LOSS)
    return None


def _take_profit(position: Position, config: TradingConfig) -> ExitOrder | None:
    take_profit = config.take_profit
    if not take_profit.enabled:
        return None
    gain = position.change_percent()
    moon_bag = take_profit.moon_bag
    if moon_bag.enabled and not position.moon_bag_activated and gain >= moon_bag.trigger_percent:
        position.moon_bag_activated = True
        position.moon_bag_amount = min(
            position.purchase_amount * moon_bag.retain_percent / HUNDRED, position.held
        )
    wanted = ZERO
    last: int | None = None
    for index in range(position.take_profit_levels_hit, len(take_profit.levels)):
        level = take_profit.levels[index]
        if gain < level.target_percent:
            break
        wanted += position.purchase_amount * level.sell_percent / HUNDRED
        last = index
    if last is None:
        return None
    kept = (position.moon_bag_amount or ZERO) if position.moon_bag_activated else ZERO
    amount = min(wanted, position.held - kept)
    if amount <= ZERO:
        return None
    full = amount >= position.held and kept <= ZERO
    return ExitOrder(CloseReason.TAKE_PROFIT, amount, full=full, level=last)


def _stale(position: Position, now_ms: int, config: TradingConfig) -> ExitOrder | None:
    stale = config.stale_trade
    if not stale.enabled:
        return None
    if now_ms - position.created_ms < stale.min_hold_time_minutes * MS_PER_MINUTE:
        return None
    change = position.change_percent()
    if stale.min_profit_percent <= change <= stale.max_profit_percent:
        return _sell_all(position, CloseReason.STALE_TRADE)
    return None


def _cost_of(position: Position, sold: Decimal) -> Decimal:
    """What ``sold`` tokens cost, the buy's fee included, pro rata of everything invested."""
    if position.purchase_amount == 0:
        return ZERO
    return position.total_invested * sold / position.purchase_amount


def apply_sale(  # noqa: PLR0917 (the trader's call, one value per fact of the sale)
    position: Position,
    order: ExitOrder,
    sold: Decimal,
    net_proceeds: Decimal,
    now_ms: int,
    transaction_id: str,
) -> None:
    """Record a partial sale of ``sold`` tokens that brought ``net_proceeds`` (after its fee).

    Lowers ``remaining_amount``, adds the sale's P/L to ``realized_profit`` and, for a take-profit
    sale, marks its levels hit and keeps its transaction id. A full sale closes the position instead;
    the caller does that.
    """
    position.remaining_amount = position.held - sold
    position.realized_profit += net_proceeds - _cost_of(position, sold)
    position.updated_ms = now_ms
    if order.reason is CloseReason.TAKE_PROFIT:
        if order.level is not None:
            position.take_profit_levels_hit = max(position.take_profit_levels_hit, order.level + 1)
        position.take_profit_transaction_ids.append(transaction_id)
        position.last_take_profit_ms = now_ms


def closed_trade(  # noqa: PLR0917 (the trader's call, one value per field of the record)
    position: Position,
    order_reason: CloseReason,
    sold: Decimal,
    sale_price: Decimal,
    net_proceeds: Decimal,
    fees: Decimal,
    now_ms: int,
    trade_id: str,
    transaction_id: str,
    partial: bool,
) -> ClosedTrade:
    """The historical swap record of selling ``sold`` tokens of ``position`` at ``sale_price``.

    ``profit_loss`` is ``net_proceeds`` minus what those tokens cost (pro rata of the total invested),
    ``change_percent`` the sale price's change from the purchase price.
    """
    return ClosedTrade(
        id=trade_id,
        agent_id=position.agent_id,
        wallet_address=position.wallet_address,
        token_address=position.token_address,
        token_symbol=position.token_symbol,
        amount=sold,
        purchase_price=position.purchase_price,
        sale_price=sale_price,
        change_percent=_gain(position, sale_price),
        profit_loss=net_proceeds - _cost_of(position, sold),
        fees=fees,
        purchase_ms=position.created_ms,
        sale_ms=now_ms,
        close_reason=order_reason,
        purchase_transaction_id=position.purchase_transaction_id,
        sale_transaction_id=transaction_id,
        signal_id=position.signal_id,
        position_id=position.id,
        partial=partial,
    )


def catch_up_path(low: Decimal, high: Decimal, current: Decimal) -> list[Decimal]:
    """The prices to feed a long position after a gap: the bar's low, its high, then the current price.

    The adverse side (the low) comes first, so a bar that touched both the stop and a target is a
    stop-out. Repeats of the price just before are dropped; the path always ends at ``current``.
    """
    path: list[Decimal] = []
    for price in (low, high, current):
        if not path or path[-1] != price:
            path.append(price)
    return path
