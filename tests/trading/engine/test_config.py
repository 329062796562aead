"""tradingConfig from the outside: Nexgent's defaults, the deep merge, every field's validation.

The defaults are checked against the reference's table of Nexgent's ``DEFAULT_TRADING_CONFIG`` (with our
one deviation, ``positionCalculator.randomization.enabled`` false, and our ``signals.sources`` and
``riskLimits``). The merge is checked on hand-picked cases and, with hypothesis, on arbitrary valid
partial updates (the result is the update laid over the defaults, and it survives ``to_doc`` and a
JSON round trip). Invalid documents must fail with a :class:`ConfigError` naming every bad field by
its dotted path, and no document at all, however malformed, may raise anything else.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents_examples.trading.engine.domain.config import (
    TEMPLATES,
    ConfigError,
    FieldError,
    MoonBag,
    TakeProfitLevel,
    TradingConfig,
    TrailingLevel,
    default_config,
    parse_config,
)
from agents_examples.trading.engine.jsonvalues import plain

D = Decimal


def errors_of(doc: object, base: TradingConfig | None = None) -> list[FieldError]:
    """The errors ``doc`` is refused with (the test fails if it is accepted)."""
    with pytest.raises(ConfigError) as caught:
        parse_config(doc, base)
    assert caught.value.errors, "a ConfigError must list at least one problem"
    return caught.value.errors


def paths_of(doc: object, base: TradingConfig | None = None) -> list[str]:
    return [e.field for e in errors_of(doc, base)]


def norm(value: Any) -> Any:
    """A document with every number as a Decimal (bools and strings kept), for comparing documents."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal):
        return D(str(value))
    if isinstance(value, dict):
        return {k: norm(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [norm(v) for v in value]
    raise AssertionError(f"unexpected value {value!r}")


def deep_merge(base: Any, update: Any) -> Any:
    """The spec of the merge: objects merge key by key, anything else (lists included) replaces."""
    if isinstance(base, dict) and isinstance(update, dict):
        out = dict(base)
        for key, value in update.items():
            out[key] = deep_merge(base[key], value) if key in base else value
        return out
    return update


# ------------------------------------------------------------------------------------------- defaults

NEXGENT_DEFAULTS: dict[str, Any] = {
    "purchaseLimits": {
        "minimumAgentBalance": D("0.5"),
        "maxPurchasePerToken": D("2.0"),
        "maxPriceImpact": D("0.05"),
    },
    "signals": {
        "minScore": 1,
        "allowedSignalTypes": [],
        "tokenFilterMode": "none",
        "tokenList": [],
        "sources": ["self"],
    },
    "stopLoss": {"enabled": True, "defaultPercentage": D(-32), "mode": "fixed", "trailingLevels": []},
    "positionCalculator": {
        "solBalanceThresholds": {"minimum": D("0.2"), "medium": D(5), "large": D(10)},
        "positionSizes": {
            "small": {"min": D("0.1"), "max": D("0.1")},
            "medium": {"min": D("0.5"), "max": D("1.0")},
            "large": {"min": D("1.5"), "max": D("2.0")},
        },
        "randomization": {"enabled": False},
    },
    "staleTrade": {
        "enabled": True,
        "minHoldTimeMinutes": 60,
        "minProfitPercent": D(1),
        "maxProfitPercent": D(10),
    },
    "takeProfit": {
        "enabled": False,
        "mode": "moderate",
        "levels": [
            {"targetPercent": D(50), "sellPercent": D(25)},
            {"targetPercent": D(150), "sellPercent": D(25)},
            {"targetPercent": D(300), "sellPercent": D(25)},
            {"targetPercent": D(400), "sellPercent": D(15)},
        ],
        "moonBag": {"enabled": True, "triggerPercent": D(300), "retainPercent": D(10)},
    },
    "riskLimits": {
        "maxOpenPositions": 25,
        "maxPositionSize": D("2.0"),
        "dailyLossLimit": D("1.0"),
        "maxDrawdownPercent": D(20),
        "closePositionsOnBreach": False,
    },
}


def test_the_default_document_is_nexgents_defaults_plus_ours() -> None:
    assert default_config().to_doc() == NEXGENT_DEFAULTS


def test_the_default_attributes_match_the_document() -> None:
    config = default_config()
    assert config.purchase_limits.minimum_agent_balance == D("0.5")
    assert config.purchase_limits.max_purchase_per_token == D("2.0")
    assert config.purchase_limits.max_price_impact == D("0.05")
    assert config.signals.min_score == 1
    assert config.signals.sources == ("self",)
    assert (config.stop_loss.enabled, config.stop_loss.default_percentage, config.stop_loss.mode) == (
        True,
        D(-32),
        "fixed",
    )
    calc = config.position_calculator
    assert (
        calc.balance_thresholds.minimum,
        calc.balance_thresholds.medium,
        calc.balance_thresholds.large,
    ) == (
        D("0.2"),
        D(5),
        D(10),
    )
    assert (calc.position_sizes.small.min, calc.position_sizes.small.max) == (D("0.1"), D("0.1"))
    assert (calc.position_sizes.medium.min, calc.position_sizes.medium.max) == (D("0.5"), D("1.0"))
    assert (calc.position_sizes.large.min, calc.position_sizes.large.max) == (D("1.5"), D("2.0"))
    assert calc.randomization is False  # our deliberate deviation from Nexgent's true
    stale = config.stale_trade
    assert (
        stale.enabled,
        stale.min_hold_time_minutes,
        stale.min_profit_percent,
        stale.max_profit_percent,
    ) == (
        True,
        60,
        D(1),
        D(10),
    )
    tp = config.take_profit
    assert (tp.enabled, tp.mode) == (False, "moderate")
    assert [(int(lv.target_percent), int(lv.sell_percent)) for lv in tp.levels] == [
        (50, 25),
        (150, 25),
        (300, 25),
        (400, 15),
    ]
    assert tp.moon_bag == MoonBag(True, D(300), D(10))
    risk = config.risk_limits
    assert (
        risk.max_open_positions,
        risk.max_position_size,
        risk.daily_loss_limit,
        risk.max_drawdown_percent,
        risk.close_positions_on_breach,
    ) == (25, D("2.0"), D("1.0"), D(20), False)


def test_an_empty_document_is_the_defaults() -> None:
    assert parse_config({}) == default_config()
    assert parse_config({}) == TradingConfig()


def test_the_default_document_parses_back_to_the_defaults() -> None:
    assert parse_config(default_config().to_doc()) == default_config()
    assert parse_config(json.loads(json.dumps(plain(default_config().to_doc())))) == default_config()


@pytest.mark.parametrize(
    ("mode", "levels", "bag"),
    [
        ("aggressive", [(25, 25), (50, 25), (100, 25), (150, 15)], (100, 10)),
        ("moderate", [(50, 25), (150, 25), (300, 25), (400, 15)], (300, 10)),
        ("conservative", [(100, 20), (200, 20), (400, 25), (600, 20)], (400, 15)),
    ],
)
def test_take_profit_templates_are_nexgents(
    mode: str, levels: list[tuple[int, int]], bag: tuple[int, int]
) -> None:
    config = parse_config({"takeProfit": {"mode": mode}})
    assert config.take_profit.mode == mode
    assert [(D(t), D(s)) for t, s in levels] == [
        (lv.target_percent, lv.sell_percent) for lv in config.take_profit.levels
    ]
    assert config.take_profit.moon_bag == MoonBag(True, D(bag[0]), D(bag[1]))
    assert TEMPLATES[mode] == (config.take_profit.levels, config.take_profit.moon_bag)


# ---------------------------------------------------------------------------------------------- merge


def test_a_partial_block_keeps_the_blocks_other_fields_and_the_other_blocks() -> None:
    config = parse_config({"purchaseLimits": {"maxPriceImpact": 0.1}})
    assert config.purchase_limits.max_price_impact == D("0.1")
    assert config.purchase_limits.minimum_agent_balance == D("0.5")
    assert config.purchase_limits.max_purchase_per_token == D("2.0")
    expected = dict(
        NEXGENT_DEFAULTS, purchaseLimits={**NEXGENT_DEFAULTS["purchaseLimits"], "maxPriceImpact": D("0.1")}
    )
    assert config.to_doc() == expected


def test_nested_objects_merge_at_every_depth() -> None:
    config = parse_config(
        {
            "positionCalculator": {
                "positionSizes": {"medium": {"max": 1.2}},
                "solBalanceThresholds": {"large": 12},
            }
        }
    )
    sizes = config.position_calculator.position_sizes
    assert (sizes.medium.min, sizes.medium.max) == (D("0.5"), D("1.2"))
    assert (sizes.small.min, sizes.large.max) == (D("0.1"), D("2.0"))
    th = config.position_calculator.balance_thresholds
    assert (th.minimum, th.medium, th.large) == (D("0.2"), D(5), D(12))
    assert config.position_calculator.randomization is False
    bag = parse_config(
        {"takeProfit": {"mode": "custom", "moonBag": {"triggerPercent": 250}}}
    ).take_profit.moon_bag
    assert bag == MoonBag(True, D(250), D(10))


def test_merging_over_a_base_keeps_the_bases_values() -> None:
    base = parse_config(
        {
            "signals": {"minScore": 3, "tokenList": ["A"]},
            "riskLimits": {"maxOpenPositions": 5},
            "stopLoss": {"mode": "zones"},
        }
    )
    config = parse_config({"signals": {"tokenFilterMode": "whitelist"}}, base)
    assert config.signals.min_score == 3
    assert config.signals.token_list == ("A",)
    assert config.signals.token_filter_mode == "whitelist"
    assert config.risk_limits.max_open_positions == 5
    assert config.stop_loss.mode == "zones"
    assert parse_config({}, base) == base


def test_lists_replace_rather_than_merge() -> None:
    base = parse_config(
        {
            "signals": {
                "allowedSignalTypes": ["Velocity", "Breakout"],
                "tokenList": ["A", "B"],
                "sources": ["self", "user:u1"],
            },
            "stopLoss": {"trailingLevels": [{"change": 100, "stopLoss": 70}, {"change": 50, "stopLoss": 30}]},
        }
    )
    config = parse_config(
        {
            "signals": {"allowedSignalTypes": [], "tokenList": ["C"], "sources": ["user:u2"]},
            "stopLoss": {"trailingLevels": [{"change": 300, "stopLoss": 250}]},
        },
        base,
    )
    assert config.signals.allowed_signal_types == ()
    assert config.signals.token_list == ("C",)
    assert config.signals.sources == ("user:u2",)
    assert config.stop_loss.trailing_levels == (TrailingLevel(D(300), D(250)),)
    custom = parse_config(
        {"takeProfit": {"mode": "custom", "levels": [{"targetPercent": 20, "sellPercent": 50}]}}
    )
    assert custom.take_profit.levels == (TakeProfitLevel(D(20), D(50)),)


def test_a_template_mode_overrides_the_levels_and_moon_bag_given() -> None:
    config = parse_config(
        {
            "takeProfit": {
                "mode": "aggressive",
                "levels": [{"targetPercent": 10, "sellPercent": 90}],
                "moonBag": {"enabled": False, "triggerPercent": 5, "retainPercent": 50},
            }
        }
    )
    assert (config.take_profit.levels, config.take_profit.moon_bag) == TEMPLATES["aggressive"]


def test_custom_mode_without_levels_starts_from_the_bases_levels() -> None:
    config = parse_config({"takeProfit": {"mode": "custom", "enabled": True}})
    assert config.take_profit.mode == "custom"
    assert (config.take_profit.levels, config.take_profit.moon_bag) == TEMPLATES["moderate"]
    # and a custom base keeps its levels when another template is not chosen
    base = parse_config(
        {"takeProfit": {"mode": "custom", "levels": [{"targetPercent": 40, "sellPercent": 60}]}}
    )
    assert parse_config({"takeProfit": {"enabled": True}}, base).take_profit.levels == (
        TakeProfitLevel(D(40), D(60)),
    )


# -------------------------------------------------------------------------------- take profit, stop loss


def custom_tp(levels: list[tuple[float, float]], bag: dict[str, Any] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {
        "mode": "custom",
        "levels": [{"targetPercent": t, "sellPercent": s} for t, s in levels],
    }
    if bag is not None:
        block["moonBag"] = bag
    return {"takeProfit": block}


def test_custom_sells_plus_the_moon_bag_over_100_are_refused_on_the_levels() -> None:
    errors = errors_of(custom_tp([(50, 50), (100, 45)]))  # 95 + the default moon bag's 10
    assert [e.field for e in errors] == ["takeProfit.levels"]
    assert "100" in errors[0].message
    assert paths_of(custom_tp([(50, 60), (100, 20)], {"retainPercent": 25})) == ["takeProfit.levels"]
    assert paths_of(custom_tp([(50, 60), (100, 41)], {"enabled": False})) == ["takeProfit.levels"]


def test_custom_sells_plus_the_moon_bag_of_exactly_100_are_accepted() -> None:
    config = parse_config(custom_tp([(50, 50), (100, 40)]))
    assert (
        sum(lv.sell_percent for lv in config.take_profit.levels) + config.take_profit.moon_bag.retain_percent
        == 100
    )
    # a disabled moon bag does not count
    config = parse_config(custom_tp([(50, 60), (100, 40)], {"enabled": False}))
    assert config.take_profit.moon_bag.enabled is False
    assert [lv.sell_percent for lv in config.take_profit.levels] == [60, 40]


def test_custom_levels_must_ascend() -> None:
    assert paths_of(custom_tp([(100, 10), (50, 10)])) == ["takeProfit.levels[1].targetPercent"]
    assert paths_of(custom_tp([(50, 10), (50, 10)])) == ["takeProfit.levels[1].targetPercent"]
    assert paths_of(custom_tp([(10, 10), (20, 10), (15, 10)])) == ["takeProfit.levels[2].targetPercent"]


def test_levels_sent_with_a_template_mode_are_ignored_not_checked_for_order() -> None:
    doc = {
        "takeProfit": {
            "mode": "conservative",
            "levels": [{"targetPercent": 100, "sellPercent": 10}, {"targetPercent": 50, "sellPercent": 10}],
        }
    }
    assert parse_config(doc).take_profit.levels == TEMPLATES["conservative"][0]


def test_custom_mode_needs_a_level() -> None:
    assert paths_of(custom_tp([])) == ["takeProfit.levels"]


@pytest.mark.parametrize(
    ("level", "path"),
    [
        ({"targetPercent": 0, "sellPercent": 10}, "takeProfit.levels[0].targetPercent"),
        ({"targetPercent": -5, "sellPercent": 10}, "takeProfit.levels[0].targetPercent"),
        ({"targetPercent": 10, "sellPercent": 0}, "takeProfit.levels[0].sellPercent"),
        ({"targetPercent": 10, "sellPercent": 101}, "takeProfit.levels[0].sellPercent"),
        ({"targetPercent": 10}, "takeProfit.levels[0].sellPercent"),
        ({"targetPercent": 10, "sellPercent": 10, "price": 3}, "takeProfit.levels[0].price"),
    ],
)
def test_a_bad_take_profit_level_is_named(level: dict[str, Any], path: str) -> None:
    assert path in paths_of({"takeProfit": {"mode": "custom", "levels": [level]}})


def test_custom_stop_loss_levels_are_sorted_by_change_descending() -> None:
    config = parse_config(
        {
            "stopLoss": {
                "mode": "custom",
                "trailingLevels": [
                    {"change": 50, "stopLoss": 30},
                    {"change": 200, "stopLoss": 150},
                    {"change": 100, "stopLoss": 70},
                ],
            }
        }
    )
    assert config.stop_loss.trailing_levels == (
        TrailingLevel(D(200), D(150)),
        TrailingLevel(D(100), D(70)),
        TrailingLevel(D(50), D(30)),
    )
    doc = config.to_doc()["stopLoss"]["trailingLevels"]
    assert doc == [
        {"change": 200, "stopLoss": 150},
        {"change": 100, "stopLoss": 70},
        {"change": 50, "stopLoss": 30},
    ]


@pytest.mark.parametrize("stop", [100, 150])
def test_a_stop_loss_at_or_above_its_change_is_refused(stop: int) -> None:
    doc = {"stopLoss": {"trailingLevels": [{"change": 20, "stopLoss": 5}, {"change": 100, "stopLoss": stop}]}}
    assert paths_of(doc) == ["stopLoss.trailingLevels[1].stopLoss"]


def test_a_stop_loss_level_just_below_its_change_and_a_negative_stop_are_accepted() -> None:
    config = parse_config(
        {"stopLoss": {"trailingLevels": [{"change": 100, "stopLoss": 99.5}, {"change": 10, "stopLoss": -5}]}}
    )
    assert config.stop_loss.trailing_levels == (TrailingLevel(D(100), D("99.5")), TrailingLevel(D(10), D(-5)))


def test_custom_stop_loss_needs_a_level_and_levels_are_bounded() -> None:
    assert paths_of({"stopLoss": {"mode": "custom", "trailingLevels": []}}) == ["stopLoss.trailingLevels"]
    many = [{"change": 10 * (i + 1), "stopLoss": 1} for i in range(21)]
    assert paths_of({"stopLoss": {"trailingLevels": many}}) == ["stopLoss.trailingLevels"]
    assert len(parse_config({"stopLoss": {"trailingLevels": many[:20]}}).stop_loss.trailing_levels) == 20


@pytest.mark.parametrize(
    ("level", "path"),
    [
        ({"change": 0, "stopLoss": -10}, "stopLoss.trailingLevels[0].change"),
        ({"change": 50, "stopLoss": -101}, "stopLoss.trailingLevels[0].stopLoss"),
        ({"change": 50}, "stopLoss.trailingLevels[0].stopLoss"),
        ({"change": 50, "stopLoss": 10, "keep": 1}, "stopLoss.trailingLevels[0].keep"),
        ("50:10", "stopLoss.trailingLevels[0]"),
    ],
)
def test_a_bad_stop_loss_level_is_named(level: object, path: str) -> None:
    assert path in paths_of({"stopLoss": {"trailingLevels": [level]}})


# ------------------------------------------------------------------------------------ field validation


def test_an_unknown_block_is_refused_by_name() -> None:
    errors = errors_of({"dca": {"enabled": True}})
    assert errors == [FieldError("dca", "unknown block")]


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({"purchaseLimits": {"maxPurchase": 1}}, "purchaseLimits.maxPurchase"),
        ({"signals": {"marketCapMin": 1}}, "signals.marketCapMin"),
        ({"stopLoss": {"trailing": []}}, "stopLoss.trailing"),
        ({"staleTrade": {"minHoldMinutes": 5}}, "staleTrade.minHoldMinutes"),
        ({"riskLimits": {"stoplossGuard": {}}}, "riskLimits.stoplossGuard"),
        ({"takeProfit": {"moonBag": {"size": 1}}}, "takeProfit.moonBag.size"),
        (
            {"positionCalculator": {"solBalanceThresholds": {"huge": 50}}},
            "positionCalculator.solBalanceThresholds.huge",
        ),
        (
            {"positionCalculator": {"positionSizes": {"tiny": {"min": 1, "max": 1}}}},
            "positionCalculator.positionSizes.tiny",
        ),
        (
            {"positionCalculator": {"positionSizes": {"small": {"avg": 1}}}},
            "positionCalculator.positionSizes.small.avg",
        ),
        ({"positionCalculator": {"jitter": True}}, "positionCalculator.jitter"),
    ],
)
def test_an_unknown_field_is_refused_with_its_path(doc: dict[str, Any], path: str) -> None:
    errors = errors_of(doc)
    assert FieldError(path, "unknown field") in errors


def test_an_unknown_randomization_field_is_refused_with_its_path() -> None:
    errors = errors_of({"positionCalculator": {"randomization": {"enabled": True, "seed": 3}}})
    assert errors == [FieldError("positionCalculator.randomization.seed", "unknown field")]


NUMBER_FIELDS = [
    ("purchaseLimits", "minimumAgentBalance"),
    ("purchaseLimits", "maxPurchasePerToken"),
    ("purchaseLimits", "maxPriceImpact"),
    ("stopLoss", "defaultPercentage"),
    ("staleTrade", "minProfitPercent"),
    ("staleTrade", "maxProfitPercent"),
    ("riskLimits", "maxPositionSize"),
    ("riskLimits", "dailyLossLimit"),
    ("riskLimits", "maxDrawdownPercent"),
]
INTEGER_FIELDS = [
    ("signals", "minScore"),
    ("staleTrade", "minHoldTimeMinutes"),
    ("riskLimits", "maxOpenPositions"),
]
FLAG_FIELDS = [
    ("stopLoss", "enabled"),
    ("staleTrade", "enabled"),
    ("takeProfit", "enabled"),
    ("riskLimits", "closePositionsOnBreach"),
]
NOT_NUMBERS: list[object] = [
    True,
    False,
    "2.0",
    "1",
    math.nan,
    math.inf,
    -math.inf,
    D("NaN"),
    D("Infinity"),
    [1],
    {"value": 1},
]


@pytest.mark.parametrize(("block", "name"), NUMBER_FIELDS + INTEGER_FIELDS)
@pytest.mark.parametrize("value", NOT_NUMBERS, ids=repr)
def test_a_number_field_refuses_what_is_not_a_finite_number(block: str, name: str, value: object) -> None:
    assert paths_of({block: {name: value}}) == [f"{block}.{name}"]


@pytest.mark.parametrize(("block", "name"), NUMBER_FIELDS[:6] + INTEGER_FIELDS)
def test_a_non_nullable_number_refuses_null(block: str, name: str) -> None:
    assert paths_of({block: {name: None}}) == [f"{block}.{name}"]


@pytest.mark.parametrize(("block", "name"), INTEGER_FIELDS)
def test_an_integer_field_refuses_a_fraction_and_takes_an_integral_float(block: str, name: str) -> None:
    assert paths_of({block: {name: 2.5}}) == [f"{block}.{name}"]
    value = getattr(parse_config({block: {name: 3.0}}).to_doc()[block], "get")(name)
    assert value == 3
    assert type(value) is int


@pytest.mark.parametrize(("block", "name"), [*FLAG_FIELDS, ("takeProfit.moonBag", "enabled")])
@pytest.mark.parametrize("value", [1, 0, "true", None, "yes"], ids=repr)
def test_a_flag_takes_only_true_or_false(block: str, name: str, value: object) -> None:
    doc: dict[str, Any] = {name: value}
    for part in reversed(block.split(".")):
        doc = {part: doc}
    assert paths_of(doc) == [f"{block}.{name}"]


def test_randomization_enabled_must_be_a_flag() -> None:
    assert paths_of({"positionCalculator": {"randomization": {"enabled": 1}}}) == [
        "positionCalculator.randomization.enabled"
    ]
    assert paths_of({"positionCalculator": {"randomization": True}}) == ["positionCalculator.randomization"]
    assert parse_config(
        {"positionCalculator": {"randomization": {"enabled": True}}}
    ).position_calculator.randomization


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({"signals": {"tokenFilterMode": "all"}}, "signals.tokenFilterMode"),
        ({"stopLoss": {"mode": "trailing"}}, "stopLoss.mode"),
        ({"stopLoss": {"mode": "exponential"}}, "stopLoss.mode"),
        ({"takeProfit": {"mode": "Moderate"}}, "takeProfit.mode"),
        ({"takeProfit": {"mode": ["custom"]}}, "takeProfit.mode"),
    ],
)
def test_a_choice_outside_its_set_is_refused(doc: dict[str, Any], path: str) -> None:
    assert paths_of(doc) == [path]


