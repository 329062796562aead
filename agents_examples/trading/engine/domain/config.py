"""A trading agent's ``tradingConfig``: Nexgent's blocks and defaults, our ``riskLimits``, validation.

The document uses Nexgent's camelCase names (``purchaseLimits.maxPurchasePerToken``,
``stopLoss.trailingLevels[].stopLoss``, …); the dataclasses hold them as snake_case attributes, amounts
and percents as Decimals. :func:`parse_config` merges a document over a base config (blocks and fields
not given keep the base's values; lists replace), refuses unknown names, and validates every field,
collecting all the errors with a dotted path each (``stopLoss.trailingLevels[1].stopLoss``).

Deviations from Nexgent, on purpose:
- ``positionCalculator.randomization.enabled`` defaults to false, so sizes are deterministic.
- ``signals.sources`` (ours): the publishers whose signals the agent follows, ``"self"`` (its own
  user's signals, the default) or ``"user:<gateway user id>"``.
- ``riskLimits`` (ours, names from the Agent Connect seed and freqtrade): ``maxOpenPositions``
  (Nexgent's hard-coded 25, now configurable), ``maxPositionSize``, ``dailyLossLimit``,
  ``maxDrawdownPercent`` (null turns a limit off) and ``closePositionsOnBreach``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

TOKEN_FILTER_MODES: Final = ("none", "blacklist", "whitelist")
STOP_LOSS_MODES: Final = ("fixed", "zones", "custom")
TAKE_PROFIT_MODES: Final = ("aggressive", "moderate", "conservative", "custom")
MAX_SIGNAL_TYPES: Final = 50
MAX_TOKENS: Final = 500
MAX_SOURCES: Final = 32
MAX_LEVELS: Final = 20
# No amount or percent is meaningful beyond this; a bigger number would not survive JSON as a float.
MAX_MAGNITUDE: Final = Decimal(10) ** 12


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid field: its dotted path and what is wrong."""

    field: str
    message: str


