"""What the engine reports to its listeners (the API turns these into webhooks and A2A stream events).

Events are queued while the engine changes state and delivered, in order, when the public call that
caused them is done: a listener sees a consistent engine and may call back into it (its own events are
delivered after the ones already queued). Each event carries JSON views taken when it happened. Listeners
must not raise: an exception propagates to the caller of the engine method (the market feed, or ``place``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """An order was placed (open, closed or rejected), filled in part or in full, or canceled."""

    account_id: str
    ts_ms: int
    order: dict[str, Any]
    type: Literal["order"] = "order"


@dataclass(frozen=True, slots=True)
class Fill:
    """One trade of an order; an :class:`OrderUpdate` with the order's new state follows it."""

    account_id: str
    ts_ms: int
    trade: dict[str, Any]
    type: Literal["fill"] = "fill"


@dataclass(frozen=True, slots=True)
class BreakerEvent:
    """The daily loss limit was passed (``halted``: new orders are refused until ``until_ms``, the next
    00:00 UTC of the simulation clock) or the new day lifted the halt (``lifted``).

    ``loss`` is the day's loss when it was seen (realized + unrealized since 00:00 UTC, fees included).
    """

    account_id: str
    ts_ms: int
    state: Literal["halted", "lifted"]
    limit: Decimal
    loss: Decimal
    until_ms: int | None
    code: str = "DAILY_LOSS_LIMIT"
    type: Literal["breaker"] = "breaker"


Event = OrderUpdate | Fill | BreakerEvent
Listener = Callable[[Event], None]