@pytest.mark.parametrize(
    "block", ["purchaseLimits", "signals", "stopLoss", "positionCalculator", "takeProfit", "riskLimits"]
)
@pytest.mark.parametrize("value", [[], 3, "x", None, True], ids=repr)
def test_a_block_that_is_not_an_object_is_refused(block: str, value: object) -> None:
    assert block in paths_of({block: value})


@pytest.mark.parametrize(
    "path",
    [
        "positionCalculator.solBalanceThresholds",
        "positionCalculator.positionSizes",
        "positionCalculator.positionSizes.small",
        "takeProfit.moonBag",
    ],
)
def test_a_nested_object_that_is_not_an_object_is_refused(path: str) -> None:
    doc: Any = [1, 2]
    for part in reversed(path.split(".")):
        doc = {part: doc}
    assert path in paths_of(doc)


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({"purchaseLimits": {"minimumAgentBalance": 0.09}}, "purchaseLimits.minimumAgentBalance"),
        ({"purchaseLimits": {"maxPurchasePerToken": 0}}, "purchaseLimits.maxPurchasePerToken"),
        ({"purchaseLimits": {"maxPriceImpact": 0}}, "purchaseLimits.maxPriceImpact"),
        ({"purchaseLimits": {"maxPriceImpact": 1.01}}, "purchaseLimits.maxPriceImpact"),
        ({"signals": {"minScore": 0}}, "signals.minScore"),
        ({"signals": {"minScore": 6}}, "signals.minScore"),
        ({"stopLoss": {"defaultPercentage": 1}}, "stopLoss.defaultPercentage"),
        ({"stopLoss": {"defaultPercentage": -100.5}}, "stopLoss.defaultPercentage"),
        (
            {"positionCalculator": {"solBalanceThresholds": {"medium": 20}}},
            "positionCalculator.solBalanceThresholds",
        ),
        (
            {"positionCalculator": {"solBalanceThresholds": {"minimum": 0}}},
            "positionCalculator.solBalanceThresholds.minimum",
        ),
        (
            {"positionCalculator": {"positionSizes": {"medium": {"min": 1.5}}}},
            "positionCalculator.positionSizes.medium.max",
        ),
        (
            {"positionCalculator": {"positionSizes": {"large": {"min": 0}}}},
            "positionCalculator.positionSizes.large.min",
        ),
        ({"staleTrade": {"minHoldTimeMinutes": 0}}, "staleTrade.minHoldTimeMinutes"),
        ({"staleTrade": {"minProfitPercent": 11}}, "staleTrade.maxProfitPercent"),
        ({"staleTrade": {"minProfitPercent": -101}}, "staleTrade.minProfitPercent"),
        ({"takeProfit": {"moonBag": {"retainPercent": 0}}}, "takeProfit.moonBag.retainPercent"),
        ({"takeProfit": {"moonBag": {"retainPercent": 101}}}, "takeProfit.moonBag.retainPercent"),
        ({"takeProfit": {"moonBag": {"triggerPercent": 0}}}, "takeProfit.moonBag.triggerPercent"),
        ({"riskLimits": {"maxOpenPositions": 0}}, "riskLimits.maxOpenPositions"),
        ({"riskLimits": {"maxOpenPositions": 1001}}, "riskLimits.maxOpenPositions"),
        ({"riskLimits": {"maxPositionSize": 0}}, "riskLimits.maxPositionSize"),
        ({"riskLimits": {"dailyLossLimit": -1}}, "riskLimits.dailyLossLimit"),
        ({"riskLimits": {"maxDrawdownPercent": 0}}, "riskLimits.maxDrawdownPercent"),
        ({"riskLimits": {"maxDrawdownPercent": 100.1}}, "riskLimits.maxDrawdownPercent"),
    ],
)
def test_a_value_out_of_range_is_refused(doc: dict[str, Any], path: str) -> None:
    assert paths_of(doc) == [path]


