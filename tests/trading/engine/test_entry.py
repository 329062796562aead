"""The entry checks: every skip code in Nexgent's order, the position calculator's bands, the caps on
the size, the risk limits, and the sizes retried after a price-impact refusal.

The configs are Nexgent's defaults made explicit: a minimum agent balance of 0.5, at most 2.0 per
token, calculator bands small (cash < 5) 0.1, medium (< 10) 0.5..1.0, large 1.5..2.0, randomization off.
"""

from __future__ import annotations

import random
from dataclasses import replace
from decimal import Decimal

import pytest

from agents_examples.trading.engine.domain.config import (
    PurchaseLimits,
    RiskLimits,
    TradingConfig,
    default_config,
)
from agents_examples.trading.engine.domain.entry import (
    MIN_PURCHASE,
    Book,
    Entry,
    Skip,
    decide_entry,
    risk_breach,
    shrink,
)
from agents_examples.trading.engine.domain.signals import SignalInput

D = Decimal


def signal(**changes: object) -> SignalInput:
    fields: dict[str, object] = {
        "token_address": "TokenAddr1",
        "symbol": "TKN",
        "signal_type": "Velocity",
        "signal_strength": 4,
        "activation_reason": "volume spike",
        "source": "scanner",
    }
    fields.update(changes)
    return SignalInput(**fields)  # type: ignore[arg-type]


def book(cash: str = "20", **changes: object) -> Book:
    fields: dict[str, object] = {
        "cash": D(cash),
        "open_tokens": frozenset(),
        "open_count": 0,
        "equity": D(100),
        "day_start_equity": D(100),
        "peak_equity": D(100),
    }
    fields.update(changes)
    return Book(**fields)  # type: ignore[arg-type]


def config(
    *,
    minimum_agent_balance: str = "0.5",
    max_purchase_per_token: str = "2.0",
    randomization: bool = False,
    calculator_minimum: str = "0.2",
    min_score: int = 1,
    allowed_signal_types: tuple[str, ...] = (),
    token_filter_mode: str = "none",
    token_list: tuple[str, ...] = (),
) -> TradingConfig:
    base = default_config()
    calc = base.position_calculator
    calculator = replace(
        calc,
        balance_thresholds=replace(
            calc.balance_thresholds, minimum=D(calculator_minimum), medium=D(5), large=D(10)
        ),
        position_sizes=replace(
            calc.position_sizes,
            small=replace(calc.position_sizes.small, min=D("0.1"), max=D("0.1")),
            medium=replace(calc.position_sizes.medium, min=D("0.5"), max=D("1.0")),
            large=replace(calc.position_sizes.large, min=D("1.5"), max=D("2.0")),
        ),
        randomization=randomization,
    )
    filters = replace(
        base.signals,
        min_score=min_score,
        allowed_signal_types=allowed_signal_types,
        token_filter_mode=token_filter_mode,
        token_list=token_list,
    )
    return replace(
        base,
        purchase_limits=PurchaseLimits(
            minimum_agent_balance=D(minimum_agent_balance),
            max_purchase_per_token=D(max_purchase_per_token),
            max_price_impact=D("0.05"),
        ),
        signals=filters,
        position_calculator=calculator,
        risk_limits=limits(),
    )


def limits(**changes: object) -> RiskLimits:
    fields: dict[str, object] = {
        "max_open_positions": 25,
        "max_position_size": None,
        "daily_loss_limit": D(1),
        "max_drawdown_percent": D(20),
        "close_positions_on_breach": False,
    }
    fields.update(changes)
    return RiskLimits(**fields)  # type: ignore[arg-type]


def with_limits(cfg: TradingConfig, **changes: object) -> TradingConfig:
    return replace(cfg, risk_limits=limits(**changes))


def code(result: Entry | Skip) -> str:
    assert isinstance(result, Skip), result
    return result.code


# -- signal filters ---------------------------------------------------------------------------------


def test_a_signal_below_the_minimum_score_is_skipped() -> None:
    cfg = config(min_score=3)
    skip = decide_entry(signal(signal_strength=2), cfg, book())
    assert isinstance(skip, Skip) and skip.code == "SIGNAL_BELOW_MIN_SCORE"
    assert "2" in skip.message and "3" in skip.message
    assert decide_entry(signal(signal_strength=3), cfg, book()) == Entry(D("2.0"))


def test_signal_types_are_matched_case_insensitively_and_none_listed_allows_all() -> None:
    cfg = config(allowed_signal_types=("Velocity", "Dex Boost"))
    assert decide_entry(signal(signal_type="velocity"), cfg, book()) == Entry(D("2.0"))
    skip = decide_entry(signal(signal_type="breakout"), cfg, book())
    assert isinstance(skip, Skip) and skip.code == "SIGNAL_TYPE_NOT_ALLOWED"
    assert "breakout" in skip.message
    assert decide_entry(signal(signal_type="breakout"), config(), book()) == Entry(D("2.0"))


