"""The instruments the paper exchange lists, and the lookup behind ``coins=`` ("bitcoin,ETH").

Each instrument has a ticker ``symbol`` (``BTC``), a CoinGecko-style ``id`` (``bitcoin``), a quote
currency (always ``USD`` here) and a ``token_address``. The paper exchange trades nothing on chain, so the
token address is made up: ``paper:`` followed by the first 40 hex digits of
``sha256("a2a-paper-exchange/" + id)``. It is stable across runs and machines, and its ``paper:`` prefix
says it is no real contract or mint address.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

QUOTE_CURRENCY: Final = "USD"
TOKEN_ADDRESS_PREFIX: Final = "paper:"  # noqa: S105 (a label, not a secret)


class InstrumentKind(StrEnum):
    """What an instrument is: a crypto asset or a stock."""

    CRYPTO = "crypto"
    STOCK = "stock"


def paper_token_address(instrument_id: str) -> str:
    """The made-up, deterministic token address of the instrument with this id (see the module doc)."""
    digest = hashlib.sha256(f"a2a-paper-exchange/{instrument_id}".encode()).hexdigest()
    return f"{TOKEN_ADDRESS_PREFIX}{digest[:40]}"


@dataclass(frozen=True, slots=True)
class Instrument:
    """One listed instrument, quoted in ``quote`` (USD)."""

    symbol: str
    id: str
    name: str
    kind: InstrumentKind
    quote: str = QUOTE_CURRENCY
    token_address: str = field(init=False)

    def __post_init__(self) -> None:
        if not self.symbol or not self.id:
            raise ValueError("an instrument needs a symbol and an id")
        object.__setattr__(self, "token_address", paper_token_address(self.id))


class UnknownInstrumentError(ValueError):
    """A ``coins=`` entry (or a lookup) that names no listed instrument; ``unknown`` holds them all."""

    code: Final = "UNKNOWN_INSTRUMENT"

    def __init__(self, unknown: Iterable[str], known: Iterable[Instrument]) -> None:
        self.unknown = tuple(unknown)
        names = ", ".join(repr(name) for name in self.unknown)
        listed = ", ".join(f"{i.symbol} ({i.id})" for i in known)
        plural = "s" if len(self.unknown) > 1 else ""
        super().__init__(f"unknown instrument{plural} {names}; listed: {listed}")


class InstrumentSet:
    """A set of instruments looked up by symbol or id, case-insensitively."""

    def __init__(self, instruments: Iterable[Instrument]) -> None:
        self._instruments = tuple(instruments)
        self._by_key: dict[str, Instrument] = {}
        self._by_token: dict[str, Instrument] = {}
        for instrument in self._instruments:
            for key in {instrument.symbol.lower(), instrument.id.lower()}:
                if key in self._by_key:
                    raise ValueError(f"two instruments answer to {key!r}")
                self._by_key[key] = instrument
            self._by_token[instrument.token_address] = instrument

    def __iter__(self) -> Iterator[Instrument]:
        return iter(self._instruments)

    def __len__(self) -> int:
        return len(self._instruments)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.strip().lower() in self._by_key

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(i.symbol for i in self._instruments)

    def get(self, key: str) -> Instrument:
        """The instrument whose symbol or id is ``key`` (any case, surrounding spaces ignored)."""
        found = self._by_key.get(key.strip().lower())
        if found is None:
            raise UnknownInstrumentError([key.strip()], self._instruments)
        return found

    def by_token_address(self, token_address: str) -> Instrument:
        """The instrument with this (made-up) token address, any case."""
        found = self._by_token.get(token_address.strip().lower())
        if found is None:
            raise UnknownInstrumentError([token_address.strip()], self._instruments)
        return found

    def parse_coins(self, coins: str | None) -> tuple[Instrument, ...]:
        """The instruments a ``coins=`` value names, in its order, each once.

        Entries are separated by commas and may be symbols or ids in any case; empty entries are ignored,
        and no entry at all (``None`` or blank) means every instrument. Unknown entries are reported
        together in one :class:`UnknownInstrumentError`.
        """
        if coins is None:
            return self._instruments
        entries = [entry.strip() for entry in coins.split(",")]
        entries = [entry for entry in entries if entry]
        if not entries:
            return self._instruments
        unknown = [entry for entry in entries if entry.lower() not in self._by_key]
        if unknown:
            raise UnknownInstrumentError(dict.fromkeys(unknown), self._instruments)
        return tuple(dict.fromkeys(self._by_key[entry.lower()] for entry in entries))


BITCOIN: Final = Instrument("BTC", "bitcoin", "Bitcoin", InstrumentKind.CRYPTO)
ETHEREUM: Final = Instrument("ETH", "ethereum", "Ethereum", InstrumentKind.CRYPTO)
SOLANA: Final = Instrument("SOL", "solana", "Solana", InstrumentKind.CRYPTO)
APPLE: Final = Instrument("AAPL", "apple", "Apple Inc.", InstrumentKind.STOCK)
GOOGLE: Final = Instrument("GOOG", "google", "Google Inc. (class A, pre-2014)", InstrumentKind.STOCK)
IBM: Final = Instrument("IBM", "ibm", "International Business Machines", InstrumentKind.STOCK)
MICROSOFT: Final = Instrument("MSFT", "microsoft", "Microsoft Corporation", InstrumentKind.STOCK)
FACEBOOK: Final = Instrument("FB", "facebook", "Facebook, Inc.", InstrumentKind.STOCK)

# The crypto instruments replay Jesse's candles, the stocks bokeh-sampledata's daily bars (sources.py).
DEFAULT_INSTRUMENTS: Final = InstrumentSet(
    [BITCOIN, ETHEREUM, SOLANA, APPLE, GOOGLE, IBM, MICROSOFT, FACEBOOK]
)


MAX_EXTRA_INSTRUMENTS: Final = 100


def with_synthetic(count: int, base: InstrumentSet = DEFAULT_INSTRUMENTS) -> InstrumentSet:
    """``base`` and ``count`` more instruments with no real data (``SYN01`` "synthetic-01", …), which the
    exchange replays on seeded synthetic bars: for load runs that need more instruments than ship."""
    if not 0 <= count <= MAX_EXTRA_INSTRUMENTS:
        raise ValueError(f"between 0 and {MAX_EXTRA_INSTRUMENTS} extra instruments")
    extra = [
        Instrument(f"SYN{n:02d}", f"synthetic-{n:02d}", f"Synthetic {n:02d}", InstrumentKind.CRYPTO)
        for n in range(1, count + 1)
    ]
    return InstrumentSet([*base, *extra])