@pytest.mark.parametrize(
    "doc",
    [
        {"purchaseLimits": {"minimumAgentBalance": 0.1, "maxPriceImpact": 1}},
        {"stopLoss": {"defaultPercentage": 0}},
        {"stopLoss": {"defaultPercentage": -100}},
        {"signals": {"minScore": 5}},
        {"staleTrade": {"minProfitPercent": -5, "maxProfitPercent": -5, "minHoldTimeMinutes": 1}},
        {"positionCalculator": {"positionSizes": {"medium": {"min": 1.0}}}},
        {
            "takeProfit": {
                "mode": "custom",
                "levels": [{"targetPercent": 10, "sellPercent": 100}],
                "moonBag": {"enabled": False, "retainPercent": 100},
            }
        },
        {"riskLimits": {"maxOpenPositions": 1000, "maxDrawdownPercent": 100}},
        {"riskLimits": {"maxOpenPositions": 1}},
    ],
)
def test_a_value_at_the_edge_of_its_range_is_accepted(doc: dict[str, Any]) -> None:
    config = parse_config(doc)
    assert norm(config.to_doc()) == norm(deep_merge(NEXGENT_DEFAULTS, doc))


def test_decimals_are_accepted_as_numbers() -> None:
    config = parse_config({"purchaseLimits": {"maxPurchasePerToken": D("1.25")}})
    assert config.purchase_limits.max_purchase_per_token == D("1.25")


