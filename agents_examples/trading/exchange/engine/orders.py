"""Orders and trades (fills), CCXT-shaped, counted in integer units.

:meth:`Order.view` and :meth:`Trade.view` give the JSON view: every amount an exact ``Decimal`` (prices
and quantities from their 1e-8 units, money from 1e-8 quote units), times as int ms, the rest strings or
None. The API serialises the Decimals as JSON numbers. :meth:`Order.to_record` / :meth:`Order.from_record`
give a lossless JSON-safe form (ints and strings only) for persistence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Any, Final

from agents_examples.trading.exchange.engine.config import (
    PRICE_SCALE,
    QTY_SCALE,
    canonical,
    exact_units,
    units_decimal,
)
from agents_examples.trading.exchange.engine.errors import InvalidOrder

_PRICE_QUANTUM: Final = Decimal("1e-8")
MAX_CLIENT_ORDER_ID: Final = 64


class Side(StrEnum):
    """Which way an order trades."""

    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    """A market order fills at once on the reference price; a limit order rests until crossed."""

    MARKET = "market"
    LIMIT = "limit"


class OrderStatus(StrEnum):
    """CCXT order statuses (``expired`` is not used: a timed-out order is ``canceled``, reason
    ``UNFILLED_TIMEOUT``)."""

    OPEN = "open"
    CLOSED = "closed"
    CANCELED = "canceled"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What a caller asks for, validated: ``amount`` in quantity units, ``price`` (limit only) in price
    units. Two requests with the same ``client_order_id`` must be equal in every other field."""

    symbol: str
    side: Side
    type: OrderType
    amount: int
    price: int | None = None
    client_order_id: str | None = None

    def __post_init__(self) -> None:
        if not self.symbol or not isinstance(self.symbol, str):
            raise InvalidOrder("symbol is required")
        if self.amount <= 0:
            raise InvalidOrder("quantity must be positive")
        if self.type is OrderType.LIMIT and (self.price is None or self.price <= 0):
            raise InvalidOrder("a limit order needs a positive price")
        if self.type is OrderType.MARKET and self.price is not None:
            raise InvalidOrder("a market order takes no price (send null)")
        cid = self.client_order_id
        if cid is not None and (not cid or len(cid) > MAX_CLIENT_ORDER_ID or not cid.isprintable()):
            raise InvalidOrder(f"clientOrderId must be 1..{MAX_CLIENT_ORDER_ID} printable characters")

    @classmethod
    def create(
        cls,
        symbol: str,
        side: str,
        type: str,
        quantity: object,
        *,
        price: object = None,
        client_order_id: str | None = None,
    ) -> OrderRequest:
        """A request from the API's decimal values (Decimal, decimal string, int or a JSON float).

        Raises InvalidOrder for an unknown side or type, a quantity or price that is not a positive
        number with at most 8 decimal places, a limit order without a price or a market order with one.
        """
        if not isinstance(symbol, str):
            raise InvalidOrder("symbol must be a string")
        try:
            order_side = Side(side)
        except ValueError:
            raise InvalidOrder("side must be 'buy' or 'sell'") from None
        try:
            order_type = OrderType(type)
        except ValueError:
            raise InvalidOrder("type must be 'market' or 'limit'") from None
        if client_order_id is not None and not isinstance(client_order_id, str):
            raise InvalidOrder("clientOrderId must be a string")
        try:
            amount = exact_units(quantity, QTY_SCALE, "quantity")
            limit = None if price is None else exact_units(price, PRICE_SCALE, "price")
        except ValueError as exc:
            raise InvalidOrder(str(exc)) from None
        return cls(symbol, order_side, order_type, amount, limit, client_order_id)


@dataclass(slots=True)
class Trade:
    """One fill of an order. ``cost`` and ``fee`` are the money this fill moved (the order's totals are
    the exact sums of its trades')."""

    id: str
    seq: int
    order_id: str
    account_id: str
    timestamp: int
    symbol: str
    type: OrderType
    side: Side
    taker: bool
    price: int
    amount: int
    cost: int
    fee: int

    def view(self, fee_rate: Decimal, currency: str) -> dict[str, Any]:
        """CCXT trade: ``{id, order, timestamp, symbol, type, side, takerOrMaker, price, amount, cost,
        fee}``."""
        return {
            "id": self.id,
            "order": self.order_id,
            "timestamp": self.timestamp,
            "symbol": self.symbol,
            "type": self.type.value,
            "side": self.side.value,
            "takerOrMaker": "taker" if self.taker else "maker",
            "price": units_decimal(self.price),
            "amount": units_decimal(self.amount),
            "cost": units_decimal(self.cost),
            "fee": {"currency": currency, "cost": units_decimal(self.fee), "rate": fee_rate},
        }

    def to_record(self) -> dict[str, Any]:
        """Lossless, JSON-safe."""
        return {
            "id": self.id,
            "seq": self.seq,
            "order": self.order_id,
            "account": self.account_id,
            "timestamp": self.timestamp,
            "symbol": self.symbol,
            "type": self.type.value,
            "side": self.side.value,
            "taker": self.taker,
            "price": self.price,
            "amount": self.amount,
            "cost": self.cost,
            "fee": self.fee,
        }

    @classmethod
    def from_record(cls, doc: Mapping[str, Any]) -> Trade:
        """The inverse of :meth:`to_record`."""
        return cls(
            doc["id"],
            doc["seq"],
            doc["order"],
            doc["account"],
            doc["timestamp"],
            doc["symbol"],
            OrderType(doc["type"]),
            Side(doc["side"]),
            doc["taker"],
            doc["price"],
            doc["amount"],
            doc["cost"],
            doc["fee"],
        )


