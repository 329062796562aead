"""Shared inputs of the backtest tests: a short seeded synthetic range and a config that trades on it."""

from __future__ import annotations

import copy
from typing import Any

from agents_examples.trading.backtest import config as config_file
from agents_examples.trading.backtest.config import BacktestConfig
from agents_examples.trading.backtest.market import Selection, select

SYMBOL = "BTC"
FROM, TO = "2025-03-01", "2025-03-02"  # two simulated days: 2,880 one-minute bars
SEED = 11


def config_doc(**strategy: Any) -> dict[str, Any]:
    """The default config with a quick strategy (crosses within hours), ``strategy`` fields over it."""
    doc = copy.deepcopy(config_file.DEFAULT_DOC)
    doc["strategy"] = {"fastWindow": 5, "slowWindow": 20, "volumeFactor": 0, "cooldownBars": 5, **strategy}
    return doc


def inputs(seed: int = SEED) -> tuple[Selection, BacktestConfig]:
    """The selection and the parsed config most tests run."""
    return select(SYMBOL, FROM, TO, synthetic=True, seed=seed), config_file.parse(config_doc())