def test_a_document_that_is_not_an_object_is_refused() -> None:
    docs: list[object] = [None, [], "{}", 3, True]
    for doc in docs:
        errors = errors_of(doc)
        assert [e.field for e in errors] == [""]


# -------------------------------------------------------------------------------- collected errors


def test_every_mistake_is_reported_at_once() -> None:
    doc = {
        "purchaseLimits": {"maxPriceImpact": 2},
        "signals": {"minScore": "3"},
        "riskLimits": {"closePositionsOnBreach": "no"},
    }
    errors = errors_of(doc)
    assert [e.field for e in errors] == [
        "purchaseLimits.maxPriceImpact",
        "signals.minScore",
        "riskLimits.closePositionsOnBreach",
    ]


def test_several_mistakes_in_one_block_and_one_list_are_all_reported() -> None:
    doc = {
        "takeProfit": {
            "mode": "custom",
            "levels": [{"targetPercent": 0, "sellPercent": 10}, {"targetPercent": 10, "sellPercent": "5"}, 7],
        }
    }
    assert sorted(paths_of(doc)) == [
        "takeProfit.levels[0].targetPercent",
        "takeProfit.levels[1].sellPercent",
        "takeProfit.levels[2]",
    ]


def test_an_unknown_block_is_reported_with_the_other_mistakes() -> None:
    doc = {"dca": {}, "signals": {"minScore": 9}, "stopLoss": {"mode": "x"}}
    assert sorted(paths_of(doc)) == ["dca", "signals.minScore", "stopLoss.mode"]


