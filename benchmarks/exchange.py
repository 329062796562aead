"""The paper exchange's engine in process: bars replayed per second and market orders per second.

Run: python -m benchmarks.exchange [--bars 200000] [--churn-bars 20000] [--orders 50000] [--seed 12]

Synthetic 1-minute bars (a seeded mean-reverting log-normal walk around 50,000 USD, volumes of 5 to 50
BTC) are generated before timing, so no data package is needed. Every bar goes through
``Exchange.replay_bar`` (4 ticks: O→L→H→C or O→H→L→C), one account, no subscribers.

Limit prices are set around the walk's anchor (50,000), which the price keeps wandering about (about
1.1% apart on average), so a book's crossing rate is the same over any run length:

- **quiet book**: 100 open limit orders (50 buys, 50 sells) resting 20 to 30% away, no timeout, so no
  bar crosses them: what a bar costs with the book held;
- **active book**: 100 open limit orders of 100 BTC 0.05 to 1% away, no timeout; the bars cross them
  often and each crossing fills at most the 10% volume share (a few BTC), so an order fills in part bar
  after bar; one that completes is replaced at the bar's end (inside the timed loop, counted): the
  matching and fill accounting per bar;
- **churning book**: 100 open limit orders of 0.1 BTC 0.05 to 1% away with the default 600 s unfilled
  timeout, every order that fills or times out replaced at once at the bar's end; those placements
  (about 10 a bar) are inside the timed loop, so this row is mostly placement cost (it replays the
  first ``--churn-bars`` bars only);
- **market orders**: alternating buys and sells of 0.01 BTC at one bar's price, each a full fill with
  slippage, impact and fees.

The "through the REST API" column: bars are not sent through the API (n/a); market orders are
``POST /v1/agent/orders`` on the exchange's Starlette app in process (httpx's ASGITransport, no socket),
alternating buys and sells of 0.01 BTC from one account that signs every request (HMAC, nonce,
JSON parsing and the exact-number JSON answer included), at most ``--rest-orders`` orders or
``--rest-seconds`` seconds. Its per-key limit of 60 requests a minute is lifted for the run (it would
measure the limit), and the replay is not running (the price stays at the first bars).
Targets: >= 100,000 bars/s replayed with the active book, >= 5,000 market orders/s in process.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount

from a2a_gateway.auth.rate_limit import Decision, Limit, RateLimitStore
from a2a_gateway.auth.signing import signed_headers
from agents_examples.trading.exchange.api.routes import API_PREFIX, AgentConnectApi
from agents_examples.trading.exchange.engine import Exchange, FillConfig, OrderRequest, OrderStatus, Side
from agents_examples.trading.exchange.engine.orders import OrderType
from agents_examples.trading.exchange.market.bars import PRICE_SCALE, QTY_SCALE, Bar
from agents_examples.trading.exchange.market.sources import load_market_data
from agents_examples.trading.exchange.service import ExchangeService
from agents_examples.trading.exchange.store import AccountStore

SYMBOL = "BTC"
BOOK = 100
MINUTE_MS = 60_000
START_MS = 1_700_006_400_000  # a 00:00 UTC
TARGET_BARS = 100_000.0
TARGET_ORDERS = 5_000.0
REST_PENDING = "n/a (bars are not sent through the API)"
REVERSION = 0.001  # per sub-step: the walk's spread around the anchor settles near 1.1%
ANCHOR_USD = 50_000.0


def synthetic_bars(count: int, seed: int) -> list[Bar]:
    """``count`` seeded 1-minute bars: 4 log-normal sub-steps of 0.05% each per bar, pulled gently back
    toward 50,000 USD (so the price stays within a few percent over any run length)."""
    rng = random.Random(seed)
    anchor = math.log(ANCHOR_USD)
    log_price = anchor
    bars = []
    for i in range(count):
        path = [log_price]
        for _ in range(4):
            step = REVERSION * (anchor - path[-1]) + rng.gauss(0.0, 0.0005)
            path.append(path[-1] + step)
        prices = [round(math.exp(p) * PRICE_SCALE) for p in path]
        volume = rng.uniform(5.0, 50.0)
        bars.append(
            Bar(
                START_MS + i * MINUTE_MS,
                MINUTE_MS,
                prices[0],
                max(prices),
                min(prices),
                prices[-1],
                round(volume * QTY_SCALE),
            )
        )
        log_price = path[-1]
    return bars


@dataclass
class Replay:
    """One replay's outcome."""

    bars: int
    seconds: float
    fills: int
    expired: int
    placed: int

    @property
    def rate(self) -> float:
        """Bars per second."""
        return self.bars / self.seconds if self.seconds else math.nan


