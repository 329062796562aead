"""The engine's exchange port over a paper exchange in the same process: no gateway, no HTTP.

In the network the engine reaches the exchange only through the gateway, as A2A tasks
(:class:`~agents_examples.trading.engine.exchange_link.ExchangeLink`). :class:`InProcessExchange`
answers the same three calls (:class:`~agents_examples.trading.engine.trading.ExchangePort`) by calling
the exchange's own code directly: ``listings`` gives what the REST API's ``GET /market`` lists, an order goes
through the API's order parsing (``AgentConnectApi.order_request``) and the matching engine's ``place``
at the simulation clock's time, and the answer is the engine's CCXT order view passed through the
API's JSON encoding, as the ``place-order`` skill returns it. A rejected order is a refusal with the
engine's reason as its code, as the engine's gateway link reads the skill's ``"CODE: message"``. So
fills, fees, slippage and refusals are those of the network; signatures, rate limits and the
gateway's billing are left out.

Used by the backtest (:mod:`.runner`) and the engine's benchmark (``benchmarks/engine.py``).
"""

from __future__ import annotations

import json
from typing import Any

from agents_examples.trading.engine.exchange_link import Listing, OrderOutcome, WalletKeys
from agents_examples.trading.exchange.api.jsonenc import dumps
from agents_examples.trading.exchange.api.routes import AgentConnectApi, ApiError, order_doc
from agents_examples.trading.exchange.engine import ExchangeError, OrderStatus, units_decimal
from agents_examples.trading.exchange.market.instruments import UnknownInstrumentError
from agents_examples.trading.exchange.service import ExchangeService


class UnknownKey(RuntimeError):
    """A wallet key the in-process exchange has no account for."""


class InProcessExchange:
    """The engine's exchange port over ``service``, a paper exchange in this process (module doc)."""

    def __init__(self, service: ExchangeService) -> None:
        self.service = service
        self.api = AgentConnectApi(service)
        self.orders = 0  # orders placed, refusals included

    async def listings(self) -> list[Listing]:
        """Every listed instrument at the replay's last price: ``GET /market``'s symbol, token address,
        name, quote and price, without its 24-hour statistics (their tables take seconds to build over
        a year of 1-minute bars, and the engine reads only the price)."""
        service = self.service
        return [
            Listing(
                i.symbol, i.token_address, i.name, units_decimal(service.simulator.price(i.symbol)), i.quote
            )
            for i in service.instruments
        ]

    def account_id(self, keys: WalletKeys) -> str:
        """The exchange account of ``keys`` (:class:`UnknownKey` when there is none)."""
        record = self.service.by_key(keys.api_key)
        if record is None:
            raise UnknownKey("the in-process exchange has no account for this key")
        return record.id

    async def portfolio(self, keys: WalletKeys) -> dict[str, Any]:
        """The account's cash, as the ``portfolio`` skill names it."""
        doc: dict[str, Any] = self.service.engine.portfolio(self.account_id(keys))
        cash = doc["cash"]
        return {"cash": units_decimal(cash) if isinstance(cash, int) else cash}

    async def place_order(self, keys: WalletKeys, order: dict[str, Any]) -> OrderOutcome:
        """Place ``order`` at the simulation clock's time; accepted with the order's view, or refused with
        the exchange's code (a parse error, or the engine's rejection reason)."""
        self.orders += 1
        try:
            request = self.api.order_request(dict(order))
            placed = self.service.engine.place(self.account_id(keys), request, self.service.now_ms)
        except (ApiError, ExchangeError) as error:
            return OrderOutcome(False, error.code, error.message, None)
        except UnknownInstrumentError as error:
            return OrderOutcome(False, error.code, str(error), None)
        self.service.changed()
        view: dict[str, Any] = json.loads(dumps(order_doc(self.service.engine.order_view(placed))))
        if placed.status is OrderStatus.REJECTED:
            return OrderOutcome(False, placed.reason or "REJECTED", placed.message, view)
        return OrderOutcome(True, None, None, view)