def test_an_error_reads_field_colon_message() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"signals": {"minScore": 9}, "stopLoss": {"mode": "x"}})
    first = caught.value.errors[0]
    assert first.field == "signals.minScore"
    assert str(caught.value) == f"{first.field}: {first.message}"
    assert first.message  # says what is wrong
    assert isinstance(caught.value, ValueError)


# ------------------------------------------------------------------------------------------ riskLimits


@pytest.mark.parametrize("name", ["maxPositionSize", "dailyLossLimit", "maxDrawdownPercent"])
def test_a_risk_limit_can_be_turned_off_with_null(name: str) -> None:
    config = parse_config({"riskLimits": {name: None}})
    assert config.to_doc()["riskLimits"][name] is None
    assert parse_config(config.to_doc()) == config
    assert parse_config(json.loads(json.dumps(plain(config.to_doc())))) == config
    # and turned back on over a base that had it off
    assert parse_config({"riskLimits": {name: 7}}, config).to_doc()["riskLimits"][name] == 7


def test_all_nullable_risk_limits_off_at_once() -> None:
    risk = parse_config(
        {"riskLimits": {"maxPositionSize": None, "dailyLossLimit": None, "maxDrawdownPercent": None}}
    ).risk_limits
    assert (risk.max_position_size, risk.daily_loss_limit, risk.max_drawdown_percent) == (None, None, None)
    assert risk.max_open_positions == 25