class ConfigError(ValueError):
    """A config document that cannot be used; ``errors`` lists every problem found."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        first = errors[0] if errors else FieldError("", "invalid config")
        super().__init__(f"{first.field}: {first.message}")


@dataclass(frozen=True, slots=True)
class PurchaseLimits:
    minimum_agent_balance: Decimal = Decimal("0.5")
    max_purchase_per_token: Decimal = Decimal("2.0")
    max_price_impact: Decimal = Decimal("0.05")


@dataclass(frozen=True, slots=True)
class SignalFilters:
    min_score: int = 1
    allowed_signal_types: tuple[str, ...] = ()
    token_filter_mode: str = "none"  # noqa: S105 (a mode, not a secret)
    token_list: tuple[str, ...] = ()
    sources: tuple[str, ...] = ("self",)


@dataclass(frozen=True, slots=True)
class TrailingLevel:
    change: Decimal
    stop_loss: Decimal


@dataclass(frozen=True, slots=True)
class StopLoss:
    enabled: bool = True
    default_percentage: Decimal = Decimal("-32")
    mode: str = "fixed"
    trailing_levels: tuple[TrailingLevel, ...] = ()


@dataclass(frozen=True, slots=True)
class Band:
    min: Decimal
    max: Decimal


@dataclass(frozen=True, slots=True)
class BalanceThresholds:
    """``solBalanceThresholds``: the balance (quote) bands that pick a position size."""

    minimum: Decimal = Decimal("0.2")
    medium: Decimal = Decimal("5")
    large: Decimal = Decimal("10")


@dataclass(frozen=True, slots=True)
class PositionSizes:
    """``positionSizes``: the size band (quote per buy) of each balance band."""

    small: Band = Band(Decimal("0.1"), Decimal("0.1"))
    medium: Band = Band(Decimal("0.5"), Decimal("1.0"))
    large: Band = Band(Decimal("1.5"), Decimal("2.0"))


@dataclass(frozen=True, slots=True)
class PositionCalculator:
    balance_thresholds: BalanceThresholds = field(default_factory=BalanceThresholds)
    position_sizes: PositionSizes = field(default_factory=PositionSizes)
    randomization: bool = False


@dataclass(frozen=True, slots=True)
class StaleTrade:
    enabled: bool = True
    min_hold_time_minutes: int = 60
    min_profit_percent: Decimal = Decimal("1")
    max_profit_percent: Decimal = Decimal("10")


@dataclass(frozen=True, slots=True)
class TakeProfitLevel:
    target_percent: Decimal
    sell_percent: Decimal


@dataclass(frozen=True, slots=True)
class MoonBag:
    enabled: bool = True
    trigger_percent: Decimal = Decimal("300")
    retain_percent: Decimal = Decimal("10")


def _levels(*pairs: tuple[int, int]) -> tuple[TakeProfitLevel, ...]:
    return tuple(TakeProfitLevel(Decimal(t), Decimal(s)) for t, s in pairs)


# Nexgent's take-profit templates: levels (gain % -> sell % of the original) and the moon bag.
TEMPLATES: Final[dict[str, tuple[tuple[TakeProfitLevel, ...], MoonBag]]] = {
    "aggressive": (
        _levels((25, 25), (50, 25), (100, 25), (150, 15)),
        MoonBag(True, Decimal("100"), Decimal("10")),
    ),
    "moderate": (
        _levels((50, 25), (150, 25), (300, 25), (400, 15)),
        MoonBag(True, Decimal("300"), Decimal("10")),
    ),
    "conservative": (
        _levels((100, 20), (200, 20), (400, 25), (600, 20)),
        MoonBag(True, Decimal("400"), Decimal("15")),
    ),
}


@dataclass(frozen=True, slots=True)
class TakeProfit:
    enabled: bool = False
    mode: str = "moderate"
    levels: tuple[TakeProfitLevel, ...] = TEMPLATES["moderate"][0]
    moon_bag: MoonBag = field(default_factory=MoonBag)


@dataclass(frozen=True, slots=True)
class RiskLimits:
    max_open_positions: int = 25
    max_position_size: Decimal | None = Decimal("2.0")
    daily_loss_limit: Decimal | None = Decimal("1.0")
    max_drawdown_percent: Decimal | None = Decimal("20")
    close_positions_on_breach: bool = False


@dataclass(frozen=True, slots=True)
class TradingConfig:
    purchase_limits: PurchaseLimits = field(default_factory=PurchaseLimits)
    signals: SignalFilters = field(default_factory=SignalFilters)
    stop_loss: StopLoss = field(default_factory=StopLoss)
    position_calculator: PositionCalculator = field(default_factory=PositionCalculator)
    stale_trade: StaleTrade = field(default_factory=StaleTrade)
    take_profit: TakeProfit = field(default_factory=TakeProfit)
    risk_limits: RiskLimits = field(default_factory=RiskLimits)

    def to_doc(self) -> dict[str, Any]:
        """The camelCase document (Decimals stay Decimal; views turn them into JSON numbers)."""
        p, s, sl, pc, st, tp, rl = (
            self.purchase_limits,
            self.signals,
            self.stop_loss,
            self.position_calculator,
            self.stale_trade,
            self.take_profit,
            self.risk_limits,
        )
        return {
            "purchaseLimits": {
                "minimumAgentBalance": p.minimum_agent_balance,
                "maxPurchasePerToken": p.max_purchase_per_token,
                "maxPriceImpact": p.max_price_impact,
            },
            "signals": {
                "minScore": s.min_score,
                "allowedSignalTypes": list(s.allowed_signal_types),
                "tokenFilterMode": s.token_filter_mode,
                "tokenList": list(s.token_list),
                "sources": list(s.sources),
            },
            "stopLoss": {
                "enabled": sl.enabled,
                "defaultPercentage": sl.default_percentage,
                "mode": sl.mode,
                "trailingLevels": [{"change": t.change, "stopLoss": t.stop_loss} for t in sl.trailing_levels],
            },
            "positionCalculator": {
                "solBalanceThresholds": {
                    "minimum": pc.balance_thresholds.minimum,
                    "medium": pc.balance_thresholds.medium,
                    "large": pc.balance_thresholds.large,
                },
                "positionSizes": {
                    name: {"min": band.min, "max": band.max}
                    for name, band in (
                        ("small", pc.position_sizes.small),
                        ("medium", pc.position_sizes.medium),
                        ("large", pc.position_sizes.large),
                    )
                },
                "randomization": {"enabled": pc.randomization},
            },
            "staleTrade": {
                "enabled": st.enabled,
                "minHoldTimeMinutes": st.min_hold_time_minutes,
                "minProfitPercent": st.min_profit_percent,
                "maxProfitPercent": st.max_profit_percent,
            },
            "takeProfit": {
                "enabled": tp.enabled,
                "mode": tp.mode,
                "levels": [
                    {"targetPercent": lv.target_percent, "sellPercent": lv.sell_percent} for lv in tp.levels
                ],
                "moonBag": {
                    "enabled": tp.moon_bag.enabled,
                    "triggerPercent": tp.moon_bag.trigger_percent,
                    "retainPercent": tp.moon_bag.retain_percent,
                },
            },
            "riskLimits": {
                "maxOpenPositions": rl.max_open_positions,
                "maxPositionSize": rl.max_position_size,
                "dailyLossLimit": rl.daily_loss_limit,
                "maxDrawdownPercent": rl.max_drawdown_percent,
                "closePositionsOnBreach": rl.close_positions_on_breach,
            },
        }


def default_config() -> TradingConfig:
    """Nexgent's defaults plus ours (module doc)."""
    return TradingConfig()


