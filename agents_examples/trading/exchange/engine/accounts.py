"""Accounts: quote cash and per-symbol positions, with what open orders hold.

All money is in 1e-8 quote units, quantities in 1e-8 base units. A position's ``cost_basis`` is the
money paid for the quantity still held, buy fees included, so ``realized`` (per sell: proceeds - sell fee
- the sold share of the basis) and the unrealized P/L (value - basis) are net of both legs' fees and add
up, with the starting cash, to the account's value exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agents_examples.trading.exchange.engine.config import QTY_SCALE
from agents_examples.trading.exchange.engine.orders import Order, Trade


@dataclass(slots=True, eq=False)
class Position:
    """A holding of one symbol's base asset.

    ``quantity`` is what is held (``reserved`` of it by open sell orders); ``pending_buy`` is the
    quantity open buy limit orders may still add (it counts toward ``maxPositionSize``);
    ``entry_notional`` is the exact ``Σ amount x price`` (1e-16 quote) of the held quantity, fees left out,
    for ``averageEntryPrice``.
    """

    symbol: str
    quantity: int = 0
    reserved: int = 0
    pending_buy: int = 0
    cost_basis: int = 0
    entry_notional: int = 0
    realized: int = 0

    def value(self, mark: int) -> int:
        """The held quantity at ``mark`` (price units), in money, rounded down."""
        return self.quantity * mark // QTY_SCALE

    def to_record(self) -> dict[str, Any]:
        """Lossless, JSON-safe."""
        return {
            "symbol": self.symbol,
            "quantity": self.quantity,
            "reserved": self.reserved,
            "pendingBuy": self.pending_buy,
            "costBasis": self.cost_basis,
            "entryNotional": self.entry_notional,
            "realized": self.realized,
        }

    @classmethod
    def from_record(cls, doc: Mapping[str, Any]) -> Position:
        """The inverse of :meth:`to_record`."""
        return cls(
            doc["symbol"],
            doc["quantity"],
            doc["reserved"],
            doc["pendingBuy"],
            doc["costBasis"],
            doc["entryNotional"],
            doc["realized"],
        )


@dataclass(slots=True, eq=False)
class Account:
    """One trading account: cash (``reserved`` of it by open buy orders), positions, orders, trades and
    its circuit breakers (money units; None means off)."""

    id: str
    starting_cash: int
    cash: int
    daily_loss_limit: int | None = None
    max_position_size: int | None = None
    day_start_equity: int = 0
    halted_until: int | None = None
    reserved: int = 0
    fees_paid: int = 0
    open_orders: int = 0
    positions: dict[str, Position] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    by_client_id: dict[str, Order] = field(default_factory=dict)
    trades: list[Trade] = field(default_factory=list)

    @property
    def free_cash(self) -> int:
        """Cash not held by open buy orders."""
        return self.cash - self.reserved

    def position(self, symbol: str) -> Position:
        """The position in ``symbol``, created empty if there is none."""
        position = self.positions.get(symbol)
        if position is None:
            position = self.positions[symbol] = Position(symbol)
        return position
