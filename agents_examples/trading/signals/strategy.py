"""The signal agent's strategy: a moving-average crossover per instrument, with a volume filter.

Pure and deterministic (standard library only, exact Decimal arithmetic in a fixed context, no clock,
no I/O): the same bars in the same order give the same signals, so the live agent and a backtest share
it. Each call to :meth:`Strategy.on_bar` is one bar close of one instrument.

The rules, per instrument (docs/trading.md, "The signal agent"):

1. **Moving averages.** ``fast`` and ``slow`` are the simple means of the last ``fastWindow`` and
   ``slowWindow`` closes, the current bar's included. Until ``slowWindow`` closes have been seen
   (warm-up) nothing is emitted.
2. **Side.** The side of a bar is +1 when ``fast > slow``, -1 when ``fast < slow``; a bar where they are
   equal keeps the previous side. A **cross up** is a bar whose side is +1 after a side of -1 (``buy``),
   a **cross down** the reverse (``sell``). The first bar after the warm-up only sets the side.
3. **Strength** (1 to 5) grows with the gap ``|fast - slow| / slow`` in percent at the crossing bar: below
   0.1 % is 1, below 0.25 % is 2, below 0.5 % is 3, below 1 % is 4, 1 % and more is 5
   (:data:`STRENGTH_BANDS`).
4. **Filters**, in this order; a cross a filter drops is spent (the next signal needs a new cross):
   - **volume**: the bar's volume must be at least ``volumeFactor`` times the mean volume of the same
     ``slowWindow`` bars. The filter is skipped when any of those bars carried no volume (price events
     without one); ``volumeFactor`` 0 turns it off.
   - **cooldown**: after a signal, the next ``cooldownBars`` bars of that instrument emit nothing.
   - **strength**: a signal weaker than ``minStrength`` is dropped.
5. ``symbols`` (empty: every instrument) limits which instruments are followed; the bars of the others
   are ignored.

:class:`StrategyConfig` holds the parameters; :meth:`StrategyConfig.from_doc` reads them from a JSON
document (camelCase names) and raises :class:`ConfigError` listing every invalid field.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Context, Decimal, InvalidOperation
from typing import Any, Final

MAX_WINDOW: Final = 1000
MAX_COOLDOWN: Final = 100_000
MAX_SYMBOLS: Final = 100
MAX_VOLUME_FACTOR: Final = Decimal(1000)
SOURCE: Final = "signal-agent:ma-crossover"
STRENGTH_BANDS: Final = (Decimal("0.1"), Decimal("0.25"), Decimal("0.5"), Decimal("1.0"))
"""Gap thresholds in percent: a gap below the k-th threshold (0-based) is strength k + 1; above all, 5."""
FIELDS: Final = ("fastWindow", "slowWindow", "volumeFactor", "cooldownBars", "symbols", "minStrength")

_MATH: Final = Context(prec=28)  # one fixed context: the results never depend on the caller's
_HUNDRED: Final = Decimal(100)
_GAP_PLACES: Final = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid field: its name (``symbols[2]`` for an item) and what is wrong."""

    field: str
    message: str


