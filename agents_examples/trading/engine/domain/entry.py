"""Whether a signal becomes a buy for one trading agent, and for how much.

:func:`decide_entry` runs Nexgent's purchase checks in Nexgent's order and answers either an
:class:`Entry` (the quote currency to spend) or a :class:`Skip` with one of Nexgent's error codes:

1. the signal filters: ``SIGNAL_BELOW_MIN_SCORE``, ``SIGNAL_TYPE_NOT_ALLOWED``, ``TOKEN_BLACKLISTED``,
   ``TOKEN_NOT_WHITELISTED``;
2. the account: ``INSUFFICIENT_BALANCE`` (no cash), ``BELOW_MINIMUM_THRESHOLD`` (cash under the
   minimum agent balance), ``POSITION_EXISTS`` (one position per token), ``MAX_POSITIONS_EXCEEDED``;
3. the risk limits (our extension, see :func:`risk_breach`): ``DAILY_LOSS_LIMIT``,
   ``MAX_DRAWDOWN_EXCEEDED``;
4. the size: Nexgent's position calculator picks a band from the cash (small, medium, large; under the
   calculator's minimum: ``BELOW_MINIMUM_THRESHOLD``), takes the band's maximum (or a uniform draw in the
   band when randomization is on), and caps it by the per-token purchase limit, the risk limits'
   position size, and the cash above the minimum agent balance. A size under :data:`MIN_PURCHASE`
   after the caps is ``VIOLATES_MINIMUM_BALANCE``.

When the exchange refuses a buy for its price impact, the service retries with :func:`shrink`'s sizes.
Pure functions; the service gathers the :class:`Book` and performs the buy.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Final

from .config import PositionCalculator, RiskLimits, SignalFilters, TradingConfig
from .signals import SignalInput

MIN_PURCHASE: Final = Decimal("0.01")
"""The smallest viable purchase, in the quote currency (Nexgent: 0.01 SOL)."""

QUANTUM: Final = Decimal("1e-8")
"""Sizes are rounded down to this many quote-currency units."""

SHRINK_STEPS: Final = (Decimal("0.9"), Decimal("0.8"), Decimal("0.7"))
"""The shares of the size retried after a ``PRICE_IMPACT_TOO_HIGH`` refusal."""

HUNDRED: Final = Decimal(100)


@dataclass(frozen=True, slots=True)
class Book:
    """One agent's account as the entry checks need it.

    ``open_tokens`` holds the token addresses of its open (or pending) positions and ``open_count``
    their number; ``equity`` is cash plus the positions at their prices; ``day_start_equity`` the
    equity at the day's start (00:00 UTC of the simulated clock) and ``peak_equity`` the highest
    equity seen.
    """

    cash: Decimal
    open_tokens: frozenset[str]
    open_count: int
    equity: Decimal
    day_start_equity: Decimal
    peak_equity: Decimal


@dataclass(frozen=True, slots=True)
class Entry:
    """Buy: spend ``size`` of the quote currency."""

    size: Decimal


@dataclass(frozen=True, slots=True)
class Skip:
    """No buy: a Nexgent error ``code`` and a human ``message`` naming the numbers."""

    code: str
    message: str


def risk_breach(limits: RiskLimits, book: Book) -> Skip | None:
    """The risk limit the book breaches, if any (a None limit is off).

    ``DAILY_LOSS_LIMIT``: the equity lost since the day's start reaches ``daily_loss_limit``.
    ``MAX_DRAWDOWN_EXCEEDED``: the drop from the equity peak reaches ``max_drawdown_percent`` of it.
    """
    if limits.daily_loss_limit is not None:
        lost = book.day_start_equity - book.equity
        if lost >= limits.daily_loss_limit:
            return Skip(
                "DAILY_LOSS_LIMIT",
                f"equity fell {lost} since the day's start ({book.day_start_equity} to "
                f"{book.equity}), reaching the daily loss limit of {limits.daily_loss_limit}",
            )
    if limits.max_drawdown_percent is not None and book.peak_equity > 0:
        drawdown = (book.peak_equity - book.equity) / book.peak_equity * HUNDRED
        if drawdown >= limits.max_drawdown_percent:
            return Skip(
                "MAX_DRAWDOWN_EXCEEDED",
                f"drawdown of {drawdown:.2f}% from the equity peak {book.peak_equity} reaches the "
                f"maximum of {limits.max_drawdown_percent}%",
            )
    return None


def decide_entry(
    signal: SignalInput,
    config: TradingConfig,
    book: Book,
    rng: random.Random | None = None,
) -> Entry | Skip:
    """Whether ``signal`` becomes a buy for the agent whose account is ``book``, and its size.

    ``rng`` draws the size when the position calculator's randomization is on (a fresh, unseeded
    generator when omitted); with randomization off the band's maximum is used.
    """
    skip = _filter(signal, config.signals)
    if skip is not None:
        return skip
    limits = config.purchase_limits
    if book.cash <= 0:
        return Skip("INSUFFICIENT_BALANCE", f"the balance is {book.cash}; there is nothing to spend")
    if book.cash < limits.minimum_agent_balance:
        return Skip(
            "BELOW_MINIMUM_THRESHOLD",
            f"the balance {book.cash} is below the minimum agent balance {limits.minimum_agent_balance}",
        )
    if signal.token_address in book.open_tokens:
        return Skip("POSITION_EXISTS", f"a position in {signal.token_address} is already open")
    risk = config.risk_limits
    if book.open_count >= risk.max_open_positions:
        return Skip(
            "MAX_POSITIONS_EXCEEDED",
            f"{book.open_count} positions are open; the maximum is {risk.max_open_positions}",
        )
    skip = risk_breach(risk, book)
    if skip is not None:
        return skip
    band = _band_size(config.position_calculator, book.cash, rng)
    if isinstance(band, Skip):
        return band
    size = min(band, limits.max_purchase_per_token, book.cash - limits.minimum_agent_balance)
    if risk.max_position_size is not None:
        size = min(size, risk.max_position_size)
    size = _quantize(size)
    if size < MIN_PURCHASE:
        return Skip(
            "VIOLATES_MINIMUM_BALANCE",
            f"a buy of {size} would be below the smallest purchase {MIN_PURCHASE} once the balance "
            f"{book.cash} keeps the minimum agent balance {limits.minimum_agent_balance}",
        )
    return Entry(size)


def shrink(size: Decimal) -> list[Decimal]:
    """The sizes to retry after a ``PRICE_IMPACT_TOO_HIGH`` refusal: 90%, 80%, 70% of ``size``.

    Sizes under :data:`MIN_PURCHASE` are dropped.
    """
    sizes = [_quantize(size * step) for step in SHRINK_STEPS]
    return [s for s in sizes if s >= MIN_PURCHASE]


def _quantize(amount: Decimal) -> Decimal:
    return amount.quantize(QUANTUM, rounding=ROUND_DOWN)


def _filter(signal: SignalInput, filters: SignalFilters) -> Skip | None:
    if signal.signal_strength < filters.min_score:
        return Skip(
            "SIGNAL_BELOW_MIN_SCORE",
            f"signal strength {signal.signal_strength} is below the minimum score {filters.min_score}",
        )
    allowed = {t.casefold() for t in filters.allowed_signal_types}
    if allowed and signal.signal_type.casefold() not in allowed:
        return Skip(
            "SIGNAL_TYPE_NOT_ALLOWED",
            f"signal type {signal.signal_type!r} is not among the allowed types "
            f"{', '.join(filters.allowed_signal_types)}",
        )
    listed = {t.casefold() for t in filters.token_list}
    names = {signal.token_address.casefold()}
    if signal.symbol:
        names.add(signal.symbol.casefold())
    mode = filters.token_filter_mode
    if mode == "blacklist" and names & listed:
        return Skip("TOKEN_BLACKLISTED", f"token {_token(signal)} is on the blacklist")
    if mode == "whitelist" and not names & listed:
        return Skip("TOKEN_NOT_WHITELISTED", f"token {_token(signal)} is not on the whitelist")
    return None


def _token(signal: SignalInput) -> str:
    return f"{signal.symbol} ({signal.token_address})" if signal.symbol else signal.token_address


def _band_size(calculator: PositionCalculator, cash: Decimal, rng: random.Random | None) -> Decimal | Skip:
    thresholds = calculator.balance_thresholds
    sizes = calculator.position_sizes
    if cash < thresholds.minimum:
        return Skip(
            "BELOW_MINIMUM_THRESHOLD",
            f"the balance {cash} is below the position calculator's minimum {thresholds.minimum}",
        )
    if cash < thresholds.medium:
        band = sizes.small
    elif cash < thresholds.large:
        band = sizes.medium
    else:
        band = sizes.large
    if not calculator.randomization:
        return band.max
    draw = (rng or random.Random()).random()
    return band.min + (band.max - band.min) * Decimal(repr(draw))
