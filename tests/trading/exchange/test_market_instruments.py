"""The instrument list and the ``coins=`` lookup: symbols or ids in any case, unknown names reported."""

from __future__ import annotations

import pytest

from agents_examples.trading.exchange.market.instruments import (
    DEFAULT_INSTRUMENTS,
    Instrument,
    InstrumentKind,
    InstrumentSet,
    UnknownInstrumentError,
    paper_token_address,
)


def test_the_default_list_holds_the_three_coins_and_the_five_stocks() -> None:
    assert DEFAULT_INSTRUMENTS.symbols == ("BTC", "ETH", "SOL", "AAPL", "GOOG", "IBM", "MSFT", "FB")
    bitcoin = DEFAULT_INSTRUMENTS.get("BTC")
    assert (bitcoin.id, bitcoin.quote, bitcoin.kind) == ("bitcoin", "USD", InstrumentKind.CRYPTO)
    assert DEFAULT_INSTRUMENTS.get("AAPL").kind is InstrumentKind.STOCK


@pytest.mark.parametrize("key", ["BTC", "btc", "Bitcoin", "bitcoin", " BITCOIN "])
def test_a_symbol_or_an_id_in_any_case_finds_the_instrument(key: str) -> None:
    assert DEFAULT_INSTRUMENTS.get(key).symbol == "BTC"
    assert key in DEFAULT_INSTRUMENTS


def test_coins_lists_mix_ids_and_symbols_keep_their_order_and_name_each_once() -> None:
    found = DEFAULT_INSTRUMENTS.parse_coins("bitcoin,ETH, sol ,btc,,")
    assert [i.symbol for i in found] == ["BTC", "ETH", "SOL"]


@pytest.mark.parametrize("coins", [None, "", " ", ",,"])
def test_no_coins_means_every_instrument(coins: str | None) -> None:
    assert DEFAULT_INSTRUMENTS.parse_coins(coins) == tuple(DEFAULT_INSTRUMENTS)


def test_unknown_coins_are_all_named_in_one_error_with_the_listed_ones() -> None:
    with pytest.raises(UnknownInstrumentError) as caught:
        DEFAULT_INSTRUMENTS.parse_coins("bitcoin,dogecoin,XRP,dogecoin")
    assert caught.value.unknown == ("dogecoin", "XRP")
    assert caught.value.code == "UNKNOWN_INSTRUMENT"
    message = str(caught.value)
    assert "'dogecoin'" in message and "'XRP'" in message and "BTC (bitcoin)" in message
    with pytest.raises(UnknownInstrumentError, match="'nope'"):
        DEFAULT_INSTRUMENTS.get("nope")
    assert "nope" not in DEFAULT_INSTRUMENTS


def test_token_addresses_are_made_up_labelled_stable_and_distinct() -> None:
    addresses = [i.token_address for i in DEFAULT_INSTRUMENTS]
    assert len(set(addresses)) == len(addresses)
    bitcoin = DEFAULT_INSTRUMENTS.get("bitcoin")
    assert bitcoin.token_address == paper_token_address("bitcoin")
    assert bitcoin.token_address.startswith("paper:") and len(bitcoin.token_address) == len("paper:") + 40
    assert Instrument("X", "bitcoin", "again", InstrumentKind.CRYPTO).token_address == bitcoin.token_address
    assert DEFAULT_INSTRUMENTS.by_token_address(bitcoin.token_address.upper()) == bitcoin
    with pytest.raises(UnknownInstrumentError):
        DEFAULT_INSTRUMENTS.by_token_address("So11111111111111111111111111111111111111112")


def test_two_instruments_answering_to_one_name_are_refused() -> None:
    first = Instrument("ABC", "alpha", "Alpha", InstrumentKind.STOCK)
    clash = Instrument("ALPHA", "beta", "Beta", InstrumentKind.STOCK)
    with pytest.raises(ValueError, match="alpha"):
        InstrumentSet([first, clash])
    same_name = Instrument("IBM", "ibm", "IBM", InstrumentKind.STOCK)  # symbol and id alike: fine
    assert InstrumentSet([same_name]).get("Ibm") == same_name