def test_close_positions_on_breach_is_a_flag() -> None:
    assert parse_config(
        {"riskLimits": {"closePositionsOnBreach": True}}
    ).risk_limits.close_positions_on_breach


# --------------------------------------------------------------------------------------------- sources


@pytest.mark.parametrize(
    "sources",
    [["self"], ["user:alice"], ["self", "user:42", "user:b0b"], ["user:" + "x" * 256]],
)
def test_good_sources_are_kept(sources: list[str]) -> None:
    assert parse_config({"signals": {"sources": sources}}).signals.sources == tuple(sources)


def test_sources_are_stripped() -> None:
    assert parse_config({"signals": {"sources": [" self ", "user:a\n"]}}).signals.sources == (
        "self",
        "user:a",
    )


@pytest.mark.parametrize(
    ("sources", "path"),
    [
        (["user:"], "signals.sources[0]"),
        (["self", "alice"], "signals.sources[1]"),
        (["SELF"], "signals.sources[0]"),
        (["user"], "signals.sources[0]"),
        (["self", "user:" + "x" * 257], "signals.sources[1]"),
        (["self", 7], "signals.sources[1]"),
        (["self", ""], "signals.sources[1]"),
        (["  "], "signals.sources[0]"),
        ([], "signals.sources"),
        (["self"] * 33, "signals.sources"),
        ("self", "signals.sources"),
        (None, "signals.sources"),
    ],
)
def test_bad_sources_are_refused(sources: object, path: str) -> None:
    assert path in paths_of({"signals": {"sources": sources}})


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({"signals": {"allowedSignalTypes": ["x" * 51]}}, "signals.allowedSignalTypes[0]"),
        ({"signals": {"allowedSignalTypes": "Velocity"}}, "signals.allowedSignalTypes"),
        ({"signals": {"allowedSignalTypes": ["a"] * 51}}, "signals.allowedSignalTypes"),
        ({"signals": {"tokenList": ["ok", "x" * 256]}}, "signals.tokenList[1]"),
        ({"signals": {"tokenList": [None]}}, "signals.tokenList[0]"),
    ],
)
def test_bad_string_lists_are_refused(doc: dict[str, Any], path: str) -> None:
    assert paths_of(doc) == [path]