@pytest.mark.parametrize("listed", ["tkn", "tokenaddr1"])
def test_a_blacklisted_token_by_symbol_or_address_is_skipped(listed: str) -> None:
    cfg = config(token_filter_mode="blacklist", token_list=(listed, "Other"))
    assert code(decide_entry(signal(), cfg, book())) == "TOKEN_BLACKLISTED"
    assert decide_entry(signal(token_address="Addr2", symbol="ZZZ"), cfg, book()) == Entry(D("2.0"))


@pytest.mark.parametrize("listed", ["TKN", "TOKENADDR1"])
def test_only_whitelisted_tokens_pass_a_whitelist(listed: str) -> None:
    cfg = config(token_filter_mode="whitelist", token_list=(listed,))
    assert decide_entry(signal(), cfg, book()) == Entry(D("2.0"))
    other = signal(token_address="Addr2", symbol="ZZZ")
    assert code(decide_entry(other, cfg, book())) == "TOKEN_NOT_WHITELISTED"


def test_a_signal_without_a_symbol_is_matched_by_its_address() -> None:
    nameless = signal(symbol=None)
    blacklist = config(token_filter_mode="blacklist", token_list=("TKN",))
    assert decide_entry(nameless, blacklist, book()) == Entry(D("2.0"))
    whitelist = config(token_filter_mode="whitelist", token_list=("tokenADDR1",))
    assert decide_entry(nameless, whitelist, book()) == Entry(D("2.0"))
    by_symbol = config(token_filter_mode="whitelist", token_list=("TKN",))
    assert code(decide_entry(nameless, by_symbol, book())) == "TOKEN_NOT_WHITELISTED"


def test_a_token_list_is_ignored_when_the_filter_mode_is_none() -> None:
    cfg = config(token_filter_mode="none", token_list=("TKN",))
    assert decide_entry(signal(), cfg, book()) == Entry(D("2.0"))


# -- the account ------------------------------------------------------------------------------------


@pytest.mark.parametrize("cash", ["0", "-1"])
def test_no_cash_is_insufficient_balance(cash: str) -> None:
    assert code(decide_entry(signal(), config(), book(cash))) == "INSUFFICIENT_BALANCE"


def test_cash_under_the_minimum_agent_balance_is_below_the_threshold() -> None:
    skip = decide_entry(signal(), config(), book("0.4"))
    assert isinstance(skip, Skip) and skip.code == "BELOW_MINIMUM_THRESHOLD"
    assert "0.4" in skip.message and "0.5" in skip.message


def test_one_position_per_token() -> None:
    held = book(open_tokens=frozenset({"TokenAddr1"}), open_count=1)
    assert code(decide_entry(signal(), config(), held)) == "POSITION_EXISTS"
    assert decide_entry(signal(token_address="Addr2"), config(), held) == Entry(D("2.0"))


def test_the_open_positions_are_capped() -> None:
    cfg = with_limits(config(), max_open_positions=3)
    skip = decide_entry(signal(), cfg, book(open_count=3))
    assert isinstance(skip, Skip) and skip.code == "MAX_POSITIONS_EXCEEDED"
    assert "3" in skip.message
    assert decide_entry(signal(), cfg, book(open_count=2)) == Entry(D("2.0"))


def test_the_checks_run_in_nexgents_order() -> None:
    cfg = with_limits(config(min_score=5), max_open_positions=1)
    broke = book("0", open_tokens=frozenset({"TokenAddr1"}), open_count=1, equity=D(0))
    assert code(decide_entry(signal(), cfg, broke)) == "SIGNAL_BELOW_MIN_SCORE"
    cfg = with_limits(config(), max_open_positions=1)
    assert code(decide_entry(signal(), cfg, broke)) == "INSUFFICIENT_BALANCE"
    crowded = book(open_tokens=frozenset({"TokenAddr1"}), open_count=1, equity=D(50))
    assert code(decide_entry(signal(), cfg, crowded)) == "POSITION_EXISTS"
    assert code(decide_entry(signal(token_address="Addr2"), cfg, crowded)) == "MAX_POSITIONS_EXCEEDED"
    cfg = with_limits(config(), max_open_positions=5)
    assert code(decide_entry(signal(token_address="Addr2"), cfg, crowded)) == "DAILY_LOSS_LIMIT"


# -- risk limits ------------------------------------------------------------------------------------


def test_daily_loss_limit_counts_from_the_days_start() -> None:
    rl = limits(daily_loss_limit=D(1), max_drawdown_percent=None)
    skip = risk_breach(rl, book(equity=D(99), day_start_equity=D(100)))
    assert skip is not None and skip.code == "DAILY_LOSS_LIMIT"
    assert "1" in skip.message
    assert risk_breach(rl, book(equity=D("99.01"), day_start_equity=D(100))) is None
    assert code(decide_entry(signal(), config(), book(equity=D(99)))) == "DAILY_LOSS_LIMIT"


