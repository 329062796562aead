"""The backtest's config file: the trading agent's ``tradingConfig``, the strategy's block, the balance.

``--config file.json`` holds one JSON object::

    {"tradingConfig": {...}, "strategy": {...}, "startingBalance": 10000}

- ``tradingConfig`` is the engine's own document (docs/trading.md, "Trading agents, wallets, config"),
  merged over Nexgent's defaults and validated by the engine's parser, every error with its path.
  Two rules make a backtest repeatable and self-contained: ``positionCalculator.randomization.enabled``
  must stay false (random sizes would differ from run to run), and the strategy's signals are posted
  as the trading agent's own user, so ``signals.sources`` is set to ``["self"]``.
- ``strategy`` is the signal agent's strategy block (``fastWindow``, ``slowWindow``, ``volumeFactor``,
  ``cooldownBars``, ``symbols``, ``minStrength``; :class:`StrategyConfig`), validated by the strategy
  itself, its defaults for what is left out.
- ``startingBalance`` (quote currency, default 10,000) funds the trading agent; the exchange account
  behind it gets the same cash.

Every key is optional; without ``--config`` :data:`DEFAULT_DOC` is used, a config sized for a 10,000 USD
account (Nexgent's defaults buy 2 USD positions).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from agents_examples.trading.backtest.market import BacktestError
from agents_examples.trading.engine.domain.config import ConfigError, TradingConfig, parse_config
from agents_examples.trading.signals.strategy import ConfigError as StrategyConfigError
from agents_examples.trading.signals.strategy import StrategyConfig

DEFAULT_STARTING_BALANCE: Final = Decimal(10_000)
MAX_STARTING_BALANCE: Final = Decimal(10**12)
MAX_CONFIG_BYTES: Final = 1 << 20
KEYS: Final = frozenset({"tradingConfig", "strategy", "startingBalance"})

DEFAULT_DOC: Final[dict[str, Any]] = {
    "startingBalance": 10_000,
    "tradingConfig": {
        "purchaseLimits": {"minimumAgentBalance": 100, "maxPurchasePerToken": 2_000},
        "positionCalculator": {
            "solBalanceThresholds": {"minimum": 100, "medium": 1_000, "large": 5_000},
            "positionSizes": {
                "small": {"min": 100, "max": 100},
                "medium": {"min": 500, "max": 500},
                "large": {"min": 2_000, "max": 2_000},
            },
        },
        "stopLoss": {"enabled": True, "defaultPercentage": -3, "mode": "fixed"},
        "takeProfit": {
            "enabled": True,
            "mode": "custom",
            "levels": [{"targetPercent": 3, "sellPercent": 50}, {"targetPercent": 6, "sellPercent": 50}],
            "moonBag": {"enabled": False},
        },
        "staleTrade": {
            "enabled": True,
            "minHoldTimeMinutes": 240,
            "minProfitPercent": 0.5,
            "maxProfitPercent": 3,
        },
        "riskLimits": {"maxPositionSize": 2_000, "dailyLossLimit": 500, "maxDrawdownPercent": 25},
    },
    "strategy": {"fastWindow": 20, "slowWindow": 60, "cooldownBars": 30},
}
"""The config used without ``--config`` (``--print-config`` writes it, to start a file from)."""


@dataclass(frozen=True, slots=True)
class BacktestConfig:
    """A parsed config file: the engine's config and the document it is parsed from (the file's, with
    ``signals.sources`` set), the strategy's config, the starting balance."""

    trading: TradingConfig
    trading_doc: dict[str, Any]
    strategy: StrategyConfig
    starting_balance: Decimal


def parse(doc: object) -> BacktestConfig:
    """``doc`` as a :class:`BacktestConfig`; BacktestError listing what is wrong."""
    if not isinstance(doc, dict):
        raise BacktestError("the config must be a JSON object {tradingConfig, strategy, startingBalance}")
    unknown = sorted(str(key) for key in doc if key not in KEYS)
    if unknown:
        raise BacktestError(
            f"unknown config key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
            f"expected {', '.join(sorted(KEYS))}"
        )
    trading_doc = doc.get("tradingConfig", {})
    if not isinstance(trading_doc, dict):
        raise BacktestError("tradingConfig must be a JSON object")
    strategy_doc = doc.get("strategy", {})
    if not isinstance(strategy_doc, dict):
        raise BacktestError("strategy must be a JSON object")
    balance = _balance(doc.get("startingBalance", DEFAULT_STARTING_BALANCE))
    signals = trading_doc.get("signals", {})
    if not isinstance(signals, dict):
        raise BacktestError("tradingConfig.signals must be a JSON object")
    merged = {**trading_doc, "signals": {**signals, "sources": ["self"]}}
    try:
        trading = parse_config(merged)
    except ConfigError as error:
        problems = "; ".join(f"tradingConfig.{e.field}: {e.message}" for e in error.errors)
        raise BacktestError(f"invalid tradingConfig: {problems}") from None
    if trading.position_calculator.randomization:
        raise BacktestError(
            "tradingConfig.positionCalculator.randomization.enabled must be false in a backtest "
            "(random position sizes would make every run differ)"
        )
    try:
        strategy = StrategyConfig.from_doc(strategy_doc)
    except StrategyConfigError as error:
        problems = "; ".join(f"strategy.{e.field}: {e.message}" for e in error.errors)
        raise BacktestError(f"invalid strategy: {problems}") from None
    return BacktestConfig(trading, merged, strategy, balance)


def load(path: Path | None) -> BacktestConfig:
    """The config in ``path`` (:data:`DEFAULT_DOC` when None); BacktestError when unreadable or invalid."""
    if path is None:
        return parse(DEFAULT_DOC)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise BacktestError(f"cannot read the config {path}: {error.strerror or error}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise BacktestError(f"the config {path} is over {MAX_CONFIG_BYTES // 1024} KiB")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise BacktestError(f"the config {path} is not JSON: {error}") from None
    return parse(doc)


def _balance(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise BacktestError("startingBalance must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise BacktestError("startingBalance must be a finite number")
    amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not amount.is_finite() or not 0 < amount <= MAX_STARTING_BALANCE:
        raise BacktestError(f"startingBalance must be above 0 and at most {MAX_STARTING_BALANCE:,}")
    if amount != amount.quantize(Decimal("1e-8")):
        raise BacktestError("startingBalance has more than 8 decimal places")
    return amount