# ---------------------------------------------------------------------------------------------- parsing

_MISSING: Final = object()


class _Reader:
    """Reads one merged document, recording errors instead of raising at the first."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def fail(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    def block(self, doc: dict[str, Any], name: str, known: set[str]) -> dict[str, Any]:
        value = doc.get(name, {})
        if not isinstance(value, dict):
            self.fail(name, "must be an object")
            return {}
        for key in _unknown(value, known):
            self.fail(f"{name}.{key}", "unknown field")
        return value

    def number(
        self,
        value: object,
        path: str,
        *,
        low: Decimal | None = None,
        high: Decimal | None = None,
        low_open: bool = False,
        nullable: bool = False,
    ) -> Decimal | None:
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            self.fail(path, "must be a number" + (" or null" if nullable else ""))
            return None
        number = _decimal(value)
        if number is None:
            self.fail(path, "must be a finite number")
            return None
        if abs(number) > MAX_MAGNITUDE:
            self.fail(path, f"must be at most {MAX_MAGNITUDE:,} in size")
            return None
        if low is not None and (number < low or (low_open and number == low)):
            self.fail(path, self._range(low, high, low_open))
            return None
        if high is not None and number > high:
            self.fail(path, self._range(low, high, low_open))
            return None
        return number

    @staticmethod
    def _range(low: Decimal | None, high: Decimal | None, low_open: bool) -> str:
        if low is not None and high is not None:
            if not low_open:
                return f"must be between {low} and {high}"
            return f"must be above {low} and at most {high}"
        if low is not None:
            return f"must be {'above' if low_open else 'at least'} {low}"
        return f"must be at most {high}"

    def integer(self, value: object, path: str, low: int, high: int) -> int | None:
        """An integer in [low, high]; an integral float or Decimal (``60.0``) counts as one."""
        number = None
        if not isinstance(value, bool) and isinstance(value, int | float | Decimal):
            number = _decimal(value)
        if number is None or number != number.to_integral_value() or not low <= number <= high:
            self.fail(path, f"must be an integer from {low} to {high}")
            return None
        return int(number)

    def flag(self, value: object, path: str) -> bool | None:
        if not isinstance(value, bool):
            self.fail(path, "must be true or false")
            return None
        return value

    def choice(self, value: object, path: str, allowed: tuple[str, ...]) -> str | None:
        if value not in allowed:
            self.fail(path, "must be one of " + ", ".join(repr(a) for a in allowed))
            return None
        return str(value)

    def strings(self, value: object, path: str, most: int, longest: int) -> tuple[str, ...] | None:
        if not isinstance(value, list):
            self.fail(path, "must be a list of strings")
            return None
        if len(value) > most:
            self.fail(path, f"must have at most {most} entries")
            return None
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or not 0 < len(item.strip()) <= longest:
                self.fail(f"{path}[{i}]", f"must be a string of 1 to {longest} characters")
                continue
            out.append(item.strip())
        return tuple(out)

    def objects(self, value: object, path: str, known: set[str]) -> list[dict[str, Any]] | None:
        if not isinstance(value, list):
            self.fail(path, "must be a list of objects")
            return None
        if len(value) > MAX_LEVELS:
            self.fail(path, f"must have at most {MAX_LEVELS} entries")
            return None
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                self.fail(f"{path}[{i}]", "must be an object")
                continue
            for key in _unknown(item, known):
                self.fail(f"{path}[{i}].{key}", "unknown field")
            out.append(item)
        return out


_BLOCKS: Final = {
    "purchaseLimits": {"minimumAgentBalance", "maxPurchasePerToken", "maxPriceImpact"},
    "signals": {"minScore", "allowedSignalTypes", "tokenFilterMode", "tokenList", "sources"},
    "stopLoss": {"enabled", "defaultPercentage", "mode", "trailingLevels"},
    "positionCalculator": {"solBalanceThresholds", "positionSizes", "randomization"},
    "staleTrade": {"enabled", "minHoldTimeMinutes", "minProfitPercent", "maxProfitPercent"},
    "takeProfit": {"enabled", "mode", "levels", "moonBag"},
    "riskLimits": {
        "maxOpenPositions",
        "maxPositionSize",
        "dailyLossLimit",
        "maxDrawdownPercent",
        "closePositionsOnBreach",
    },
}


def _decimal(value: int | float | Decimal) -> Decimal | None:
    """``value`` as a Decimal (a float through ``str``, so 0.1 stays 0.1); None when not finite."""
    if isinstance(value, float):
        return Decimal(str(value)) if math.isfinite(value) else None
    number = Decimal(value)  # exact for an int of any size (no str round trip and its digit limit)
    return number if number.is_finite() else None


def _unknown(obj: dict[Any, Any], known: set[str]) -> list[str]:
    """The names in ``obj`` that are not ``known``, in a stable order (any key type)."""
    return sorted(str(key) for key in obj if key not in known)


def _merge(base: Any, update: Any) -> Any:
    """``update`` deep-merged over ``base`` (objects merge, anything else replaces)."""
    if isinstance(base, dict) and isinstance(update, dict):
        merged = dict(base)
        for key, value in update.items():
            merged[key] = _merge(base.get(key, _MISSING), value) if key in base else value
        return merged
    return update


def parse_config(doc: object, base: TradingConfig | None = None) -> TradingConfig:
    """``doc`` merged over ``base`` (the defaults), validated; ConfigError lists every problem."""
    if not isinstance(doc, dict):
        raise ConfigError([FieldError("", "the config must be a JSON object")])
    reader = _Reader()
    for name in _unknown(doc, set(_BLOCKS)):
        reader.fail(name, "unknown block")
    known = {name: value for name, value in doc.items() if name in _BLOCKS}
    merged = _merge((base or default_config()).to_doc(), known)
    config = _read(reader, merged)
    if reader.errors or config is None:
        raise ConfigError(reader.errors or [FieldError("", "invalid config")])
    return config


def _read(r: _Reader, doc: dict[str, Any]) -> TradingConfig | None:  # noqa: PLR0915
    zero, hundred = Decimal(0), Decimal(100)
    # purchaseLimits
    b = r.block(doc, "purchaseLimits", _BLOCKS["purchaseLimits"])
    minimum = r.number(b.get("minimumAgentBalance"), "purchaseLimits.minimumAgentBalance", low=Decimal("0.1"))
    per_token = r.number(
        b.get("maxPurchasePerToken"), "purchaseLimits.maxPurchasePerToken", low=zero, low_open=True
    )
    impact = r.number(
        b.get("maxPriceImpact"), "purchaseLimits.maxPriceImpact", low=zero, high=Decimal(1), low_open=True
    )
    # signals
    b = r.block(doc, "signals", _BLOCKS["signals"])
    min_score = r.integer(b.get("minScore"), "signals.minScore", 1, 5)
    types = r.strings(b.get("allowedSignalTypes"), "signals.allowedSignalTypes", MAX_SIGNAL_TYPES, 50)
    filter_mode = r.choice(b.get("tokenFilterMode"), "signals.tokenFilterMode", TOKEN_FILTER_MODES)
    tokens = r.strings(b.get("tokenList"), "signals.tokenList", MAX_TOKENS, 255)
    sources = r.strings(b.get("sources"), "signals.sources", MAX_SOURCES, 261)
    if sources is not None:
        if not sources:
            r.fail("signals.sources", "must name at least one publisher ('self' or 'user:<id>')")
        for i, source in enumerate(sources):
            if source != "self" and not (source.startswith("user:") and 0 < len(source) - 5 <= 256):
                r.fail(f"signals.sources[{i}]", "must be 'self' or 'user:<gateway user id>'")
    # stopLoss
    b = r.block(doc, "stopLoss", _BLOCKS["stopLoss"])
    sl_enabled = r.flag(b.get("enabled"), "stopLoss.enabled")
    default_pct = r.number(
        b.get("defaultPercentage"), "stopLoss.defaultPercentage", low=Decimal(-100), high=zero
    )
    sl_mode = r.choice(b.get("mode"), "stopLoss.mode", STOP_LOSS_MODES)
    trailing: list[TrailingLevel] = []
    raw_levels = r.objects(b.get("trailingLevels"), "stopLoss.trailingLevels", {"change", "stopLoss"})
    for i, item in enumerate(raw_levels or []):
        path = f"stopLoss.trailingLevels[{i}]"
        change = r.number(item.get("change"), f"{path}.change", low=zero, low_open=True)
        stop = r.number(item.get("stopLoss"), f"{path}.stopLoss", low=Decimal(-100))
        if change is not None and stop is not None:
            if stop >= change:
                r.fail(f"{path}.stopLoss", "must be below the level's change")
            else:
                trailing.append(TrailingLevel(change, stop))
    if sl_mode == "custom" and raw_levels is not None and not raw_levels:
        r.fail("stopLoss.trailingLevels", "custom mode needs at least one level")
    trailing.sort(key=lambda t: t.change, reverse=True)
    # positionCalculator
    b = r.block(doc, "positionCalculator", _BLOCKS["positionCalculator"])
    thresholds = b.get("solBalanceThresholds", {})
    sizes = b.get("positionSizes", {})
    rand = b.get("randomization", {})
    th: dict[str, Decimal | None] = {}
    bands: dict[str, Band | None] = {}
    if not isinstance(thresholds, dict):
        r.fail("positionCalculator.solBalanceThresholds", "must be an object")
        thresholds = {}
    for key in _unknown(thresholds, {"minimum", "medium", "large"}):
        r.fail(f"positionCalculator.solBalanceThresholds.{key}", "unknown field")
    for key in ("minimum", "medium", "large"):
        th[key] = r.number(
            thresholds.get(key), f"positionCalculator.solBalanceThresholds.{key}", low=zero, low_open=True
        )
    if all(th.values()) and not th["minimum"] < th["medium"] < th["large"]:  # type: ignore[operator]
        r.fail("positionCalculator.solBalanceThresholds", "must rise: minimum < medium < large")
    if not isinstance(sizes, dict):
        r.fail("positionCalculator.positionSizes", "must be an object")
        sizes = {}
    for key in _unknown(sizes, {"small", "medium", "large"}):
        r.fail(f"positionCalculator.positionSizes.{key}", "unknown field")
    for key in ("small", "medium", "large"):
        path = f"positionCalculator.positionSizes.{key}"
        band = sizes.get(key)
        if not isinstance(band, dict):
            r.fail(path, "must be an object {min, max}")
            bands[key] = None
            continue
        for extra in _unknown(band, {"min", "max"}):
            r.fail(f"{path}.{extra}", "unknown field")
        low = r.number(band.get("min"), f"{path}.min", low=zero, low_open=True)
        high = r.number(band.get("max"), f"{path}.max", low=zero, low_open=True)
        if low is not None and high is not None and low > high:
            r.fail(f"{path}.max", "must be at least min")
        bands[key] = Band(low, high) if low is not None and high is not None else None
    randomize: bool | None = None
    if not isinstance(rand, dict):
        r.fail("positionCalculator.randomization", "must be an object")
    else:
        for key in _unknown(rand, {"enabled"}):
            r.fail(f"positionCalculator.randomization.{key}", "unknown field")
        randomize = r.flag(rand.get("enabled"), "positionCalculator.randomization.enabled")
    # staleTrade
    b = r.block(doc, "staleTrade", _BLOCKS["staleTrade"])
    st_enabled = r.flag(b.get("enabled"), "staleTrade.enabled")
    hold = r.integer(b.get("minHoldTimeMinutes"), "staleTrade.minHoldTimeMinutes", 1, 525_600)
    st_min = r.number(b.get("minProfitPercent"), "staleTrade.minProfitPercent", low=Decimal(-100))
    st_max = r.number(b.get("maxProfitPercent"), "staleTrade.maxProfitPercent", low=Decimal(-100))
    if st_min is not None and st_max is not None and st_min > st_max:
        r.fail("staleTrade.maxProfitPercent", "must be at least minProfitPercent")
    # takeProfit
    b = r.block(doc, "takeProfit", _BLOCKS["takeProfit"])
    tp_enabled = r.flag(b.get("enabled"), "takeProfit.enabled")
    tp_mode = r.choice(b.get("mode"), "takeProfit.mode", TAKE_PROFIT_MODES)
    bag_doc = b.get("moonBag", {})
    if not isinstance(bag_doc, dict):
        r.fail("takeProfit.moonBag", "must be an object")
        bag_doc = {}
    for key in _unknown(bag_doc, {"enabled", "triggerPercent", "retainPercent"}):
        r.fail(f"takeProfit.moonBag.{key}", "unknown field")
    bag_enabled = r.flag(bag_doc.get("enabled"), "takeProfit.moonBag.enabled")
    trigger = r.number(
        bag_doc.get("triggerPercent"), "takeProfit.moonBag.triggerPercent", low=zero, low_open=True
    )
    retain = r.number(
        bag_doc.get("retainPercent"),
        "takeProfit.moonBag.retainPercent",
        low=zero,
        high=hundred,
        low_open=True,
    )
    tp_levels: list[TakeProfitLevel] = []
    raw_tp = r.objects(b.get("levels"), "takeProfit.levels", {"targetPercent", "sellPercent"})
    for i, item in enumerate(raw_tp or []):
        path = f"takeProfit.levels[{i}]"
        target = r.number(item.get("targetPercent"), f"{path}.targetPercent", low=zero, low_open=True)
        sell = r.number(item.get("sellPercent"), f"{path}.sellPercent", low=zero, high=hundred, low_open=True)
        if target is not None and sell is not None:
            if tp_mode == "custom" and tp_levels and target <= tp_levels[-1].target_percent:
                r.fail(f"{path}.targetPercent", "must be above the previous level's")
            tp_levels.append(TakeProfitLevel(target, sell))
    moon = MoonBag(bool(bag_enabled), trigger or Decimal("300"), retain or Decimal("10"))
    if tp_mode in TEMPLATES:
        template_levels, template_bag = TEMPLATES[tp_mode]
        tp_levels, moon = list(template_levels), template_bag
    elif tp_mode == "custom":
        if raw_tp is not None and not raw_tp:
            r.fail("takeProfit.levels", "custom mode needs at least one level")
        total = sum((lv.sell_percent for lv in tp_levels), zero) + (
            moon.retain_percent if moon.enabled else zero
        )
        if total > hundred:
            r.fail(
                "takeProfit.levels", f"sells plus the moon bag must total at most 100% (they total {total}%)"
            )
    # riskLimits
    b = r.block(doc, "riskLimits", _BLOCKS["riskLimits"])
    max_open = r.integer(b.get("maxOpenPositions"), "riskLimits.maxOpenPositions", 1, 1000)
    max_size = r.number(
        b.get("maxPositionSize"), "riskLimits.maxPositionSize", low=zero, low_open=True, nullable=True
    )
    daily = r.number(
        b.get("dailyLossLimit"), "riskLimits.dailyLossLimit", low=zero, low_open=True, nullable=True
    )
    drawdown = r.number(
        b.get("maxDrawdownPercent"),
        "riskLimits.maxDrawdownPercent",
        low=zero,
        high=hundred,
        low_open=True,
        nullable=True,
    )
    close_all = r.flag(b.get("closePositionsOnBreach"), "riskLimits.closePositionsOnBreach")
    if r.errors:
        return None
    assert minimum is not None and per_token is not None and impact is not None
    assert min_score is not None and types is not None and filter_mode is not None
    assert tokens is not None and sources is not None and sl_enabled is not None
    assert default_pct is not None and sl_mode is not None and randomize is not None
    assert st_enabled is not None and hold is not None and st_min is not None and st_max is not None
    assert tp_enabled is not None and tp_mode is not None and max_open is not None
    assert close_all is not None
    small, medium, large = bands["small"], bands["medium"], bands["large"]
    assert small is not None and medium is not None and large is not None
    return TradingConfig(
        purchase_limits=PurchaseLimits(minimum, per_token, impact),
        signals=SignalFilters(min_score, types, filter_mode, tokens, sources),
        stop_loss=StopLoss(sl_enabled, default_pct, sl_mode, tuple(trailing)),
        position_calculator=PositionCalculator(
            BalanceThresholds(
                th["minimum"] or Decimal("0.2"), th["medium"] or Decimal("5"), th["large"] or Decimal("10")
            ),
            PositionSizes(small, medium, large),
            randomize,
        ),
        stale_trade=StaleTrade(st_enabled, hold, st_min, st_max),
        take_profit=TakeProfit(tp_enabled, tp_mode, tuple(tp_levels), moon),
        risk_limits=RiskLimits(max_open, max_size, daily, drawdown, close_all),
    )


__all__ = [
    "TEMPLATES",
    "BalanceThresholds",
    "Band",
    "ConfigError",
    "FieldError",
    "MoonBag",
    "PositionCalculator",
    "PositionSizes",
    "PurchaseLimits",
    "RiskLimits",
    "SignalFilters",
    "StaleTrade",
    "StopLoss",
    "TakeProfit",
    "TakeProfitLevel",
    "TradingConfig",
    "TrailingLevel",
    "default_config",
    "parse_config",
]