class ConfigError(ValueError):
    """A strategy config document that cannot be used; ``errors`` lists every problem found."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(f"{e.field}: {e.message}" if e.field else e.message for e in errors))


@dataclass(frozen=True, slots=True)
class StrategyConfig:
    """The strategy's parameters (module doc). Build one with :meth:`from_doc` to have it validated;
    the constructor checks the same rules."""

    fast_window: int = 5
    slow_window: int = 20
    volume_factor: Decimal = Decimal("1.0")
    cooldown_bars: int = 0
    symbols: tuple[str, ...] = ()
    min_strength: int = 1

    def __post_init__(self) -> None:
        errors = _check(self)
        if errors:
            raise ConfigError(errors)

    @classmethod
    def from_doc(cls, doc: object, base: StrategyConfig | None = None) -> StrategyConfig:
        """The config ``doc`` describes: its fields over ``base`` (default: the defaults), so a
        partial document is an update. Unknown fields and wrong types are errors."""
        start = base or cls()
        if not isinstance(doc, Mapping):
            raise ConfigError([FieldError("", "the strategy config must be a JSON object")])
        errors = [FieldError(str(name), "unknown field") for name in doc if name not in FIELDS]
        values: dict[str, Any] = {}
        for name, attr, read in (
            ("fastWindow", "fast_window", _window),
            ("slowWindow", "slow_window", _window),
            ("volumeFactor", "volume_factor", _factor),
            ("cooldownBars", "cooldown_bars", _cooldown),
            ("symbols", "symbols", _symbols),
            ("minStrength", "min_strength", _strength),
        ):
            if name in doc:
                found = read(name, doc[name], errors)
                if found is not None:
                    values[attr] = found
        fast = values.get("fast_window", start.fast_window)
        slow = values.get("slow_window", start.slow_window)
        if not errors and fast >= slow:
            if "slowWindow" in doc:
                errors.append(FieldError("slowWindow", f"must be greater than fastWindow ({fast})"))
            else:
                errors.append(FieldError("fastWindow", f"must be less than slowWindow ({slow})"))
        if errors:
            raise ConfigError(errors)
        return replace(start, **values)

    def to_doc(self) -> dict[str, Any]:
        """The config as a document with the camelCase names (``volumeFactor`` a Decimal)."""
        return {
            "fastWindow": self.fast_window,
            "slowWindow": self.slow_window,
            "volumeFactor": self.volume_factor,
            "cooldownBars": self.cooldown_bars,
            "symbols": list(self.symbols),
            "minStrength": self.min_strength,
        }

    def follows(self, symbol: str) -> bool:
        """Whether bars of ``symbol`` are followed."""
        return not self.symbols or symbol.upper() in self.symbols


def _integer(name: str, value: object, low: int, high: int, errors: list[FieldError]) -> int | None:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON's 5.0 is 5
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        errors.append(FieldError(name, f"must be an integer from {low} to {high}"))
        return None
    return value


def _window(name: str, value: object, errors: list[FieldError]) -> int | None:
    return _integer(name, value, 1, MAX_WINDOW, errors)


def _cooldown(name: str, value: object, errors: list[FieldError]) -> int | None:
    return _integer(name, value, 0, MAX_COOLDOWN, errors)


def _strength(name: str, value: object, errors: list[FieldError]) -> int | None:
    return _integer(name, value, 1, 5, errors)


def _factor(name: str, value: object, errors: list[FieldError]) -> Decimal | None:
    number: Decimal | None = None
    if not isinstance(value, bool) and isinstance(value, int | float | str | Decimal):
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            number = None
    if number is None or not number.is_finite() or not 0 <= number <= MAX_VOLUME_FACTOR:
        errors.append(FieldError(name, f"must be a number from 0 to {MAX_VOLUME_FACTOR}"))
        return None
    return number


def _symbols(name: str, value: object, errors: list[FieldError]) -> tuple[str, ...] | None:
    if not isinstance(value, list) or len(value) > MAX_SYMBOLS:
        errors.append(FieldError(name, f"must be a list of at most {MAX_SYMBOLS} symbols (empty: all)"))
        return None
    found: list[str] = []
    before = len(errors)
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip() or len(item.strip()) > 50:
            errors.append(FieldError(f"{name}[{i}]", "must be a non-empty symbol of at most 50 characters"))
        elif item.strip().upper() not in found:
            found.append(item.strip().upper())
    return tuple(found) if len(errors) == before else None


def _check(config: StrategyConfig) -> list[FieldError]:
    """The rules a whole config obeys (the field checks again, and the fields together)."""
    errors: list[FieldError] = []
    _window("fastWindow", config.fast_window, errors)
    _window("slowWindow", config.slow_window, errors)
    _factor("volumeFactor", config.volume_factor, errors)
    _cooldown("cooldownBars", config.cooldown_bars, errors)
    _strength("minStrength", config.min_strength, errors)
    if not isinstance(config.symbols, tuple) or any(
        not isinstance(s, str) or s != s.strip().upper() or not s for s in config.symbols
    ):
        errors.append(FieldError("symbols", "must be upper-case symbols"))
    if not errors and config.fast_window >= config.slow_window:
        errors.append(FieldError("slowWindow", f"must be greater than fastWindow ({config.fast_window})"))
    return errors


def strength_of(gap_percent: Decimal) -> int:
    """The strength (1 to 5) of a gap in percent (:data:`STRENGTH_BANDS`)."""
    for level, threshold in enumerate(STRENGTH_BANDS, start=1):
        if gap_percent < threshold:
            return level
    return len(STRENGTH_BANDS) + 1


@dataclass(frozen=True, slots=True)
class Signal:
    """One signal the strategy emitted, with the figures that made it."""

    symbol: str
    token_address: str
    signal_type: str  # "buy" or "sell"
    strength: int
    fast: Decimal
    slow: Decimal
    gap_percent: Decimal  # |fast - slow| / slow x 100, rounded half-even to 4 places
    close: Decimal
    volume: Decimal | None
    mean_volume: Decimal | None  # the slow window's mean volume when the filter applied
    ts_ms: int
    source: str = SOURCE

    @property
    def reason(self) -> str:
        """Why it fired, in words (the signal's ``activationReason``, at most 500 characters)."""
        direction = "above" if self.signal_type == "buy" else "below"
        text = (
            f"fast MA {_plain(self.fast)} crossed {direction} slow MA {_plain(self.slow)} "
            f"(gap {_plain(self.gap_percent)}%) at close {_plain(self.close)}"
        )
        if self.volume is not None and self.mean_volume is not None:
            text += f", volume {_plain(self.volume)} vs mean {_plain(self.mean_volume)}"
        return text[:500]

    def to_doc(self) -> dict[str, Any]:
        """The engine's signal body: ``{tokenAddress, symbol, signalType, signalStrength,
        activationReason, source}``."""
        return {
            "tokenAddress": self.token_address,
            "symbol": self.symbol,
            "signalType": self.signal_type,
            "signalStrength": self.strength,
            "activationReason": self.reason,
            "source": self.source,
        }


def _plain(value: Decimal) -> str:
    """A Decimal in plain notation, without an exponent or trailing zeros."""
    text = format(value.normalize(_MATH), "f")
    return text if text != "-0" else "0"


@dataclass(slots=True)
class _Track:
    """One instrument's state: its recent closes and volumes, its side, bars since its last signal."""

    closes: deque[Decimal]
    volumes: deque[Decimal | None]
    side: int = 0
    since_signal: int | None = None  # None: no signal yet


class Strategy:
    """The crossover over a stream of bar closes (module doc). ``source`` goes into each signal."""

    def __init__(self, config: StrategyConfig | None = None, *, source: str = SOURCE) -> None:
        self.config = config or StrategyConfig()
        self.source = source
        self._tracks: dict[str, _Track] = {}

    def reconfigure(self, config: StrategyConfig) -> None:
        """Use ``config`` from the next bar on. Each instrument keeps its most recent closes (as many as
        the new slow window holds; a longer window warms up again) and its cooldown; its side is
        worked out again from the kept closes."""
        self.config = config
        for symbol, track in list(self._tracks.items()):
            if not config.follows(symbol):
                del self._tracks[symbol]
                continue
            kept = _Track(
                deque(track.closes, maxlen=config.slow_window),
                deque(track.volumes, maxlen=config.slow_window),
                since_signal=track.since_signal,
            )
            if len(kept.closes) == config.slow_window:
                kept.side = _side(*self._averages(kept), 0)
            self._tracks[symbol] = kept

    def on_bar(
        self, symbol: str, token_address: str, close: Decimal, volume: Decimal | None, ts_ms: int
    ) -> Signal | None:
        """Take one bar close of ``symbol``; the signal it triggers, if any."""
        config = self.config
        if not config.follows(symbol):
            return None
        track = self._tracks.get(symbol)
        if track is None:
            track = _Track(deque(maxlen=config.slow_window), deque(maxlen=config.slow_window))
            self._tracks[symbol] = track
        track.closes.append(close)
        track.volumes.append(volume)
        if track.since_signal is not None:
            track.since_signal += 1
        if len(track.closes) < config.slow_window:
            return None
        fast, slow = self._averages(track)
        before, track.side = track.side, _side(fast, slow, track.side)
        if before in (0, track.side) or slow <= 0:
            return None
        signal_type = "buy" if track.side > 0 else "sell"
        gap = _MATH.divide(_MATH.multiply(_MATH.abs(_MATH.subtract(fast, slow)), _HUNDRED), slow)
        mean_volume = _mean_volume(track.volumes)
        if (
            mean_volume is not None
            and volume is not None
            and volume < _MATH.multiply(config.volume_factor, mean_volume)
        ):
            return None
        if track.since_signal is not None and track.since_signal <= config.cooldown_bars:
            return None
        strength = strength_of(gap)
        if strength < config.min_strength:
            return None
        track.since_signal = 0
        return Signal(
            symbol=symbol,
            token_address=token_address,
            signal_type=signal_type,
            strength=strength,
            fast=fast,
            slow=slow,
            gap_percent=gap.quantize(_GAP_PLACES, context=_MATH),
            close=close,
            volume=volume,
            mean_volume=mean_volume,
            ts_ms=ts_ms,
            source=self.source,
        )

    def _averages(self, track: _Track) -> tuple[Decimal, Decimal]:
        closes = list(track.closes)
        fast_window = self.config.fast_window
        return _mean(closes[-fast_window:]), _mean(closes)


def _side(fast: Decimal, slow: Decimal, previous: int) -> int:
    if fast > slow:
        return 1
    if fast < slow:
        return -1
    return previous


def _mean(values: Sequence[Decimal]) -> Decimal:
    total = Decimal(0)
    for value in values:
        total = _MATH.add(total, value)
    return _MATH.divide(total, Decimal(len(values)))


def _mean_volume(volumes: deque[Decimal | None]) -> Decimal | None:
    """The window's mean volume; None when a bar in it carried none (the filter is then skipped)."""
    known = [v for v in volumes if v is not None]
    if not known or len(known) < len(volumes):
        return None
    return _mean(known)