# ------------------------------------------------------------------------------------------ properties

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def amounts(low: str, high: str) -> st.SearchStrategy[Any]:
    """Numbers in [low, high] at 2 places, sent as a JSON number (int or float) or a Decimal."""
    values = st.decimals(min_value=D(low), max_value=D(high), places=2, allow_nan=False, allow_infinity=False)
    return values.flatmap(
        lambda d: st.sampled_from([d, float(d)] + ([int(d)] if d == d.to_integral_value() else []))
    )


NAMES = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=1, max_size=20
)


@st.composite
def rising(draw: st.DrawFn, count: int, low: str, high: str) -> list[Decimal]:
    """``count`` strictly rising Decimals in [low, high]."""
    values = draw(
        st.lists(
            st.decimals(min_value=D(low), max_value=D(high), places=2),
            min_size=count,
            max_size=count,
            unique=True,
        )
    )
    return sorted(values)


@st.composite
def stop_loss_updates(draw: st.DrawFn) -> dict[str, Any]:
    block: dict[str, Any] = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "enabled": st.booleans(),
                "defaultPercentage": amounts("-100", "0"),
                "mode": st.sampled_from(["fixed", "zones", "custom"]),
            },
        )
    )
    wants_levels = block.get("mode") == "custom" or draw(st.booleans())
    if wants_levels:
        changes = draw(
            st.lists(st.decimals(min_value=D("0.01"), max_value=D(1000), places=2), max_size=5, unique=True)
        )
        if block.get("mode") == "custom" and not changes:
            changes = [D(50)]
        levels = []
        for change in changes:
            stop = draw(st.decimals(min_value=D(-100), max_value=change - D("0.01"), places=2))
            levels.append({"change": float(change), "stopLoss": float(stop)})
        block["trailingLevels"] = levels
    return block


@st.composite
def position_calculator_updates(draw: st.DrawFn) -> dict[str, Any]:
    block: dict[str, Any] = {}
    if draw(st.booleans()):
        low, mid, high = draw(rising(3, "0.01", "100"))
        block["solBalanceThresholds"] = {"minimum": float(low), "medium": float(mid), "large": float(high)}
    if draw(st.booleans()):
        sizes = {}
        for name in draw(st.sets(st.sampled_from(["small", "medium", "large"]))):
            a, b = sorted(
                draw(
                    st.lists(
                        st.decimals(min_value=D("0.01"), max_value=D(50), places=2), min_size=2, max_size=2
                    )
                )
            )
            sizes[name] = {"min": float(a), "max": float(b)}
        block["positionSizes"] = sizes
    if draw(st.booleans()):
        block["randomization"] = {"enabled": draw(st.booleans())}
    return block


@st.composite
def stale_trade_updates(draw: st.DrawFn) -> dict[str, Any]:
    block: dict[str, Any] = draw(
        st.fixed_dictionaries(
            {}, optional={"enabled": st.booleans(), "minHoldTimeMinutes": st.integers(1, 525_600)}
        )
    )
    if draw(st.booleans()):
        a, b = sorted(
            draw(st.lists(st.decimals(min_value=D(-100), max_value=D(500), places=2), min_size=2, max_size=2))
        )
        block["minProfitPercent"], block["maxProfitPercent"] = float(a), float(b)
    return block


@st.composite
def take_profit_updates(draw: st.DrawFn) -> dict[str, Any]:
    block: dict[str, Any] = draw(st.fixed_dictionaries({}, optional={"enabled": st.booleans()}))
    mode = draw(st.sampled_from([None, "aggressive", "moderate", "conservative", "custom"]))
    if mode is None:
        return block  # the base's moderate template stays
    block["mode"] = mode
    count = draw(st.integers(1, 4))
    targets = draw(rising(count, "0.01", "1000"))
    sells = [draw(st.integers(1, 20)) for _ in targets]
    bag_on = draw(st.booleans())
    retain = draw(st.integers(1, 100 - sum(sells))) if bag_on else draw(st.integers(1, 100))
    block["levels"] = [
        {"targetPercent": float(t), "sellPercent": s} for t, s in zip(targets, sells, strict=True)
    ]
    block["moonBag"] = {
        "enabled": bag_on,
        "triggerPercent": draw(st.integers(1, 1000)),
        "retainPercent": retain,
    }
    return block


VALID_UPDATES = st.fixed_dictionaries(
    {},
    optional={
        "purchaseLimits": st.fixed_dictionaries(
            {},
            optional={
                "minimumAgentBalance": amounts("0.1", "1000"),
                "maxPurchasePerToken": amounts("0.01", "1000"),
                "maxPriceImpact": amounts("0.01", "1"),
            },
        ),
        "signals": st.fixed_dictionaries(
            {},
            optional={
                "minScore": st.integers(1, 5),
                "allowedSignalTypes": st.lists(NAMES, max_size=4),
                "tokenFilterMode": st.sampled_from(["none", "blacklist", "whitelist"]),
                "tokenList": st.lists(NAMES, max_size=4),
                "sources": st.lists(
                    st.one_of(st.just("self"), NAMES.map(lambda n: f"user:{n}")), min_size=1, max_size=4
                ),
            },
        ),
        "stopLoss": stop_loss_updates(),
        "positionCalculator": position_calculator_updates(),
        "staleTrade": stale_trade_updates(),
        "takeProfit": take_profit_updates(),
        "riskLimits": st.fixed_dictionaries(
            {},
            optional={
                "maxOpenPositions": st.integers(1, 1000),
                "maxPositionSize": st.one_of(st.none(), amounts("0.01", "1000")),
                "dailyLossLimit": st.one_of(st.none(), amounts("0.01", "1000")),
                "maxDrawdownPercent": st.one_of(st.none(), amounts("0.01", "100")),
                "closePositionsOnBreach": st.booleans(),
            },
        ),
    },
)


