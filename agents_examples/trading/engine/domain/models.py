"""The trading engine's records: a position, a closed trade, a balance snapshot.

Every amount is a :class:`~decimal.Decimal` in the **quote currency** of the exchange (USD on the paper
exchange). Nexgent names these ``…Sol`` because it trades against SOL; the engine keeps Nexgent's names
(``profitLossSol``, ``positionValueSol``) and documents that ``Sol`` means the quote currency. Token
amounts are Decimals of the base asset. Times are simulated milliseconds since the Unix epoch (the
exchange's simulation clock, as the price feed reports it).

Nothing here reads a clock or does I/O: services build these, the store saves them, views render them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Final

ZERO: Final = Decimal(0)
HUNDRED: Final = Decimal(100)


class CloseReason(StrEnum):
    """Why a position (or part of it) was sold. ``signal`` and ``risk_limit`` are our extensions."""

    MANUAL = "manual"
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    STALE_TRADE = "stale_trade"
    SIGNAL = "signal"
    RISK_LIMIT = "risk_limit"


@dataclass(slots=True)
class Position:
    """One open position of a trading agent in one token (at most one per agent and token).

    ``purchase_price`` is the average fill price of the buy, ``purchase_amount`` the tokens bought,
    ``remaining_amount`` what is still held (None: all of it, Nexgent's convention), ``total_invested``
    the quote spent including the buy's fee. ``realized_profit`` accumulates the P/L of partial sells
    (take-profit levels). ``peak_price`` is the highest price seen since the buy and drives the trailing
    stop; ``current_stop_loss_percentage`` is the stop in force (percent from the purchase price, e.g.
    -32 or +15), None while the stop loss is off.
    """

    id: str
    agent_id: str
    wallet_address: str
    token_address: str
    token_symbol: str
    purchase_price: Decimal
    purchase_amount: Decimal
    total_invested: Decimal
    created_ms: int
    purchase_transaction_id: str = ""
    signal_id: int | None = None
    remaining_amount: Decimal | None = None
    peak_price: Decimal | None = None
    current_stop_loss_percentage: Decimal | None = None
    last_stop_loss_update_ms: int | None = None
    take_profit_levels_hit: int = 0
    take_profit_transaction_ids: list[str] = field(default_factory=list)
    last_take_profit_ms: int | None = None
    moon_bag_activated: bool = False
    moon_bag_amount: Decimal | None = None
    realized_profit: Decimal = ZERO
    current_price: Decimal | None = None
    updated_ms: int = 0

    @property
    def held(self) -> Decimal:
        """Tokens still held."""
        return self.purchase_amount if self.remaining_amount is None else self.remaining_amount

    def price(self) -> Decimal:
        """The latest known price (the purchase price before any tick)."""
        return self.purchase_price if self.current_price is None else self.current_price

    def value(self) -> Decimal:
        """``positionValueSol``: the held tokens at the latest price."""
        return self.price() * self.held

    def cost_of_held(self) -> Decimal:
        """What the held tokens cost, the buy's fee included pro rata."""
        if self.purchase_amount == 0:
            return ZERO
        return self.total_invested * self.held / self.purchase_amount

    def unrealized(self) -> Decimal:
        """Unrealized P/L of the held tokens (before the sell's fee)."""
        return self.value() - self.cost_of_held()

    def profit_loss(self) -> Decimal:
        """``profitLossSol``: realized (partial sells) plus unrealized."""
        return self.realized_profit + self.unrealized()

    def profit_loss_percent(self) -> Decimal:
        """``profitLossPercent``: P/L over everything invested, in percent (0 when nothing was)."""
        if self.total_invested == 0:
            return ZERO
        return self.profit_loss() / self.total_invested * HUNDRED

    def change_percent(self) -> Decimal:
        """``priceChangePercent``: the price's change since the buy, in percent (what exit rules use)."""
        if self.purchase_price == 0:
            return ZERO
        return (self.price() - self.purchase_price) / self.purchase_price * HUNDRED


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    """``AgentHistoricalSwap``: one sell of a position, full or partial, with its outcome.

    ``amount`` tokens were sold at ``sale_price``; ``profit_loss`` is the sale's proceeds after its fee
    minus the cost of those tokens (the buy's fee included pro rata). ``change_percent`` is the price's
    change from the purchase price.
    """

    id: str
    agent_id: str
    wallet_address: str
    token_address: str
    token_symbol: str
    amount: Decimal
    purchase_price: Decimal
    sale_price: Decimal
    change_percent: Decimal
    profit_loss: Decimal
    fees: Decimal
    purchase_ms: int
    sale_ms: int
    close_reason: CloseReason
    purchase_transaction_id: str = ""
    sale_transaction_id: str = ""
    signal_id: int | None = None
    position_id: str = ""
    partial: bool = False


@dataclass(frozen=True, slots=True)
class BalanceSnapshot:
    """One hourly point of ``balance-history``: cash, holdings at their prices, and their sum."""

    agent_id: str
    timestamp_ms: int
    portfolio_balance: Decimal
    cash_balance: Decimal
    positions_value: Decimal
    unrealized: Decimal
