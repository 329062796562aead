"""The install step for the exchange's market data (``make`` runs it after installing the project):
``python -m agents_examples.trading.exchange.market.install [--cache DIR] [--force]``.

1. Downloads the ``jesse`` wheel (``pip download --no-deps``; it is never installed), reads the candle
   arrays in its ``tests/data/*.py`` and writes the BTC, ETH and SOL series to a CSV cache with Jesse's
   MIT licence beside them (``sources.extract_jesse_wheel`` / ``sources.write_jesse_cache``).
2. Installs ``bokeh-sampledata`` with ``pip install --no-deps`` (its pandas and numpy requirements are not
   needed: the exchange reads its stocks CSV directly).

Each part is skipped when already done (``--force`` redoes it). A failure (no network, no registry) is
reported as a warning and the command still exits 0: the exchange then replays synthetic bars for what
is missing, labelled so. Nothing here runs when the exchange runs.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from agents_examples.trading.exchange.market.sources import (
    BOKEH_DISTRIBUTION,
    BOKEH_VERSION,
    JESSE_PACKAGE,
    JESSE_VERSION,
    MarketDataError,
    default_cache_dir,
    extract_jesse_wheel,
    load_jesse_cache,
    load_market_data,
    write_jesse_cache,
)

PIP_TIMEOUT_S = 900  # a 35 MB wheel on a slow link
_PIP_NETWORK = ("--disable-pip-version-check", "--timeout", "30", "--retries", "2")


def _pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", *args, *_PIP_NETWORK]
    result = subprocess.run(  # noqa: S603 (our own interpreter, fixed arguments)
        command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False
    )
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise MarketDataError(f"pip {args[0]} failed ({result.returncode}): {' / '.join(tail)}")


def install_jesse_candles(cache_dir: Path, *, force: bool = False) -> str:
    """Download the Jesse wheel into a temporary directory and write the candle cache; returns what
    was done. Raises :class:`MarketDataError` (or ``OSError``, ``subprocess.TimeoutExpired``)."""
    if not force:
        try:
            cached = load_jesse_cache(cache_dir)
        except MarketDataError:
            cached = {}
        if cached and all(s.provenance.version == JESSE_VERSION for s in cached.values()):
            return f"jesse candles already in {cache_dir} ({', '.join(sorted(cached))})"
    with tempfile.TemporaryDirectory(prefix="jesse-wheel-") as temp:
        _pip(
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
            temp,
            "--quiet",
            f"{JESSE_PACKAGE}=={JESSE_VERSION}",
        )
        wheels = sorted(Path(temp).glob(f"{JESSE_PACKAGE}-{JESSE_VERSION}-*.whl"))
        if not wheels:
            raise MarketDataError(f"pip download left no {JESSE_PACKAGE} {JESSE_VERSION} wheel")
        extract = extract_jesse_wheel(wheels[0])
    write_jesse_cache(extract, cache_dir)
    chosen = ", ".join(f"{symbol} {array.name}" for symbol, array in sorted(extract.series.items()))
    return f"jesse {extract.version} candles written to {cache_dir} ({chosen})"


def install_bokeh_sampledata(*, force: bool = False) -> str:
    """``pip install --no-deps bokeh-sampledata`` into this interpreter's environment, unless there."""
    try:
        installed = importlib.metadata.version(BOKEH_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        installed = None
    if installed == BOKEH_VERSION and not force:
        return f"{BOKEH_DISTRIBUTION} {installed} already installed"
    _pip("install", "--no-deps", "--quiet", f"{BOKEH_DISTRIBUTION}=={BOKEH_VERSION}")
    importlib.invalidate_caches()
    return f"{BOKEH_DISTRIBUTION} {BOKEH_VERSION} installed"


def main(argv: Sequence[str] | None = None) -> int:
    """Obtain both data packages and report what the exchange will replay; always returns 0."""
    parser = argparse.ArgumentParser(
        prog="python -m agents_examples.trading.exchange.market.install",
        description="Fetch the paper exchange's historical market data from PyPI (never at run time).",
    )
    parser.add_argument(
        "--cache", type=Path, default=None, help=f"candle cache (default {default_cache_dir()})"
    )
    parser.add_argument("--force", action="store_true", help="download and rebuild even when present")
    args = parser.parse_args(argv)
    cache_dir: Path = args.cache or default_cache_dir()
    force: bool = args.force
    steps: tuple[tuple[str, Callable[[], str]], ...] = (
        ("jesse candles", lambda: install_jesse_candles(cache_dir, force=force)),
        (BOKEH_DISTRIBUTION, lambda: install_bokeh_sampledata(force=force)),
    )
    for name, step in steps:
        try:
            print(f"market data: {step()}")
        except (MarketDataError, OSError, subprocess.SubprocessError) as error:
            print(
                f"market data: WARNING: could not obtain {name}: {error}. The exchange will replay "
                "synthetic bars instead (labelled synthetic); run this again when online.",
                file=sys.stderr,
            )
    data = load_market_data(cache_dir=cache_dir)
    for provenance in data.provenance():
        where = f"{provenance.package} {provenance.version}" if provenance.real else provenance.note
        shape = f"{provenance.bars} x {provenance.bar_span}"
        dates = f"{provenance.first_date} to {provenance.last_date}"
        print(f"market data: {provenance.symbol:5} {provenance.label}: {shape}, {dates} ({where})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
