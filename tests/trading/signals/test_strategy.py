"""The signal agent's strategy on scripted price paths: crossovers after the warm-up, the strength bands,
the volume filter, the cooldown, the minimum strength and the followed symbols; the config's
validation with a precise error per field; determinism (the same bars give the same signals, whatever
the caller's Decimal context)."""

from __future__ import annotations

import decimal
import random
from collections.abc import Sequence
from decimal import Decimal

import pytest

from agents_examples.trading.engine.domain.signals import parse_signal
from agents_examples.trading.signals.strategy import (
    SOURCE,
    ConfigError,
    Signal,
    Strategy,
    StrategyConfig,
    strength_of,
)

TOKEN = "paper:btc"


def run(
    config: StrategyConfig,
    closes: Sequence[float | int | str],
    volumes: Sequence[float | int | None] | None = None,
    symbol: str = "BTC",
) -> list[tuple[int, str, int]]:
    """(bar index, signal type, strength) of every signal ``closes`` trigger."""
    strategy = Strategy(config)
    found = []
    for i, close in enumerate(closes):
        volume = None if volumes is None or volumes[i] is None else Decimal(str(volumes[i]))
        signal = strategy.on_bar(symbol, TOKEN, Decimal(str(close)), volume, 1000 * i)
        if signal is not None:
            found.append((i, signal.signal_type, signal.strength))
    return found


NO_VOLUME_FILTER = {"volumeFactor": 0}


def config(**fields: object) -> StrategyConfig:
    return StrategyConfig.from_doc(fields)


# ------------------------------------------------------------------------------------ crossovers


def test_a_cross_up_is_a_buy_and_a_cross_down_a_sell_after_the_warm_up() -> None:
    # fast 2, slow 4: the first full window (bar 3) only sets the side (below); bar 5 crosses up
    # (fast 9, slow 8.25), bar 7 crosses down (fast 5, slow 7).
    closes = [10, 9, 8, 7, 8, 10, 6, 4]
    assert run(config(fastWindow=2, slowWindow=4, **NO_VOLUME_FILTER), closes) == [
        (5, "buy", 5),
        (7, "sell", 5),
    ]
    # Nothing before slowWindow closes, and no cross when the side only starts.
    assert run(config(fastWindow=2, slowWindow=4, **NO_VOLUME_FILTER), [10, 11, 12, 13, 14, 15]) == []


def test_equal_averages_keep_the_side_so_a_touch_is_no_cross() -> None:
    # fast 1, slow 2: the side is the direction of the last move; a flat bar keeps it.
    closes = [10, 9, 9, 8, 8, 9]
    assert run(config(fastWindow=1, slowWindow=2, **NO_VOLUME_FILTER), closes) == [(5, "buy", 5)]


@pytest.mark.parametrize(
    ("close", "strength"),
    [("100.1", 1), ("100.3", 2), ("100.7", 3), ("101.5", 4), ("103", 5)],
)
def test_the_strength_grows_with_the_gap_at_the_cross(close: str, strength: int) -> None:
    # fast 1, slow 2 after a fall to 100: the gap is (c - 100) / (100 + c) in percent, so 0.05 %,
    # 0.15 %, 0.35 %, 0.74 % and 1.48 %.
    assert run(config(fastWindow=1, slowWindow=2, **NO_VOLUME_FILTER), [101, 100, close]) == [
        (2, "buy", strength)
    ]


@pytest.mark.parametrize(
    ("gap", "strength"),
    [
        ("0", 1),
        ("0.0999", 1),
        ("0.1", 2),
        ("0.2499", 2),
        ("0.25", 3),
        ("0.4999", 3),
        ("0.5", 4),
        ("0.9999", 4),
        ("1.0", 5),
        ("37", 5),
    ],
)
def test_the_strength_bands_are_0_1_0_25_0_5_and_1_percent(gap: str, strength: int) -> None:
    assert strength_of(Decimal(gap)) == strength


