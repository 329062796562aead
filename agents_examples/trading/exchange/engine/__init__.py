"""The paper exchange's trading engine: pure Python, integer units, no I/O, deterministic.

:class:`Exchange` is the facade (accounts, orders, the fill model, the book, breakers, events,
snapshots); its module docstring documents the fill model, the rounding and the breakers.
"""

from agents_examples.trading.exchange.engine.accounts import Account, Position
from agents_examples.trading.exchange.engine.config import (
    DEFAULT_STARTING_CASH,
    MONEY_SCALE,
    PRICE_SCALE,
    QTY_SCALE,
    FillConfig,
    units_decimal,
)
from agents_examples.trading.exchange.engine.errors import (
    AccountExists,
    AccountNotFound,
    CancelReason,
    ClientOrderIdConflict,
    ExchangeError,
    InvalidOrder,
    OrderNotFound,
    OrderNotOpen,
    Reject,
    UnknownSymbol,
)
from agents_examples.trading.exchange.engine.events import BreakerEvent, Event, Fill, Listener, OrderUpdate
from agents_examples.trading.exchange.engine.exchange import DAY_MS, Exchange
from agents_examples.trading.exchange.engine.orders import (
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    Trade,
)

__all__ = [
    "DAY_MS",
    "DEFAULT_STARTING_CASH",
    "MONEY_SCALE",
    "PRICE_SCALE",
    "QTY_SCALE",
    "Account",
    "AccountExists",
    "AccountNotFound",
    "BreakerEvent",
    "CancelReason",
    "ClientOrderIdConflict",
    "Event",
    "Exchange",
    "ExchangeError",
    "Fill",
    "FillConfig",
    "InvalidOrder",
    "Listener",
    "Order",
    "OrderNotFound",
    "OrderNotOpen",
    "OrderRequest",
    "OrderStatus",
    "OrderType",
    "OrderUpdate",
    "Position",
    "Reject",
    "Side",
    "Trade",
    "UnknownSymbol",
    "units_decimal",
]
