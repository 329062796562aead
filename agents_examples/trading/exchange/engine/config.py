"""The fill model's parameters (reference §4.3) and the integer units the engine counts in.

Units (never floats):

- prices: ``PRICE_SCALE`` units per 1 quote currency (1e-8 USD), as in :mod:`..market.bars`;
- quantities: ``QTY_SCALE`` units per 1 base asset (1e-8 BTC);
- money (cash, cost, fees, P/L, limits): ``MONEY_SCALE`` units per 1 quote currency (1e-8 USD).

So ``quantity x price`` is in 1e-16 USD and ``quantity x price / QTY_SCALE`` is money.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from agents_examples.trading.exchange.market.bars import PRICE_SCALE, QTY_SCALE

MONEY_SCALE: Final = PRICE_SCALE
DEFAULT_STARTING_CASH: Final = Decimal(100_000)
_ONE: Final = Decimal(1)

__all__ = ["DEFAULT_STARTING_CASH", "MONEY_SCALE", "PRICE_SCALE", "QTY_SCALE", "FillConfig"]


def exact_units(value: object, scale: int, what: str) -> int:
    """A decimal amount as integer units of ``1/scale``; refuses floats' noise, NaN, and finer precision.

    ``value`` may be an int, a Decimal, a decimal string, or a float (taken by its shortest repr, which is
    what a JSON client typed). Raises ValueError naming ``what``.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError(f"{what} must be a number")
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{what} must be a number") from None
    if not number.is_finite():
        raise ValueError(f"{what} must be finite")
    try:
        scaled = number * scale
        whole = scaled.to_integral_value()
    except ArithmeticError:  # decimal.Overflow: an exponent past the context's range
        raise ValueError(f"{what} is out of range") from None
    if scaled != whole:
        raise ValueError(f"{what} has more than {len(str(scale)) - 1} decimal places")
    return int(scaled)


def units_decimal(units: int) -> Decimal:
    """Integer 1e-8 units (price, quantity or money) as an exact Decimal in its shortest plain form
    (``50100``, ``50.1``, ``0``: no exponent, no trailing zeros), so ``str()`` of it is a JSON number."""
    return canonical(Decimal(units).scaleb(-8))


def canonical(value: Decimal) -> Decimal:
    """``value`` without trailing zeros and without an exponent in its ``str()``."""
    value = value.normalize()
    return value.quantize(_ONE) if value.as_tuple().exponent > 0 else value  # type: ignore[operator]


def _ratio(value: Decimal, what: str) -> tuple[int, int]:
    if not value.is_finite():
        raise ValueError(f"{what} must be finite")
    numerator, denominator = value.as_integer_ratio()
    return numerator, denominator


@dataclass(frozen=True, slots=True)
class FillConfig:
    """How paper orders fill; the defaults are the reference's (§4.3).

    - ``fee_rate``: charged on both legs, ``fee_rate x notional``, in the quote currency;
    - ``slippage_bps``: a market order's fixed adverse move, in basis points of the reference price;
    - ``impact_coefficient``: times ``amount / barVolume`` (the order's notional over the bar's quote
      volume, both at the reference price), the market order's extra adverse move;
    - ``max_price_impact``: a market order whose impact term reaches this is rejected
      (``PRICE_IMPACT_TOO_HIGH``; Nexgent's default 0.05); None turns the check off (an order whose
      sell price would not stay above zero is refused all the same);
    - ``participation_rate``: resting limit orders of one side of one symbol together fill at most this
      share of each bar's volume;
    - ``unfilled_timeout_seconds``: a limit order still open this long after placement is canceled
      (None: never).
    """

    fee_rate: Decimal = Decimal("0.001")
    slippage_bps: Decimal = Decimal(10)
    impact_coefficient: Decimal = Decimal("0.1")
    participation_rate: Decimal = Decimal("0.1")
    unfilled_timeout_seconds: int | None = 600
    max_price_impact: Decimal | None = Decimal("0.05")
    quote_currency: str = "USD"

    def __post_init__(self) -> None:
        for name in ("fee_rate", "slippage_bps", "impact_coefficient", "participation_rate"):
            value = getattr(self, name)
            if not isinstance(value, Decimal):
                object.__setattr__(self, name, Decimal(value))
        if self.max_price_impact is not None and not isinstance(self.max_price_impact, Decimal):
            object.__setattr__(self, "max_price_impact", Decimal(self.max_price_impact))
        if not Decimal(0) <= self.fee_rate < 1:
            raise ValueError("feeRate must be in [0, 1)")
        if not Decimal(0) <= self.slippage_bps < 10_000:
            raise ValueError("slippageBps must be in [0, 10000)")
        if self.impact_coefficient < 0:
            raise ValueError("impactCoefficient must not be negative")
        if not Decimal(0) < self.participation_rate <= 1:
            raise ValueError("participationRate must be in (0, 1]")
        if self.unfilled_timeout_seconds is not None and self.unfilled_timeout_seconds <= 0:
            raise ValueError("unfilledTimeoutSeconds must be positive (or null for never)")
        if self.max_price_impact is not None and self.max_price_impact <= 0:
            raise ValueError("maxPriceImpact must be positive (or null for no cap)")
        for name in ("fee_rate", "slippage_bps", "impact_coefficient", "participation_rate"):
            _ratio(getattr(self, name), name)

    @property
    def fee_ratio(self) -> tuple[int, int]:
        """``fee_rate`` as (numerator, denominator)."""
        return _ratio(self.fee_rate, "feeRate")

    @property
    def timeout_ms(self) -> int | None:
        """The unfilled timeout in simulated milliseconds."""
        return None if self.unfilled_timeout_seconds is None else self.unfilled_timeout_seconds * 1000

    def to_json(self) -> dict[str, Any]:
        """The parameters under the reference's names (numbers as decimal strings, exact)."""
        return {
            "feeRate": str(self.fee_rate),
            "slippageBps": str(self.slippage_bps),
            "impactCoefficient": str(self.impact_coefficient),
            "participationRate": str(self.participation_rate),
            "unfilledTimeoutSeconds": self.unfilled_timeout_seconds,
            "maxPriceImpact": None if self.max_price_impact is None else str(self.max_price_impact),
            "quoteCurrency": self.quote_currency,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> FillConfig:
        """Parameters from the reference's names; missing ones keep their defaults, unknown ones fail."""
        names = {
            "feeRate": "fee_rate",
            "slippageBps": "slippage_bps",
            "impactCoefficient": "impact_coefficient",
            "participationRate": "participation_rate",
            "unfilledTimeoutSeconds": "unfilled_timeout_seconds",
            "maxPriceImpact": "max_price_impact",
            "quoteCurrency": "quote_currency",
        }
        unknown = set(doc) - set(names)
        if unknown:
            raise ValueError(f"unknown fill parameters: {sorted(unknown)}")
        values: dict[str, Any] = {}
        for key, value in doc.items():
            name = names[key]
            if name in ("unfilled_timeout_seconds", "quote_currency") or value is None:
                values[name] = value
            else:
                values[name] = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        return cls(**values)