def test_a_signal_is_the_engines_body_and_says_why() -> None:
    strategy = Strategy(config(fastWindow=2, slowWindow=4, volumeFactor=1))
    signal: Signal | None = None
    for i, (close, volume) in enumerate([(10, 5), (9, 5), (8, 5), (7, 5), (8, 5), (10, 9)]):
        signal = strategy.on_bar("BTC", TOKEN, Decimal(close), Decimal(volume), 1000 * i) or signal
    assert signal is not None
    doc = signal.to_doc()
    assert set(doc) == {
        "tokenAddress",
        "symbol",
        "signalType",
        "signalStrength",
        "activationReason",
        "source",
    }
    assert (doc["tokenAddress"], doc["symbol"], doc["signalType"], doc["signalStrength"]) == (
        TOKEN,
        "BTC",
        "buy",
        5,
    )
    assert doc["source"] == SOURCE
    assert doc["activationReason"] == (
        "fast MA 9 crossed above slow MA 8.25 (gap 9.0909%) at close 10, volume 9 vs mean 6"
    )
    assert (signal.fast, signal.slow, signal.gap_percent, signal.ts_ms) == (
        Decimal(9),
        Decimal("8.25"),
        Decimal("9.0909"),
        5000,
    )
    parsed = parse_signal(doc)  # the engine takes it as it is
    assert (parsed.token_address, parsed.signal_type, parsed.signal_strength) == (TOKEN, "buy", 5)


# ------------------------------------------------------------------------------------ filters


@pytest.mark.parametrize(
    ("factor", "volume", "emitted"),
    [(1, 4, False), (1, 5, True), (2, 14, False), (2, 15, True), (0, 0, True)],
)
def test_the_volume_filter_needs_factor_times_the_slow_windows_mean_volume(
    factor: int, volume: int, emitted: bool
) -> None:
    # At the cross (bar 5) the window's volumes are 5, 5, 5 and V: the mean is (15 + V) / 4.
    closes = [10, 9, 8, 7, 8, 10, 11]
    volumes = [5, 5, 5, 5, 5, volume, 100]
    found = run(config(fastWindow=2, slowWindow=4, volumeFactor=factor), closes, volumes)
    # A cross the filter drops is spent: the next bar, far above and with a big volume, is no cross.
    assert found == ([(5, "buy", 5)] if emitted else [])


def test_the_volume_filter_is_skipped_without_volumes() -> None:
    closes = [10, 9, 8, 7, 8, 10]
    strict = config(fastWindow=2, slowWindow=4, volumeFactor=1000)
    assert run(strict, closes) == [(5, "buy", 5)]
    # A window with a bar that carried no volume cannot be judged either.
    assert run(strict, closes, [5, 5, None, 5, 5, 1]) == [(5, "buy", 5)]
    assert run(strict, closes, [5, 5, 5, 5, 5, 1]) == []


@pytest.mark.parametrize(
    ("cooldown", "expected"),
    [
        (0, [(2, "buy"), (3, "sell"), (4, "buy"), (7, "sell")]),
        (1, [(2, "buy"), (4, "buy"), (7, "sell")]),
        (2, [(2, "buy"), (7, "sell")]),
        (4, [(2, "buy"), (7, "sell")]),
        (5, [(2, "buy")]),
    ],
)
def test_the_cooldown_silences_the_next_bars_of_the_instrument(
    cooldown: int, expected: list[tuple[int, str]]
) -> None:
    # fast 1, slow 2: a cross at every change of direction (bars 2, 3, 4 and 7).
    closes = [10, 9, 10, 9, 10, 11, 12, 11]
    found = run(config(fastWindow=1, slowWindow=2, cooldownBars=cooldown, **NO_VOLUME_FILTER), closes)
    assert [(i, kind) for i, kind, _ in found] == expected