def expected_doc(update: dict[str, Any], base: TradingConfig) -> Any:
    """What the config of ``update`` over ``base`` must read back as (numbers normalised)."""
    doc = deep_merge(norm(base.to_doc()), norm(update))
    doc["stopLoss"]["trailingLevels"].sort(key=lambda lv: lv["change"], reverse=True)
    mode = doc["takeProfit"]["mode"]
    if mode in TEMPLATES:
        levels, bag = TEMPLATES[mode]
        doc["takeProfit"]["levels"] = norm(
            [{"targetPercent": lv.target_percent, "sellPercent": lv.sell_percent} for lv in levels]
        )
        doc["takeProfit"]["moonBag"] = norm(
            {
                "enabled": bag.enabled,
                "triggerPercent": bag.trigger_percent,
                "retainPercent": bag.retain_percent,
            }
        )
    return doc


@SETTINGS
@given(update=VALID_UPDATES)
def test_a_valid_partial_update_is_laid_over_the_defaults_and_round_trips(update: dict[str, Any]) -> None:
    config = parse_config(update)
    assert norm(config.to_doc()) == expected_doc(update, default_config())
    assert parse_config(config.to_doc()) == config
    assert parse_config({}, config) == config
    stored = json.loads(json.dumps(plain(config.to_doc())))
    assert parse_config(stored) == config


@SETTINGS
@given(first=VALID_UPDATES, second=VALID_UPDATES)
def test_updates_apply_one_over_another(first: dict[str, Any], second: dict[str, Any]) -> None:
    base = parse_config(first)
    try:
        config = parse_config(second, base)
    except ConfigError as error:
        # Only a custom take-profit whose merged moon bag and levels no longer fit, or a custom stop loss
        # left without levels, may be refused.
        assert {e.field for e in error.errors} <= {"takeProfit.levels", "stopLoss.trailingLevels"}
        return
    assert norm(config.to_doc()) == expected_doc(second, base)


JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)
JSON_JUNK = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
BLOCK_FIELDS = {
    "purchaseLimits": ["minimumAgentBalance", "maxPurchasePerToken", "maxPriceImpact"],
    "signals": ["minScore", "allowedSignalTypes", "tokenFilterMode", "tokenList", "sources"],
    "stopLoss": ["enabled", "defaultPercentage", "mode", "trailingLevels"],
    "positionCalculator": ["solBalanceThresholds", "positionSizes", "randomization"],
    "staleTrade": ["enabled", "minHoldTimeMinutes", "minProfitPercent", "maxProfitPercent"],
    "takeProfit": ["enabled", "mode", "levels", "moonBag"],
    "riskLimits": [
        "maxOpenPositions",
        "maxPositionSize",
        "dailyLossLimit",
        "maxDrawdownPercent",
        "closePositionsOnBreach",
    ],
}
NESTED_KEYS = st.sampled_from(
    [
        "min",
        "max",
        "minimum",
        "medium",
        "large",
        "small",
        "enabled",
        "change",
        "stopLoss",
        "targetPercent",
        "sellPercent",
        "triggerPercent",
        "retainPercent",
    ]
)
NESTED_JUNK = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(NESTED_KEYS, inner, max_size=4)),
    max_leaves=15,
)


EDGE_VALUES: st.SearchStrategy[object] = st.sampled_from(
    [math.nan, math.inf, -math.inf, 0, -1, 0.5, 1e308, 2**64, -(2**64), True, False, None, "1", "", [], {}]
)


@st.composite
def targeted_junk(draw: st.DrawFn) -> dict[str, Any]:
    """Junk values under the real block and field names, so validation (not the name check) sees them."""
    doc: dict[str, Any] = {}
    for block in draw(st.sets(st.sampled_from(sorted(BLOCK_FIELDS)), max_size=4)):
        if draw(st.integers(0, 9)) == 0:
            doc[block] = draw(NESTED_JUNK)
            continue
        names = draw(st.sets(st.sampled_from(BLOCK_FIELDS[block]), min_size=1))
        doc[block] = {name: draw(st.one_of(EDGE_VALUES, JSON_SCALARS, NESTED_JUNK)) for name in sorted(names)}
    return doc


TARGETED_JUNK = targeted_junk()


def assert_only_config_errors(doc: object) -> None:
    try:
        config = parse_config(doc)
    except ConfigError as error:
        assert error.errors
        for e in error.errors:
            assert isinstance(e, FieldError)
            assert isinstance(e.field, str) and isinstance(e.message, str) and e.message
        first = error.errors[0]
        assert str(error) == f"{first.field}: {first.message}"
    else:
        assert isinstance(config, TradingConfig)
        assert parse_config(config.to_doc()) == config


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=JSON_JUNK)
def test_arbitrary_json_never_raises_anything_but_config_error(doc: object) -> None:
    assert_only_config_errors(doc)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=TARGETED_JUNK)
def test_junk_under_the_real_names_never_raises_anything_but_config_error(doc: object) -> None:
    assert_only_config_errors(doc)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(update=VALID_UPDATES, path_value=st.tuples(st.sampled_from(sorted(BLOCK_FIELDS)), NESTED_JUNK))
def test_junk_over_a_custom_base_never_raises_anything_but_config_error(
    update: dict[str, Any], path_value: tuple[str, object]
) -> None:
    base = parse_config(update)
    block, junk = path_value
    try:
        parse_config({block: junk}, base)
    except ConfigError as error:
        assert error.errors


def test_a_number_too_big_to_store_is_refused_with_its_path() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config({"purchaseLimits": {"maxPurchasePerToken": 10**400}})
    assert [(e.field, e.message) for e in raised.value.errors] == [
        ("purchaseLimits.maxPurchasePerToken", "must be at most 1,000,000,000,000 in size")
    ]
