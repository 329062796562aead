"""What the engine refuses, each with a stable code the REST API and the A2A skills pass on.

Two kinds:

- :class:`ExchangeError` subclasses are *raised* for a request that is wrong as such (malformed order,
  unknown account, symbol or order, a reused ``clientOrderId`` with other terms). Nothing is recorded.
- :class:`Reject` codes end a well-formed order in status ``rejected``: the order is recorded (so a retry
  with the same ``clientOrderId`` gets the same answer) and carries the code in ``reason``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class ExchangeError(Exception):
    """A request the engine cannot act on; ``code`` is stable, the message is for people."""

    code: ClassVar[str] = "EXCHANGE_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidOrder(ExchangeError):
    """The order request is malformed (side, type, quantity, price or precision)."""

    code = "INVALID_ORDER"


class UnknownSymbol(ExchangeError):
    """The symbol is not traded here (no market data was ever given for it, nor was it listed)."""

    code = "UNKNOWN_SYMBOL"


class AccountNotFound(ExchangeError):
    """No account has this id."""

    code = "ACCOUNT_NOT_FOUND"


class AccountExists(ExchangeError):
    """An account with this id is already open."""

    code = "ACCOUNT_EXISTS"


class OrderNotFound(ExchangeError):
    """The account has no order with this id."""

    code = "ORDER_NOT_FOUND"


class OrderNotOpen(ExchangeError):
    """The order is no longer open (closed, canceled or rejected), so it cannot be canceled."""

    code = "ORDER_NOT_OPEN"


class ClientOrderIdConflict(ExchangeError):
    """The ``clientOrderId`` was already used by this account for an order with other terms."""

    code = "CLIENT_ORDER_ID_CONFLICT"


class Reject(StrEnum):
    """Why a well-formed order was rejected (its ``reason``), checked in this order."""

    NO_PRICE = "NO_PRICE"  # no price was seen yet for the symbol (a market order needs one)
    NO_LIQUIDITY = "NO_LIQUIDITY"  # the current bar has no volume, so a market order has no impact basis
    PRICE_IMPACT_TOO_HIGH = "PRICE_IMPACT_TOO_HIGH"  # impactCoefficient x amount / barVolume >= max
    DAILY_LOSS_LIMIT = "DAILY_LOSS_LIMIT"  # halted for the day, or this order would pass the limit
    MAX_POSITION_SIZE = "MAX_POSITION_SIZE"  # the position would be worth more than the cap
    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"  # not enough free cash (buy) or free asset (sell)


class CancelReason(StrEnum):
    """Why an open order was canceled (its ``reason``)."""

    CANCELED = "CANCELED"  # by its owner
    UNFILLED_TIMEOUT = "UNFILLED_TIMEOUT"  # still open unfilledTimeoutSeconds after it was placed