def test_the_cooldown_and_the_averages_are_per_instrument() -> None:
    strategy = Strategy(config(fastWindow=1, slowWindow=2, cooldownBars=3, **NO_VOLUME_FILTER))
    found = []
    for i, close in enumerate([10, 9, 10, 9]):
        for symbol, price in (("BTC", close), ("ETH", 20 - close)):
            signal = strategy.on_bar(symbol, f"paper:{symbol.lower()}", Decimal(price), None, i)
            if signal is not None:
                found.append((i, symbol, signal.signal_type))
    assert found == [(2, "BTC", "buy"), (2, "ETH", "sell")]


def test_weaker_signals_than_min_strength_and_other_symbols_are_dropped() -> None:
    base = {"fastWindow": 1, "slowWindow": 2, **NO_VOLUME_FILTER}
    assert run(config(**base, minStrength=3), [101, 100, "100.3"]) == []
    assert run(config(**base, minStrength=3), [101, 100, "100.7"]) == [(2, "buy", 3)]
    assert run(config(**base, symbols=["eth", "SOL"]), [10, 9, 10]) == []
    assert run(config(**base, symbols=["eth", "btc"]), [10, 9, 10]) == [(2, "buy", 5)]


def test_a_new_config_keeps_the_recent_closes() -> None:
    strategy = Strategy(config(fastWindow=2, slowWindow=3, **NO_VOLUME_FILTER))
    for i, close in enumerate([10, 9, 8]):
        assert strategy.on_bar("BTC", TOKEN, Decimal(close), None, i) is None
    strategy.reconfigure(config(fastWindow=1, slowWindow=2, **NO_VOLUME_FILTER))
    # The kept closes 9, 8 fill the new window (below: 8 < 8.5), so the next bar can cross at once.
    signal = strategy.on_bar("BTC", TOKEN, Decimal(12), None, 3)
    assert signal is not None
    assert (signal.signal_type, signal.fast, signal.slow) == ("buy", Decimal(12), Decimal(10))
    # A longer window warms up again: 8, 12 and two more closes are not ten.
    strategy.reconfigure(config(fastWindow=2, slowWindow=10, **NO_VOLUME_FILTER))
    assert strategy.on_bar("BTC", TOKEN, Decimal(1), None, 4) is None
    assert strategy.on_bar("BTC", TOKEN, Decimal(50), None, 5) is None


# ------------------------------------------------------------------------------------ determinism


