"""Small builders for the engine's tests: bars and orders from decimal strings, units back to Decimals."""

from __future__ import annotations

from decimal import Decimal

from agents_examples.trading.exchange.engine import Exchange, FillConfig, Order, OrderRequest
from agents_examples.trading.exchange.market.bars import Bar, to_price, to_qty

MINUTE = 60_000
DAY = 86_400_000
T0 = 1_735_689_600_000  # 2025-01-01T00:00Z
# No slippage, impact or fee: prices in tests that are not about them stay round.
FLAT = FillConfig(fee_rate=Decimal(0), slippage_bps=Decimal(0), impact_coefficient=Decimal(0))


def bar(ts: int, o: str, h: str, l: str, c: str, v: str = "100", span: int = MINUTE) -> Bar:  # noqa: E741
    """A bar from decimal strings (prices in USD, volume in base units)."""
    return Bar(ts, span, to_price(o), to_price(h), to_price(l), to_price(c), to_qty(v))


def flat(ts: int, price: str, volume: str = "100") -> Bar:
    """A bar that stays at one price."""
    return bar(ts, price, price, price, price, volume)


def market(symbol: str, side: str, quantity: str, cid: str | None = None) -> OrderRequest:
    """A market order request."""
    return OrderRequest.create(symbol, side, "market", quantity, client_order_id=cid)


def limit(symbol: str, side: str, quantity: str, price: str, cid: str | None = None) -> OrderRequest:
    """A limit order request."""
    return OrderRequest.create(symbol, side, "limit", quantity, price=price, client_order_id=cid)


def view(exchange: Exchange, order: Order) -> dict[str, object]:
    """The order's JSON view."""
    return exchange.order_view(order)


def usd(value: str) -> Decimal:
    """A decimal, for comparing with views."""
    return Decimal(value)
