"""The signal body from the outside: Nexgent's names, the seed's ``action``/``score``, the limits, dedupe.

Nexgent's ``POST /trading-signals`` takes ``tokenAddress`` (at most 255 characters), ``signalType`` (50),
``signalStrength`` (an integer 1-5), and optional ``symbol`` (50), ``source`` (100) and
``activationReason``; the seed sends ``action`` and ``score`` for the type and the strength. Anything
else is refused, every problem at once, and nothing but a :class:`SignalError` may come out of the
parser whatever it is given.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents_examples.trading.engine.domain.config import FieldError
from agents_examples.trading.engine.domain.signals import (
    DUPLICATE_WINDOW_MS,
    SignalError,
    SignalInput,
    dedupe_key,
    parse_signal,
)

SOL = "So11111111111111111111111111111111111111112"


def body(**changes: object) -> dict[str, object]:
    """A minimal valid body with ``changes`` (a value of ``...`` drops the field)."""
    doc: dict[str, object] = {"tokenAddress": SOL, "signalType": "buy", "signalStrength": 4}
    for name, value in changes.items():
        if value is ...:
            doc.pop(name, None)
        else:
            doc[name] = value
    return doc


def errors_of(doc: object) -> list[FieldError]:
    with pytest.raises(SignalError) as caught:
        parse_signal(doc)
    assert caught.value.errors
    return caught.value.errors


def paths_of(doc: object) -> list[str]:
    return [e.field for e in errors_of(doc)]


# ------------------------------------------------------------------------------------------- accepted


def test_the_real_nexgent_body_is_read_in_full() -> None:
    signal = parse_signal(
        {
            "tokenAddress": SOL,
            "symbol": "SOL",
            "signalType": "Velocity (Dex Boost Detection)",
            "signalStrength": 4,
            "activationReason": "Volume spike",
            "source": "replay-bot",
        }
    )
    assert signal == SignalInput(
        SOL, "SOL", "Velocity (Dex Boost Detection)", 4, "Volume spike", "replay-bot"
    )


def test_the_optional_fields_default_to_none() -> None:
    signal = parse_signal(body())
    assert (signal.symbol, signal.activation_reason, signal.source) == (None, None, None)
    assert (signal.token_address, signal.signal_type, signal.signal_strength) == (SOL, "buy", 4)


def test_an_empty_or_null_optional_field_is_none() -> None:
    signal = parse_signal(body(symbol="", source="   ", activationReason=None))
    assert (signal.symbol, signal.source, signal.activation_reason) == (None, None, None)


def test_strings_are_stripped() -> None:
    signal = parse_signal(
        body(tokenAddress=f"  {SOL}\n", signalType=" buy ", symbol=" SOL ", source="\tbot ")
    )
    assert (signal.token_address, signal.signal_type, signal.symbol, signal.source) == (
        SOL,
        "buy",
        "SOL",
        "bot",
    )


def test_the_seeds_action_and_score_are_read_as_type_and_strength() -> None:
    signal = parse_signal({"tokenAddress": SOL, "action": "buy", "score": 3})
    assert (signal.signal_type, signal.signal_strength) == ("buy", 3)
    assert parse_signal({"tokenAddress": SOL, "action": "sell", "signalStrength": 2}).signal_type == "sell"
    assert parse_signal({"tokenAddress": SOL, "signalType": "buy", "score": 5}).signal_strength == 5


def test_both_spellings_with_the_same_value_are_accepted() -> None:
    signal = parse_signal(body(action="buy", score=4))
    assert (signal.signal_type, signal.signal_strength) == ("buy", 4)
    assert parse_signal(body(score=4.0)).signal_strength == 4


@pytest.mark.parametrize("strength", [1, 2, 3, 4, 5, 4.0, 1.0, 5.0])
def test_an_integral_strength_from_1_to_5_is_accepted(strength: float) -> None:
    signal = parse_signal(body(signalStrength=strength))
    assert signal.signal_strength == int(strength)
    assert type(signal.signal_strength) is int


# ------------------------------------------------------------------------------------------- refused


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"action": "sell"}, "action"),
        ({"score": 2}, "score"),
        ({"score": True}, "score"),
    ],
)
def test_conflicting_spellings_are_refused(changes: dict[str, object], path: str) -> None:
    errors = errors_of(body(**changes))
    assert path in [e.field for e in errors]
    error = next(e for e in errors if e.field == path)
    assert "disagree" in error.message


def test_both_conflicts_are_reported() -> None:
    assert sorted(paths_of(body(action="sell", score=1))) == ["action", "score"]


@pytest.mark.parametrize("name", ["tokenAddress", "signalType", "signalStrength"])
def test_a_missing_required_field_is_named(name: str) -> None:
    errors = errors_of(body(**{name: ...}))
    assert [e.field for e in errors] == [name]
    assert "required" in errors[0].message


@pytest.mark.parametrize("name", ["tokenAddress", "signalType", "signalStrength"])
def test_a_null_required_field_is_missing(name: str) -> None:
    assert paths_of(body(**{name: None})) == [name]


def test_an_empty_body_names_all_three_required_fields() -> None:
    assert sorted(paths_of({})) == ["signalStrength", "signalType", "tokenAddress"]


@pytest.mark.parametrize("value", ["", "   ", 123, ["x"], {"a": 1}, True])
@pytest.mark.parametrize("name", ["tokenAddress", "signalType"])
def test_a_required_text_must_be_a_non_empty_string(name: str, value: object) -> None:
    assert paths_of(body(**{name: value})) == [name]


def test_an_empty_action_does_not_stand_in_for_signal_type() -> None:
    assert "signalType" in paths_of({"tokenAddress": SOL, "action": "  ", "signalStrength": 3})


@pytest.mark.parametrize("value", [7, ["SOL"], False, {"x": 1}])
@pytest.mark.parametrize("name", ["symbol", "source", "activationReason"])
def test_an_optional_text_must_be_a_string(name: str, value: object) -> None:
    assert paths_of(body(**{name: value})) == [name]


@pytest.mark.parametrize(
    "strength",
    [
        0,
        6,
        -1,
        4.5,
        0.5,
        5.000001,
        True,
        False,
        "4",
        "four",
        [4],
        {"v": 4},
        math.nan,
        math.inf,
        -math.inf,
        Decimal(4),
    ],
    ids=repr,
)
def test_a_strength_that_is_not_an_integer_from_1_to_5_is_refused(strength: object) -> None:
    errors = errors_of(body(signalStrength=strength))
    assert errors == [FieldError("signalStrength", "signalStrength must be an integer from 1 to 5")]


@pytest.mark.parametrize("strength", [0, 6, 4.5, True, "4", math.nan, math.inf])
def test_a_bad_score_is_reported_as_the_strength(strength: object) -> None:
    assert paths_of({"tokenAddress": SOL, "action": "buy", "score": strength}) == ["signalStrength"]


@pytest.mark.parametrize(
    ("name", "limit"),
    [("tokenAddress", 255), ("signalType", 50), ("symbol", 50), ("source", 100), ("activationReason", 500)],
)
def test_texts_are_bounded(name: str, limit: int) -> None:
    fits = parse_signal(body(**{name: "x" * limit}))
    attribute = {
        "tokenAddress": "token_address",
        "signalType": "signal_type",
        "symbol": "symbol",
        "source": "source",
        "activationReason": "activation_reason",
    }[name]
    assert getattr(fits, attribute) == "x" * limit
    errors = errors_of(body(**{name: "x" * (limit + 1)}))
    assert [e.field for e in errors] == [name]
    assert str(limit) in errors[0].message
    # surrounding blanks do not count towards the limit
    assert getattr(parse_signal(body(**{name: f"  {'x' * limit}  "})), attribute) == "x" * limit


@pytest.mark.parametrize("name", ["signal_strength", "token", "side", "price", "signalId", "Action"])
def test_an_unknown_field_is_refused_by_name(name: str) -> None:
    assert errors_of(body(**{name: 1})) == [FieldError(name, "unknown field")]


@pytest.mark.parametrize("doc", [None, [], "buy", 4, True])
def test_a_body_that_is_not_an_object_is_refused(doc: object) -> None:
    assert paths_of(doc) == [""]


def test_every_mistake_is_reported_at_once() -> None:
    errors = errors_of({"tokenAddress": "", "signalStrength": 9, "price": 1, "symbol": "x" * 51})
    assert sorted(e.field for e in errors) == [
        "price",
        "signalStrength",
        "signalType",
        "symbol",
        "tokenAddress",
    ]


def test_an_error_reads_field_colon_message() -> None:
    with pytest.raises(SignalError) as caught:
        parse_signal(body(signalStrength=0))
    assert str(caught.value) == "signalStrength: signalStrength must be an integer from 1 to 5"
    assert isinstance(caught.value, ValueError)


# ----------------------------------------------------------------------------------- sell and dedupe


@pytest.mark.parametrize(("kind", "sell"), [("sell", True), ("SELL", True), (" Sell ", True), ("sElL", True)])
def test_a_sell_signal_is_recognised_in_any_case(kind: str, sell: bool) -> None:
    assert parse_signal(body(signalType=kind)).is_sell is sell
    assert parse_signal({"tokenAddress": SOL, "action": kind, "score": 1}).is_sell is sell


@pytest.mark.parametrize("kind", ["buy", "BUY", "sells", "sell-off", "Velocity", "s ell"])
def test_other_types_are_not_sells(kind: str) -> None:
    assert parse_signal(body(signalType=kind)).is_sell is False


def test_the_duplicate_window_is_nexgents_60_seconds() -> None:
    assert DUPLICATE_WINDOW_MS == 60_000


def test_the_dedupe_key_ignores_the_case_of_the_type() -> None:
    one = parse_signal(body(signalType="Velocity"))
    other = parse_signal({"tokenAddress": f" {SOL} ", "action": "VELOCITY ", "score": 4})
    assert dedupe_key("user-1", one) == dedupe_key("user-1", other)


def test_the_dedupe_key_tells_the_token_the_strength_and_the_publisher_apart() -> None:
    signal = parse_signal(body())
    key = dedupe_key("user-1", signal)
    assert dedupe_key("user-2", signal) != key
    assert dedupe_key("user-1", parse_signal(body(signalStrength=3))) != key
    assert dedupe_key("user-1", parse_signal(body(signalType="sell"))) != key
    assert dedupe_key("user-1", parse_signal(body(tokenAddress="Other111"))) != key
    # what is not compared: the symbol, the reason and the source
    assert dedupe_key("user-1", parse_signal(body(symbol="X", source="bot", activationReason="why"))) == key


def test_the_dedupe_key_keeps_the_case_of_the_token() -> None:
    """Solana addresses are base58 and case-sensitive: two mints differing only in case are two tokens."""
    upper = parse_signal(body(tokenAddress="AbCd1111"))
    lower = parse_signal(body(tokenAddress="abcd1111"))
    assert dedupe_key("u", upper) != dedupe_key("u", lower)
    assert dedupe_key("u", upper) == dedupe_key("u", parse_signal(body(tokenAddress=" AbCd1111 ")))


# ------------------------------------------------------------------------------------------ properties

TEXT = st.text(min_size=1, max_size=40).filter(lambda s: s.strip() == s and s != "")


@settings(max_examples=200, deadline=None)
@given(
    token=st.text(min_size=1, max_size=255).filter(lambda s: s.strip() == s and s != ""),
    kind=TEXT,
    strength=st.integers(1, 5),
    symbol=st.none() | TEXT,
    use_aliases=st.booleans(),
)
def test_any_valid_body_is_read_back_as_given(
    token: str, kind: str, strength: int, symbol: str | None, use_aliases: bool
) -> None:
    doc: dict[str, object] = {"tokenAddress": token}
    doc.update(
        {"action": kind, "score": strength}
        if use_aliases
        else {"signalType": kind, "signalStrength": strength}
    )
    if symbol is not None:
        doc["symbol"] = symbol
    signal = parse_signal(doc)
    assert (signal.token_address, signal.signal_type, signal.signal_strength, signal.symbol) == (
        token,
        kind,
        strength,
        symbol,
    )
    assert signal.is_sell == (kind.lower() == "sell")


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=300),
)
JUNK: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=10,
)
EDGE_VALUES: st.SearchStrategy[object] = st.sampled_from(
    [math.nan, math.inf, -math.inf, 0, 3, 4.0, 4.5, 2**64, True, None, "", " ", "4", "x" * 256, [], {}]
)
FIELD_NAMES = st.sampled_from(
    [
        "tokenAddress",
        "symbol",
        "signalType",
        "signalStrength",
        "activationReason",
        "source",
        "action",
        "score",
        "x",
    ]
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=st.one_of(JUNK, st.dictionaries(FIELD_NAMES, st.one_of(EDGE_VALUES, JUNK), max_size=8)))
def test_junk_never_raises_anything_but_signal_error(doc: object) -> None:
    try:
        signal = parse_signal(doc)
    except SignalError as error:
        assert error.errors
        assert all(isinstance(e.field, str) and e.message for e in error.errors)
    else:
        assert isinstance(signal, SignalInput)
        assert 1 <= signal.signal_strength <= 5
        assert signal.token_address and signal.signal_type
