"""The one bar schema every source is normalised to, in integer units (no floats anywhere).

Prices are in ``PRICE_SCALE`` units of the quote currency (1e-8 USD), volumes in ``QTY_SCALE`` units of
the base asset (1e-8 BTC), so arithmetic on them is exact and fast; the API converts at its edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final

PRICE_SCALE: Final = 10**8  # price units per 1 quote currency unit
QTY_SCALE: Final = 10**8  # quantity units per 1 base asset unit


@dataclass(frozen=True, slots=True)
class Bar:
    """One OHLCV bar: ``ts_ms`` is its open time (ms since the epoch), ``span_ms`` how long it lasts."""

    ts_ms: int
    span_ms: int
    open: int
    high: int
    low: int
    close: int
    volume: int

    @property
    def up(self) -> bool:
        """Whether the bar closed at or above its open (its ticks go O, L, H, C; else O, H, L, C)."""
        return self.close >= self.open


def to_price(value: str | Decimal | int) -> int:
    """A decimal price as price units, rounded half-even to the nearest unit."""
    return int((Decimal(value) * PRICE_SCALE).to_integral_value())


def to_qty(value: str | Decimal | int) -> int:
    """A decimal quantity as quantity units, rounded half-even to the nearest unit."""
    return int((Decimal(value) * QTY_SCALE).to_integral_value())


def price_decimal(units: int) -> Decimal:
    """Price units back as an exact Decimal."""
    return Decimal(units).scaleb(-8)


def qty_decimal(units: int) -> Decimal:
    """Quantity units back as an exact Decimal."""
    return Decimal(units).scaleb(-8)