@dataclass(slots=True, eq=False)
class Order:
    """An order and its fills so far.

    ``cost`` is the money moved for the fills, rounded for the exchange (a buy pays
    ``ceil(Σ amount x price)``, a sell receives ``floor(...)``, over the order's fills taken together);
    ``fee`` likewise ``ceil(fee_rate x cost)``. ``notional`` is the exact ``Σ amount x price`` (1e-16 quote
    units) those are rounded from. ``reserved`` is the money (buy) or quantity (sell) still held for the
    open remainder.
    """

    id: str
    seq: int
    account_id: str
    request: OrderRequest
    timestamp: int
    status: OrderStatus = OrderStatus.OPEN
    filled: int = 0
    notional: int = 0
    cost: int = 0
    fee: int = 0
    reserved: int = 0
    reason: str | None = None
    message: str | None = None
    last_trade_timestamp: int | None = None
    last_update_timestamp: int | None = None
    expires_at: int | None = None
    trades: list[Trade] = field(default_factory=list)

    @property
    def symbol(self) -> str:
        """The traded symbol."""
        return self.request.symbol

    @property
    def side(self) -> Side:
        """Buy or sell."""
        return self.request.side

    @property
    def amount(self) -> int:
        """Ordered quantity, in quantity units."""
        return self.request.amount

    @property
    def remaining(self) -> int:
        """Quantity still to fill while open; 0 once the order is no longer open."""
        return self.request.amount - self.filled if self.status is OrderStatus.OPEN else 0

    @property
    def average(self) -> Decimal | None:
        """The fills' volume-weighted price (``notional / filled``), rounded half-even to 1e-8; None
        before any fill."""
        if not self.filled:
            return None
        return canonical(
            (Decimal(self.notional) / Decimal(self.filled) / QTY_SCALE).quantize(
                _PRICE_QUANTUM, rounding=ROUND_HALF_EVEN
            )
        )

    def view(self, fee_rate: Decimal, currency: str) -> dict[str, Any]:
        """The CCXT order, exact.

        ``{id, clientOrderId, timestamp, lastTradeTimestamp, lastUpdateTimestamp, symbol, type, side,
        price, average, amount, filled, remaining, cost, status, reason, message, fee{currency, cost,
        rate}, trades[]}``: ``price`` is the limit (None for a market order), ``average`` None before a
        fill, ``remaining`` 0 once the order is not open (a canceled order keeps its ``filled``),
        ``reason`` the :class:`Reject` or :class:`CancelReason` code (else None).
        """
        request = self.request
        trades = self.trades
        return {
            "id": self.id,
            "clientOrderId": request.client_order_id,
            "timestamp": self.timestamp,
            "lastTradeTimestamp": self.last_trade_timestamp,
            "lastUpdateTimestamp": self.last_update_timestamp,
            "symbol": request.symbol,
            "type": request.type.value,
            "side": request.side.value,
            "price": None if request.price is None else units_decimal(request.price),
            "average": self.average,
            "amount": units_decimal(request.amount),
            "filled": units_decimal(self.filled),
            "remaining": units_decimal(self.remaining),
            "cost": units_decimal(self.cost),
            "status": self.status.value,
            "reason": self.reason,
            "message": self.message,
            "fee": {"currency": currency, "cost": units_decimal(self.fee), "rate": fee_rate},
            "trades": [trade.view(fee_rate, currency) for trade in trades],
        }

    def to_record(self) -> dict[str, Any]:
        """Lossless, JSON-safe (ints, strings, None, lists, dicts)."""
        request = self.request
        return {
            "id": self.id,
            "seq": self.seq,
            "account": self.account_id,
            "symbol": request.symbol,
            "side": request.side.value,
            "type": request.type.value,
            "amount": request.amount,
            "price": request.price,
            "clientOrderId": request.client_order_id,
            "timestamp": self.timestamp,
            "status": self.status.value,
            "filled": self.filled,
            "notional": self.notional,
            "cost": self.cost,
            "fee": self.fee,
            "reserved": self.reserved,
            "reason": self.reason,
            "message": self.message,
            "lastTradeTimestamp": self.last_trade_timestamp,
            "lastUpdateTimestamp": self.last_update_timestamp,
            "expiresAt": self.expires_at,
            "trades": [trade.to_record() for trade in self.trades],
        }

    @classmethod
    def from_record(cls, doc: Mapping[str, Any]) -> Order:
        """The inverse of :meth:`to_record`."""
        request = OrderRequest(
            doc["symbol"],
            Side(doc["side"]),
            OrderType(doc["type"]),
            doc["amount"],
            doc["price"],
            doc["clientOrderId"],
        )
        trades = [Trade.from_record(t) for t in doc["trades"]]
        return cls(
            doc["id"],
            doc["seq"],
            doc["account"],
            request,
            doc["timestamp"],
            OrderStatus(doc["status"]),
            doc["filled"],
            doc["notional"],
            doc["cost"],
            doc["fee"],
            doc["reserved"],
            doc["reason"],
            doc["message"],
            doc["lastTradeTimestamp"],
            doc["lastUpdateTimestamp"],
            doc["expiresAt"],
            trades,
        )