def test_max_drawdown_counts_from_the_equity_peak() -> None:
    rl = limits(daily_loss_limit=None, max_drawdown_percent=D(20))
    # (125 - 100) / 125 = 20%.
    skip = risk_breach(rl, book(equity=D(100), day_start_equity=D(100), peak_equity=D(125)))
    assert skip is not None and skip.code == "MAX_DRAWDOWN_EXCEEDED"
    assert "20" in skip.message
    assert risk_breach(rl, book(equity=D("100.01"), peak_equity=D(125))) is None
    cfg = config()
    assert code(decide_entry(signal(), cfg, book(equity=D(100), peak_equity=D(125)))) == (
        "MAX_DRAWDOWN_EXCEEDED"
    )


def test_risk_limits_that_are_none_are_off() -> None:
    rl = limits(daily_loss_limit=None, max_drawdown_percent=None)
    assert risk_breach(rl, book(equity=D(1), day_start_equity=D(100), peak_equity=D(100))) is None


def test_no_drawdown_without_a_peak() -> None:
    rl = limits(daily_loss_limit=None, max_drawdown_percent=D(20))
    assert risk_breach(rl, book(equity=D(0), peak_equity=D(0))) is None


# -- sizing -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cash", "size"),
    [
        ("0.6", "0.1"),  # small band; 0.6 - 0.5 = 0.1 left above the minimum
        ("4.99", "0.1"),  # small band (under 5)
        ("5", "1.0"),  # medium band's max
        ("9.99", "1.0"),
        ("10", "2.0"),  # large band's max
        ("100", "2.0"),
    ],
)
def test_the_calculator_band_follows_the_cash(cash: str, size: str) -> None:
    assert decide_entry(signal(), config(), book(cash)) == Entry(D(size))


def test_cash_under_the_calculators_minimum_is_below_the_threshold() -> None:
    cfg = config(minimum_agent_balance="0.1", calculator_minimum="0.2")
    skip = decide_entry(signal(), cfg, book("0.15"))
    assert isinstance(skip, Skip) and skip.code == "BELOW_MINIMUM_THRESHOLD"
    assert "0.2" in skip.message


def test_the_size_is_capped_by_the_purchase_limit_per_token() -> None:
    assert decide_entry(signal(), config(max_purchase_per_token="1.2"), book("20")) == Entry(D("1.2"))


def test_the_size_is_capped_by_the_risk_limits_position_size() -> None:
    cfg = with_limits(config(), max_position_size=D("0.75"))
    assert decide_entry(signal(), cfg, book("20")) == Entry(D("0.75"))


def test_the_size_keeps_the_minimum_agent_balance() -> None:
    # Small band wants 0.1; only 0.55 - 0.5 = 0.05 may be spent.
    assert decide_entry(signal(), config(), book("0.55")) == Entry(D("0.05"))


def test_the_size_is_rounded_down_to_eight_decimals() -> None:
    # 0.512345678912 - 0.5 = 0.012345678912 -> 0.01234567.
    assert decide_entry(signal(), config(), book("0.512345678912")) == Entry(D("0.01234567"))


def test_a_size_under_the_smallest_purchase_violates_the_minimum_balance() -> None:
    skip = decide_entry(signal(), config(), book("0.505"))  # 0.005 left to spend
    assert isinstance(skip, Skip) and skip.code == "VIOLATES_MINIMUM_BALANCE"
    assert "0.01" in skip.message


class FixedDraw(random.Random):
    def __init__(self, draw: float) -> None:
        super().__init__(0)
        self.draw = draw

    def random(self) -> float:
        return self.draw


@pytest.mark.parametrize(("draw", "size"), [(0.0, "0.5"), (0.5, "0.75"), (0.25, "0.625")])
def test_randomization_draws_uniformly_in_the_band(draw: float, size: str) -> None:
    cfg = config(randomization=True)
    assert decide_entry(signal(), cfg, book("7"), rng=FixedDraw(draw)) == Entry(D(size))


def test_randomization_with_a_seeded_generator_is_reproducible_and_in_the_band() -> None:
    cfg = config(randomization=True)
    sizes = [decide_entry(signal(), cfg, book("7"), rng=random.Random(seed)) for seed in range(20)]
    assert all(isinstance(s, Entry) and D("0.5") <= s.size <= D("1.0") for s in sizes)
    assert len({s for s in sizes}) > 1
    assert sizes[3] == decide_entry(signal(), cfg, book("7"), rng=random.Random(3))


# -- price-impact retries ---------------------------------------------------------------------------


def test_shrink_retries_at_ninety_eighty_and_seventy_percent() -> None:
    assert shrink(D("1.0")) == [D("0.9"), D("0.8"), D("0.7")]
    assert shrink(D("0.33333333")) == [D("0.29999999"), D("0.26666666"), D("0.23333333")]


def test_shrink_drops_sizes_under_the_smallest_purchase() -> None:
    # 0.9 x 0.0123 = 0.01107; 0.8 x 0.0123 = 0.00984 and 0.7 x 0.0123 = 0.00861 are too small.
    assert shrink(D("0.0123")) == [D("0.01107")]
    assert shrink(MIN_PURCHASE) == []
