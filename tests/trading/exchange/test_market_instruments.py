"""The instrument list and the ``coins=`` lookup: symbols or ids in any case, unknown names reported;
extra synthetic instruments for load runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agents_examples.trading.exchange.market.instruments import (
    DEFAULT_INSTRUMENTS,
    Instrument,
    InstrumentKind,
    InstrumentSet,
    UnknownInstrumentError,
    paper_token_address,
    with_synthetic,
)
from agents_examples.trading.exchange.market.sources import load_market_data
from agents_examples.trading.exchange.service import ExchangeService
from agents_examples.trading.exchange.store import AccountStore


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


def test_extra_synthetic_instruments_are_listed_after_the_shipped_ones_on_synthetic_bars(
    tmp_path: Path,
) -> None:
    instruments = with_synthetic(12)
    assert len(instruments) == 20
    assert instruments.symbols[:8] == DEFAULT_INSTRUMENTS.symbols
    assert (
        instruments.symbols[8:10] == ("SYN01", "SYN02") and instruments.get("synthetic-12").symbol == "SYN12"
    )
    market = load_market_data(instruments, seed=3, use_real=False)
    service = ExchangeService(AccountStore(tmp_path), market, instruments=instruments)
    assert service.instruments.symbols == instruments.symbols
    assert all(market.series[s].bars for s in instruments.symbols)
    assert with_synthetic(0).symbols == DEFAULT_INSTRUMENTS.symbols
    with pytest.raises(ValueError, match="between 0 and 100"):
        with_synthetic(101)


def test_the_exchange_command_refuses_more_extra_instruments_than_it_can_list(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "agents_examples.trading.exchange", "--data-dir", str(tmp_path),
               "--port", "1", "--extra-instruments", "101"]  # fmt: skip
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--extra-instruments must be 0 to 100" in result.stderr
