"""The trading engine: signal evaluations per second, and WebSocket fan-out latency.

Run: python -m benchmarks.engine [--agents 100] [--signals 200] [--clients 1000] [--seconds 5]

**Evaluations.** One evaluation is one (signal, trading agent) pair decided and its execution record
persisted. ``--agents`` trading agents of one user, each with its own sandbox account at a paper
exchange running in process (the exchange's own engine and order parsing, called through the in-process
port of ``agents_examples.trading.backtest.inprocess`` instead of the gateway, so the number is the
engine's and not the network's), funded with 1,000 USD. Their configs differ (minimum scores 1 to 5, a
third with a token blacklist, a few paused), so a signal's pairs are a mix of SKIPPED decisions and
buys. ``--signals`` buy signals with rotating tokens and strengths are posted one after another through
``EngineService.post_signal`` (validation done, dedupe, every following agent decided, all records
written in one SQLite transaction per signal);
the buys they start run in the background and are awaited after the clock stops (not timed: each is
an order at the exchange, which the engine does not wait for before deciding the next signal).

The baseline column is the same decisions with one store transaction per pair instead of one per
signal (what a naive write-per-record engine does), same run, same machine.

**Fan-out.** ``benchmarks.engine_ws.fanout``: ``--clients`` WebSocket clients on a real loopback uvicorn
server (the connection cap raised for the run) following agents whose price batches are published at
``--ticks`` per second; latency from publish to each client's receipt. Target: p99 < 100 ms.

Targets: >= 2,000 evaluations/s; fan-out p99 < 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from agents_examples.trading.backtest.inprocess import InProcessExchange
from agents_examples.trading.engine.domain.config import default_config
from agents_examples.trading.engine.domain.signals import SignalInput
from agents_examples.trading.engine.exchange_link import Listing
from agents_examples.trading.engine.service import EngineService
from agents_examples.trading.engine.store import EngineStore
from agents_examples.trading.exchange.market.sources import load_market_data
from agents_examples.trading.exchange.service import ExchangeService
from agents_examples.trading.exchange.store import AccountStore
from benchmarks.engine_ws import fanout

TARGET_EVALUATIONS = 2_000.0
TARGET_P99_MS = 100.0
USER = "bench-user"


class StepClock:
    """Wall seconds that move only when told (each signal moves it past the 60 s duplicate window)."""

    def __init__(self) -> None:
        self.now = 1_780_000_000.0

    def __call__(self) -> float:
        return self.now


def _setup(root: Path, agents: int, clock: StepClock) -> tuple[EngineService, list[Listing]]:
    market = ExchangeService(AccountStore(root / "exchange"), load_market_data(use_real=False, seed=3))
    market.simulator.advance(30)
    port = InProcessExchange(market)
    service = EngineService(EngineStore(root / "engine"), port, wall=clock)
    loop = asyncio.get_event_loop()
    loop.run_until_complete(service.trader.refresh_listings())
    base = default_config()
    for n in range(agents):
        agent = service.create_agent(USER, {"name": f"bench agent {n:03d}"})
        filters = dataclasses.replace(base.signals, min_score=1 + n % 5)
        if n % 3 == 0:
            filters = dataclasses.replace(filters, token_filter_mode="blacklist", token_list=("ETH",))
        agent.config = dataclasses.replace(base, signals=filters)
        if n % 10 == 9:
            agent.automated_simulation = False
        keys = market.register(f"bench {n}", ["read:portfolio", "write:orders"], "sandbox")
        address_doc = loop.run_until_complete(
            service.add_wallet(USER, {"apiKey": keys.api_key, "apiSecret": keys.account.secret})
        )
        loop.run_until_complete(
            service.assign_wallet(
                USER, {"agentId": agent.id, "walletAddress": address_doc.address, "startingBalance": 1000}
            )
        )
    return service, list(service.trader.listings.values())


def evaluations(agents: int, signals: int, *, per_pair: bool) -> dict[str, float]:
    """Post ``signals`` buy signals to ``agents`` agents; evaluations per second (decide + persist)."""
    with tempfile.TemporaryDirectory() as tmp:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            clock = StepClock()
            service, listings = _setup(Path(tmp), agents, clock)
            if per_pair:
                _unbatch(service)
            pairs = 0
            started = time.perf_counter()
            for n in range(signals):
                clock.now += 61
                listing = listings[n % len(listings)]
                signal = SignalInput(
                    listing.token_address, listing.symbol, "buy", 1 + n % 5, "bench", f"s{n}"
                )
                _, executions = service.post_signal(USER, signal)
                pairs += len(executions)
            elapsed = time.perf_counter() - started
            loop.run_until_complete(service.trader.drain())
            executed = sum(
                1
                for row in service.store.rows("SELECT doc FROM executions")
                if '"status":"EXECUTED"' in row[0]
            )
            service.store.close()
        finally:
            loop.close()
    return {
        "pairs": pairs,
        "seconds": elapsed,
        "rate": pairs / elapsed if elapsed else 0.0,
        "executed": executed,
    }


def _unbatch(service: EngineService) -> None:
    """The baseline: every execution record in its own transaction."""
    store = service.store
    original = store.put_many

    def put_many(table: str, rows: Any) -> None:
        # Inside the signal's batch: commit each record on its own and open the next transaction.
        for key, doc in rows:
            original(table, [(key, doc)])
            store.rows("COMMIT")
            store.rows("BEGIN IMMEDIATE")

    store.put_many = put_many  # type: ignore[method-assign]


def render(ours: dict[str, float], baseline: dict[str, float], ws: dict[str, float] | None) -> str:
    rows = [
        "| measure | ours | baseline (one transaction per pair) | target |",
        "|---|---|---|---|",
        f"| evaluations/s ({ours['pairs']:,.0f} pairs) | {ours['rate']:,.0f} | {baseline['rate']:,.0f} | "
        f">= {TARGET_EVALUATIONS:,.0f}: {'met' if ours['rate'] >= TARGET_EVALUATIONS else 'MISSED'} |",
        f"| buys executed after the timed loop | {ours['executed']:,.0f} | {baseline['executed']:,.0f} | |",
    ]
    if ws is not None:
        verdict = "met" if ws["p99_ms"] < TARGET_P99_MS else "MISSED"
        rows += [
            f"| fan-out p50 / p99 / max ms ({ws['clients']:,.0f} clients, "
            f"{ws['received']:,.0f} receipts) | "
            f"{ws['p50_ms']:.1f} / {ws['p99_ms']:.1f} / {ws['max_ms']:.1f} | n/a | "
            f"p99 < {TARGET_P99_MS:.0f}: {verdict} |",
        ]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", type=int, default=100, help="trading agents (default: %(default)s)")
    parser.add_argument("--signals", type=int, default=200, help="signals posted (default: %(default)s)")
    parser.add_argument("--clients", type=int, default=1000, help="WebSocket clients (default: %(default)s)")
    parser.add_argument(
        "--ticks", type=float, default=10.0, help="price batches per second (default: %(default)s)"
    )
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="fan-out run length (default: %(default)s)"
    )
    parser.add_argument("--no-fanout", action="store_true", help="skip the WebSocket part")
    args = parser.parse_args(argv)
    if not 1 <= args.agents <= 1000 or not 1 <= args.signals <= 100_000:
        parser.error("--agents is 1..1000 and --signals 1..100,000")
    if not 1 <= args.clients <= 5000 or not 0 < args.ticks <= 100 or not 0 < args.seconds <= 60:
        parser.error("--clients is 1..5000, --ticks in (0, 100] and --seconds in (0, 60]")
    ours = evaluations(args.agents, args.signals, per_pair=False)
    baseline = evaluations(args.agents, args.signals, per_pair=True)
    ws = None
    if not args.no_fanout:
        ws = asyncio.run(fanout(clients=args.clients, ticks_per_second=args.ticks, seconds=args.seconds))
    print(render(ours, baseline, ws))
    return 0


if __name__ == "__main__":
    sys.exit(main())