def _path(seed: int, bars: int) -> list[tuple[str, Decimal, Decimal]]:
    rng = random.Random(seed)
    prices = {"BTC": 40_000_00000000, "ETH": 2_000_00000000}
    path = []
    for _ in range(bars):
        for symbol, before in list(prices.items()):
            prices[symbol] = after = max(1, before + rng.randint(-before // 50, before // 50))
            volume = Decimal(rng.randint(1, 10**10)).scaleb(-8)
            path.append((symbol, Decimal(after).scaleb(-8), volume))
    return path


def _signals(path: list[tuple[str, Decimal, Decimal]], cfg: StrategyConfig) -> list[Signal]:
    strategy = Strategy(cfg)
    found = []
    for i, (symbol, close, volume) in enumerate(path):
        signal = strategy.on_bar(symbol, f"paper:{symbol.lower()}", close, volume, i)
        if signal is not None:
            found.append(signal)
    return found


def test_the_same_bars_give_the_same_signals_whatever_the_decimal_context() -> None:
    path = _path(3, 400)
    cfg = config(fastWindow=3, slowWindow=8, volumeFactor="0.8", cooldownBars=2)
    first = _signals(path, cfg)
    assert len(first) > 5 and {s.signal_type for s in first} == {"buy", "sell"}
    assert len({s.strength for s in first}) > 1
    assert _signals(path, cfg) == first
    with decimal.localcontext(prec=6, rounding=decimal.ROUND_FLOOR):
        assert _signals(path, cfg) == first
    # Each signal's figures are what its bars say.
    for signal in first:
        assert signal.fast > signal.slow if signal.signal_type == "buy" else signal.fast < signal.slow


# ------------------------------------------------------------------------------------ the config


def test_the_defaults_and_the_document_round_trip() -> None:
    default = StrategyConfig()
    assert default.to_doc() == {
        "fastWindow": 5,
        "slowWindow": 20,
        "volumeFactor": Decimal("1.0"),
        "cooldownBars": 0,
        "symbols": [],
        "minStrength": 1,
    }
    custom = config(
        fastWindow=3,
        slowWindow=30,
        volumeFactor=1.5,
        cooldownBars=4,
        symbols=["btc", "ETH", "btc"],
        minStrength=2,
    )
    assert custom.symbols == ("BTC", "ETH") and custom.volume_factor == Decimal("1.5")
    assert StrategyConfig.from_doc(custom.to_doc()) == custom
    # A partial document updates the fields it names.
    assert StrategyConfig.from_doc({"cooldownBars": 9}, custom) == StrategyConfig(
        3, 30, Decimal("1.5"), 9, ("BTC", "ETH"), 2
    )
    assert StrategyConfig.from_doc({}, custom) == custom


def test_every_invalid_field_is_named() -> None:
    with pytest.raises(ConfigError) as refused:
        StrategyConfig.from_doc(
            {
                "fastWindow": 0,
                "slowWindow": "20",
                "volumeFactor": -1,
                "cooldownBars": True,
                "symbols": ["BTC", "", 3],
                "minStrength": 6,
                "speed": 1,
            }
        )
    errors = {e.field: e.message for e in refused.value.errors}
    assert set(errors) == {
        "speed",
        "fastWindow",
        "slowWindow",
        "volumeFactor",
        "cooldownBars",
        "symbols[1]",
        "symbols[2]",
        "minStrength",
    }
    assert errors["speed"] == "unknown field"
    assert errors["fastWindow"] == errors["slowWindow"] == "must be an integer from 1 to 1000"
    assert errors["minStrength"] == "must be an integer from 1 to 5"
    assert errors["volumeFactor"] == "must be a number from 0 to 1000"
    assert "symbols[1]: must be a non-empty symbol" in str(refused.value)


@pytest.mark.parametrize(
    ("doc", "field", "message"),
    [
        ({"fastWindow": 20}, "fastWindow", "must be less than slowWindow (20)"),
        ({"slowWindow": 5}, "slowWindow", "must be greater than fastWindow (5)"),
        ({"fastWindow": 9, "slowWindow": 9}, "slowWindow", "must be greater than fastWindow (9)"),
        ({"volumeFactor": "lots"}, "volumeFactor", "must be a number from 0 to 1000"),
        ({"volumeFactor": float("nan")}, "volumeFactor", "must be a number from 0 to 1000"),
        ({"cooldownBars": 2.5}, "cooldownBars", "must be an integer from 0 to 100000"),
        ({"symbols": "BTC"}, "symbols", "must be a list of at most 100 symbols (empty: all)"),
        ({"symbols": ["X"] * 101}, "symbols", "must be a list of at most 100 symbols (empty: all)"),
    ],
)
def test_a_bad_field_is_refused_with_its_name(doc: dict[str, object], field: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        StrategyConfig.from_doc(doc)
    assert [(e.field, e.message) for e in refused.value.errors] == [(field, message)]


def test_a_config_that_is_no_object_or_built_wrong_is_refused() -> None:
    with pytest.raises(ConfigError, match="must be a JSON object"):
        StrategyConfig.from_doc(["fastWindow", 5])
    with pytest.raises(ConfigError, match="slowWindow: must be greater than fastWindow"):
        StrategyConfig(fast_window=5, slow_window=5)
    with pytest.raises(ConfigError, match="symbols"):
        StrategyConfig(symbols=("btc",))
    # JSON's 5.0 is 5.
    assert config(fastWindow=5.0).fast_window == 5