def _limit(side: Side, price: int, distance: float, quantity: int) -> OrderRequest:
    factor = 1 - distance if side is Side.BUY else 1 + distance
    return OrderRequest(SYMBOL, side, OrderType.LIMIT, quantity, max(1, round(price * factor)))


def _fund(exchange: Exchange, first: Bar) -> None:
    """Buy 100,000 BTC on a deep bar just before ``first`` (so sells have something to sell)."""
    deep = Bar(
        first.ts_ms - MINUTE_MS, MINUTE_MS, first.open, first.open, first.open, first.open, 10**9 * QTY_SCALE
    )
    exchange.on_bar(SYMBOL, deep)
    order = exchange.place(
        "bench", OrderRequest(SYMBOL, Side.BUY, OrderType.MARKET, 100_000 * QTY_SCALE), deep.ts_ms
    )
    assert order.status is OrderStatus.CLOSED, order.reason


SCENARIOS = {
    # name: (distance range from the price, quantity per order, the unfilled timeout)
    "quiet": ((0.2, 0.3), QTY_SCALE // 10, None),
    "active": ((0.0005, 0.01), 100 * QTY_SCALE, None),
    "churning": ((0.0005, 0.01), QTY_SCALE // 10, 600),
}


def replay(bars: list[Bar], scenario: str, seed: int) -> Replay:
    """Replay ``bars`` with ``BOOK`` open limit orders in the book (see the module docstring)."""
    (low, high), quantity, timeout = SCENARIOS[scenario]
    exchange = Exchange(FillConfig(unfilled_timeout_seconds=timeout), symbols=[SYMBOL])
    exchange.open_account("bench", Decimal(10) ** 12)
    _fund(exchange, bars[0])
    rng = random.Random(seed)
    sides = itertools.cycle((Side.BUY, Side.SELL))

    def refill(now: int) -> int:
        added = 0
        price = round(ANCHOR_USD * PRICE_SCALE)  # limits around the walk's anchor: a steady crossing rate
        while exchange.open_order_count("bench") < BOOK:
            exchange.place("bench", _limit(next(sides), price, rng.uniform(low, high), quantity), now)
            added += 1
        return added

    exchange.replay_bar(SYMBOL, bars[0])
    refill(bars[0].ts_ms + MINUTE_MS - 1)
    trades_before = len(exchange.trades("bench"))
    placed = 0
    rest = bars[1:]
    started = time.perf_counter()
    if scenario != "quiet":
        for bar in rest:
            exchange.replay_bar(SYMBOL, bar)
            placed += refill(bar.ts_ms + bar.span_ms - 1)
    else:
        for bar in rest:
            exchange.replay_bar(SYMBOL, bar)
    seconds = time.perf_counter() - started
    expired = sum(1 for order in exchange.orders("bench") if order.reason == "UNFILLED_TIMEOUT")
    open_now = exchange.open_order_count("bench")
    if open_now != BOOK:
        raise RuntimeError(f"the {scenario} book should hold {BOOK} open orders, holds {open_now}")
    return Replay(len(rest), seconds, len(exchange.trades("bench")) - trades_before, expired, placed)


def market_orders(count: int, seed: int) -> tuple[int, float]:
    """``count`` market orders, alternating buy and sell, at one bar's open; returns (count, seconds)."""
    bar = synthetic_bars(1, seed)[0]
    exchange = Exchange(symbols=[SYMBOL])
    exchange.open_account("bench", Decimal(10) ** 12)
    _fund(exchange, bar)
    exchange.on_bar(SYMBOL, bar)
    amount = QTY_SCALE // 100
    buy = OrderRequest(SYMBOL, Side.BUY, OrderType.MARKET, amount)
    sell = OrderRequest(SYMBOL, Side.SELL, OrderType.MARKET, amount)
    now = bar.ts_ms
    started = time.perf_counter()
    for i in range(count):
        order = exchange.place("bench", buy if i % 2 == 0 else sell, now)
        if order.status is not OrderStatus.CLOSED:
            raise RuntimeError(f"market order {i} did not fill: {order.reason}")
    return count, time.perf_counter() - started


class _Unlimited(RateLimitStore):
    """Allows every request (the benchmark measures the API, not its 60/min limit)."""

    async def hit(self, key: str, limit: Limit, now: float) -> Decision:
        return Decision(True, limit.count, limit.count - 1, 0.0, 0.0)


async def _rest_orders(count: int, seconds: float, seed: int, data_dir: Path) -> tuple[int, float]:
    service = ExchangeService(AccountStore(data_dir), load_market_data(use_real=False, seed=seed))
    api = AgentConnectApi(service, rate_store=_Unlimited())
    app = Starlette(routes=[Mount(API_PREFIX, app=api.app())])
    base = f"http://bench{API_PREFIX}"
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
            registered = await client.post(
                f"{base}/register", json={"name": "bench", "permissions": ["write:orders"], "mode": "sandbox"}
            )
            agent = registered.json()["agent"]
            key, secret = agent["apiKey"], agent["apiSecret"]
            done = 0
            started = time.perf_counter()
            deadline = started + seconds
            while done < count and time.perf_counter() < deadline:
                side = "sell" if done % 2 else "buy"
                # a clientOrderId per order: two equal bodies signed in the same ms would be a replay
                body = (
                    f'{{"symbol": "BTC", "side": "{side}", "type": "market", "quantity": 0.01, '
                    f'"price": null, "clientOrderId": "b{done}"}}'
                )
                headers = signed_headers(key, secret, "POST", "/orders", body)
                response = await client.post(f"{base}/orders", content=body, headers=headers)
                if response.status_code != 201:
                    raise RuntimeError(f"REST order {done} failed: {response.text}")
                done += 1
            return done, time.perf_counter() - started
    finally:
        service.store.close()


def rest_market_orders(count: int, seconds: float, seed: int) -> tuple[int, float]:
    """Market orders through the REST API in process (see the module doc); returns (count, seconds)."""
    with tempfile.TemporaryDirectory() as directory:
        return asyncio.run(_rest_orders(count, seconds, seed, Path(directory)))


def render(
    replays: dict[str, Replay], orders: tuple[int, float], rest: tuple[int, float] | None = None
) -> str:
    """Side by side: in process, and through the REST API (market orders only); then what each replay
    did."""
    count, seconds = orders
    order_rate = count / seconds if seconds else math.nan
    active = replays["active"]
    labels = {
        "quiet": f"bars/s, quiet book ({BOOK} open limit orders, none crossed)",
        "active": f"bars/s, active book ({BOOK} open limit orders crossed, filled in part)",
        "churning": f"bars/s, churning book ({BOOK} open limit orders replaced as they fill or time out)",
    }
    rows = ["| measure | in process | through the REST API |", "|---|---|---|"]
    rows += [f"| {labels[name]} | {r.rate:,.0f} | {REST_PENDING} |" for name, r in replays.items()]
    if rest is None or not rest[1]:
        rest_cell = "n/a (not run)"
    else:
        rest_cell = f"{rest[0] / rest[1]:,.0f} ({rest[0]:,} signed orders)"
    rows.append(f"| market orders/s ({count:,} orders) | {order_rate:,.0f} | {rest_cell} |")
    rows += ["", "| replay | bars | fills | orders placed in the loop | timed out |", "|---|---|---|---|---|"]
    rows += [
        f"| {name} | {r.bars:,} | {r.fills:,} | {r.placed:,} | {r.expired:,} |" for name, r in replays.items()
    ]
    rows += [
        "",
        f"target: >= {TARGET_BARS:,.0f} bars/s with the active book: "
        f"{'met' if active.rate >= TARGET_BARS else 'MISSED'}",
        f"target: >= {TARGET_ORDERS:,.0f} market orders/s in process: "
        f"{'met' if order_rate >= TARGET_ORDERS else 'MISSED'}",
    ]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bars", type=int, default=200_000, help="bars per replay (default: %(default)s)")
    parser.add_argument(
        "--churn-bars", type=int, default=20_000, help="bars for the churning book (default: %(default)s)"
    )
    parser.add_argument("--orders", type=int, default=50_000, help="market orders (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=12, help="the bars' seed (default: %(default)s)")
    parser.add_argument(
        "--rest-orders", type=int, default=5_000, help="REST market orders at most (default: %(default)s)"
    )
    parser.add_argument(
        "--rest-seconds",
        type=float,
        default=10.0,
        help="REST orders for at most this long (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if not 2 <= args.bars <= 10_000_000 or args.churn_bars < 2 or not 1 <= args.orders <= 10_000_000:
        parser.error("--bars is 2..10,000,000, --churn-bars at least 2 and --orders 1..10,000,000")
    if not 1 <= args.rest_orders <= 1_000_000 or not 0 < args.rest_seconds <= 600:
        parser.error("--rest-orders is 1..1,000,000 and --rest-seconds in (0, 600]")
    replays = run(args.bars, args.churn_bars, args.orders, args.seed)
    orders = market_orders(args.orders, args.seed)
    print(render(replays, orders, rest_market_orders(args.rest_orders, args.rest_seconds, args.seed)))
    return 0


def run(bars: int, churn_bars: int, orders: int, seed: int) -> dict[str, Replay]:
    """The three replays over the same seeded bars."""
    series = synthetic_bars(bars, seed)
    return {
        name: replay(series[:churn_bars] if name == "churning" else series, name, seed) for name in SCENARIOS
    }


if __name__ == "__main__":
    sys.exit(main())
