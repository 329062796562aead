"""The trading network end to end: signal to filled order through the gateway, signals per second, and
the one-year backtest.

Run: python -m benchmarks.network [--agents 10] [--samples 50] [--seconds 10] [--signals 1000]
     [--decided-signals 400] [--senders 16] [--price 1] [--bars 525600 | --skip-backtest]
     [--duplicate-window 0] [--signals-per-minute 100000] [--hops 100] [--stock-exchange]
     [--bars-per-second 1] [--profile DIR]

**The network**, each server its own process on 127.0.0.1 in a scratch directory, all stopped at the
end: the gateway (``python -m a2a_gateway serve``: its rate limits off, ``A2A_GATEWAY_RATE_LIMITS={}``,
loopback in its outbound allowlist), the paper exchange on its seeded synthetic bars replayed at one
bar a second (``benchmarks.network_exchange``: the exchange's app with its 60 requests a minute per
API key lifted; ``--stock-exchange`` runs ``python -m agents_examples.trading.exchange`` with the
limit), registered by its operator by card URL, and the trading engine (``python -m
agents_examples.trading.engine --gateway-url --exchange-url --exchange-agent-id``), registered by its
own process with the trader's ``nex_`` key and trading through the gateway with it. With ``--price``
the exchange's ``place-order`` costs that many credits a call, paid by the trader, who is granted
credits by ``a2a-gateway credits grant`` (the other skills, and the engine's, are free).

``--agents`` trading agents of the trader, each with its own sandbox wallet (1,000 USD), follow the
analysts' signals (``signals.sources``); their daily-loss and drawdown limits, stop loss and stale-trade
exit are off for the run, so that only signals trade. **This process is the signal agent's sender**:
it sends each signal as an analyst would, a blocking JSON-RPC ``SendMessage`` of the engine's
``signal-intake`` skill through the gateway with the analyst's key (``GatewayClient.send``), and
follows every trading agent on the engine's positions WebSocket (``/ws``), where each fill is
published as the engine records it (``position_created`` for a buy, ``position_closed`` for a sell).
**The baseline** is the same signal posted straight to the engine's REST ``POST
/api/v1/trading-signals`` with the same key (no gateway hop on the way in; the orders still go through
the gateway, as the engine trades only there), watched on the same sockets, in the same run.

- **Latency** (``--samples``, one after another, over the instruments in turn): a buy signal, until all
  the agents' buys are filled, then a sell signal on the same instrument, until all are sold. "Each
  order" is from the send to each agent's fill; "all orders" to the last agent's. The sender's answer:
  through the gateway, the ``signal-intake`` task completed with the fills in its executions (the
  engine looks at them every 20 ms, ``EngineService.settled``); over REST, the 201 with the records
  PENDING. Then the same with one agent trading: the others' automated trading is switched off
  (``PUT /api/v1/agents/{id}``), so they decide each signal ``SKIPPED AGENT_INACTIVE`` and each signal
  is one order.
- **Trading signals/s** (at most ``--signals`` or ``--seconds``): one chain of signals per instrument,
  buy then sell then buy, the next sent once the last one's orders are all filled; every signal is
  one market order per agent.
- **Decided signals/s** (at most ``--decided-signals`` or ``--seconds``, ``--senders`` at once): sell
  signals while the agents hold nothing, so each is decided by every agent (``SKIPPED
  POSITION_NOT_FOUND``) and written, and no order is placed: the signal path alone.

**Limits set for the run**: the engine's duplicate window (the same publisher, token, type and
strength again is ``SIGNAL_DUPLICATE``; 60 s by default) is ``--duplicate-window`` seconds, 0 (off) by
default, and its REST route's signals per minute per credential (120 by default) is
``--signals-per-minute``, 100,000 by default (the engine's ``--duplicate-window-seconds`` and
``--signals-per-minute``); the ``signal-intake`` skill has no rate limit. One analyst publishes every
signal when the window is off; with a window, the signals are spread over as many analysts (at most
32) and the five strengths as it takes never to repeat a key within it
(:class:`~benchmarks.network_fills.SignalKeys`).

**One order per hop** (``--hops``, :mod:`benchmarks.network_hops`): a market order alone, straight to
the exchange's REST API, to its A2A skill directly and through the gateway, with each process's CPU
per order: what each hop of a signal's orders costs.

**The backtest** is ``benchmarks.backtest.measure``: ``--bars`` synthetic 1-minute bars (whole days;
525,600 = one year) through the strategy, engine and exchange in process, after the network is stopped.

Targets: p50 under 15 ms signal to filled order, >= 200 signals/s end to end, the one-year backtest in
under 60 s.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import itertools
import math
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
import uvloop

from agents_examples.trading.exchange.market.instruments import DEFAULT_INSTRUMENTS
from agents_examples.trading.gateway_client import (
    GatewayClient,
    GatewayUnavailable,
    last_data,
    status_text,
    task_state,
)
from benchmarks import backtest
from benchmarks.network_fills import BUY, SELL, Fills, SignalKeys
from benchmarks.network_hops import hops, render_hops
from benchmarks.network_procs import HOST, LOOPBACK_ALLOWLIST, Fleet, base_env, free_port
from benchmarks.network_setup import (
    agent_named,
    bearer,
    grant_credits,
    login,
    price_skill,
    register_by_card,
    trading_agent,
    until_ok,
    user_id,
    user_key,
)

GATEWAY: Final = "gateway"
REST: Final = "rest"
MODES: Final = (GATEWAY, REST)
TARGET_P50_MS: Final = 15.0
TARGET_RATE: Final = 200.0
BARS_PER_DAY: Final = 1440
MAX_PUBLISHERS: Final = 32  # a trading agent follows at most 32 sources (engine config MAX_SOURCES)
STARTING_BALANCE: Final = 1000.0
GRANT: Final = 100_000_000
SIGNAL_TIMEOUT: Final = 30.0
SHIPPED_INSTRUMENTS: Final = len(DEFAULT_INSTRUMENTS)
TRADER = "trader@example.com"
OPERATOR = "exchange-operator@example.com"


@dataclass(frozen=True)
class Analyst:
    """A signal publisher: its gateway user id, its key and a client sending as it."""

    user_id: str
    key: str
    client: GatewayClient


@dataclass(frozen=True)
class Answer:
    """What the sender got back: when it sent and heard, whether the signal was taken, the records."""

    started: float
    answered: float
    accepted: bool
    statuses: tuple[str, ...]
    detail: str = ""


@dataclass
class Bench:
    """The running network as the sender sees it."""

    gw: httpx.AsyncClient
    api: httpx.AsyncClient
    engine_id: str
    analysts: list[Analyst]
    symbols: dict[str, str]  # token address -> symbol
    fills: Fills
    keys: SignalKeys
    trader: str  # the trader's access token (a login session: the engine's writes need one)
    trader_key: str
    exchange_id: str
    exchange_url: str
    errors: list[str] = field(default_factory=list)

    @property
    def tokens(self) -> list[str]:
        """The instruments' token addresses."""
        return list(self.symbols)

    @property
    def agents(self) -> int:
        """How many trading agents follow the signals."""
        return len(self.fills.agents)

    async def send(self, mode: str, token: str, side: str) -> Answer:
        """Send one signal, through the gateway or straight to the engine's REST API."""
        publisher, strength = await self.keys.take(token, side)
        analyst = self.analysts[publisher]
        body = {
            "tokenAddress": token,
            "symbol": self.symbols[token],
            "signalType": side,
            "signalStrength": strength,
            "activationReason": "benchmark",
            "source": "benchmarks.network",
        }
        started = time.perf_counter()
        try:
            if mode == GATEWAY:
                task = await analyst.client.send(self.engine_id, "signal-intake", body)
                answered = time.perf_counter()
                done = last_data(task) or {}
                statuses = tuple(str(e.get("status")) for e in done.get("executions", []))
                state = task_state(task)
                if state != "TASK_STATE_COMPLETED":
                    return self._failed(started, f"{state}: {status_text(task)[:200]}", answered)
                return Answer(started, answered, True, statuses, state)
            reply = await self.api.post("/api/v1/trading-signals", json=body, headers=bearer(analyst.key))
            answered = time.perf_counter()
            if reply.status_code != 201:
                return self._failed(started, f"HTTP {reply.status_code}: {reply.text[:200]}")
            statuses = tuple(str(e["status"]) for e in reply.json()["executions"])
            return Answer(started, answered, True, statuses)
        except (httpx.HTTPError, GatewayUnavailable) as error:
            return self._failed(started, repr(error))

    def _failed(self, started: float, detail: str, answered: float | None = None) -> Answer:
        if len(self.errors) < 20:
            self.errors.append(detail)
        return Answer(started, answered or time.perf_counter(), False, (), detail)


# ---------------------------------------------------------------------------------------- the runs


def _ms(seconds: float) -> float:
    return seconds * 1000.0


async def latency(bench: Bench, mode: str, samples: int) -> dict[str, Any]:
    """``samples`` buy signals and as many sells, one at a time (module doc)."""
    out: dict[str, Any] = {"buy_all": [], "sell_all": [], "each": [], "answer": [], "missed": 0}
    tokens = bench.tokens
    for n in range(samples):
        token = tokens[n % len(tokens)]
        for side in (BUY, SELL):
            if bench.fills.settled(token, side):
                continue
            mark = len(bench.fills.events)
            sending = asyncio.create_task(bench.send(mode, token, side))
            filled = await bench.fills.wait(token, side, SIGNAL_TIMEOUT)
            answer = await sending
            if filled is None or not answer.accepted or filled < answer.started:
                out["missed"] += 1
                continue
            out[f"{side}_all"].append(_ms(filled - answer.started))
            out["each"] += [_ms(e.stamp - answer.started) for e in bench.fills.since(mark, token, side)]
            out["answer"].append(_ms(answer.answered - answer.started))
    return out


async def trading(bench: Bench, mode: str, seconds: float, most: int) -> dict[str, Any]:
    """One chain of signals per instrument, each sent when the last one's orders are all filled."""
    fills = bench.fills
    answers: list[asyncio.Task[Answer]] = []
    counts = {"sent": 0, "done": 0, "missed": 0}
    started = time.perf_counter()
    deadline = started + seconds
    last = started
    mark = len(fills.events)

    async def chain(token: str) -> None:
        nonlocal last
        while time.perf_counter() < deadline and counts["sent"] < most:
            side = SELL if fills.holders(token) == bench.agents else BUY
            counts["sent"] += 1
            answers.append(asyncio.create_task(bench.send(mode, token, side)))
            filled = await fills.wait(token, side, SIGNAL_TIMEOUT)
            if filled is None:
                counts["missed"] += 1
                return
            counts["done"] += 1
            last = max(last, filled)

    await asyncio.gather(*(chain(token) for token in bench.tokens))
    elapsed = last - started
    answered = await asyncio.gather(*answers)
    orders = sum(1 for e in fills.events[mark:] if e.stamp <= last)
    refused = sum(1 for a in answered if not a.accepted)
    return {**counts, "seconds": elapsed, "orders": orders, "refused": refused}


async def decided(bench: Bench, mode: str, seconds: float, most: int, senders: int) -> dict[str, Any]:
    """Sell signals while nothing is held, ``senders`` at a time: decided by every agent, no order."""
    if any(bench.fills.holders(token) for token in bench.tokens):
        raise RuntimeError("the decided-signal run needs every agent flat")
    turn = itertools.count()
    counts = {"sent": 0, "done": 0, "missed": 0}
    started = time.perf_counter()
    deadline = started + seconds
    last = started

    async def sender() -> None:
        nonlocal last
        tokens = bench.tokens
        while time.perf_counter() < deadline and counts["sent"] < most:
            counts["sent"] += 1
            answer = await bench.send(mode, tokens[next(turn) % len(tokens)], SELL)
            if (
                answer.accepted
                and len(answer.statuses) == bench.agents
                and set(answer.statuses) == {"SKIPPED"}
            ):
                counts["done"] += 1
                last = max(last, answer.answered)
            else:
                counts["missed"] += 1

    await asyncio.gather(*(sender() for _ in range(senders)))
    return {**counts, "seconds": last - started}


async def flatten(bench: Bench) -> None:
    """Sell every instrument some agent still holds (straight to the engine), until nobody holds any."""
    for token in bench.tokens:
        for _ in range(3):
            if bench.fills.holders(token) == 0:
                break
            await bench.send(REST, token, SELL)
            await bench.fills.wait(token, SELL, SIGNAL_TIMEOUT)
    if any(bench.fills.holders(token) for token in bench.tokens):
        raise RuntimeError("the agents could not be flattened")


async def with_one_agent(bench: Bench, run: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """``run`` with every agent but the first one's automated trading off (they decide each signal
    SKIPPED AGENT_INACTIVE), so that each signal is one order."""
    await flatten(bench)
    everyone = bench.fills.agents
    others = everyone[1:]
    await _automated(bench, others, on=False)
    bench.fills.agents = everyone[:1]
    try:
        return await run
    finally:
        bench.fills.agents = everyone
        await _automated(bench, others, on=True)


async def _automated(bench: Bench, agents: list[str], *, on: bool) -> None:
    for agent_id in agents:
        answer = await bench.api.put(
            f"/api/v1/agents/{agent_id}",
            json={"automatedTradingSimulation": on},
            headers=bearer(bench.trader),
        )
        if answer.status_code != 200:
            raise RuntimeError(f"agent {agent_id}: HTTP {answer.status_code}: {answer.text[:300]}")


async def measured(fleet: Fleet, run: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """``run``'s result with each process's CPU cores over it."""
    before, wall = fleet.cpu(), time.perf_counter()
    result = await run
    after, elapsed = fleet.cpu(), time.perf_counter() - wall
    result["cores"] = {name: (after[name] - before.get(name, 0.0)) / elapsed for name in after}
    return result


def _constant(value: str) -> Callable[[], str]:
    return lambda: value


# ---------------------------------------------------------------------------------------- the network


def publishers_needed(args: argparse.Namespace, instruments: int) -> int:
    """One analyst without a duplicate window; with one, analysts enough that no (token, type) runs out
    of fresh (publisher, strength) pairs, at most 32."""
    if args.duplicate_window == 0:
        return 1
    per_mode = 2 * (2 * args.samples + args.warmup) + args.signals + args.decided_signals
    per_pool = 2 * per_mode / instruments  # both modes, over the instruments (each pool: one side)
    return max(1, min(MAX_PUBLISHERS, math.ceil(float(per_pool) / 5)))


async def start_network(
    fleet: Fleet, args: argparse.Namespace, scratch: Path
) -> tuple[Bench, dict[str, Any]]:
    """Start the three processes and wire the network (module doc); the bench and what was set."""
    gw_port, ex_port, en_port = free_port(), free_port(), free_port()
    gw_url, ex_url, en_url = (f"http://{HOST}:{p}" for p in (gw_port, ex_port, en_port))
    gateway_env = {
        "A2A_GATEWAY_DATA_DIR": str(scratch / "gateway"),
        "A2A_GATEWAY_PUBLIC_URL": gw_url,
        "A2A_GATEWAY_OUTBOUND_ALLOWLIST": LOOPBACK_ALLOWLIST,
        "A2A_GATEWAY_RATE_LIMITS": "{}",
        "A2A_GATEWAY_LOG_LEVEL": "WARNING",
        "A2A_GATEWAY_MAX_CONNECTIONS_PER_CLIENT": "100000",
    }
    fleet.start("gateway", ["a2a_gateway", "serve", "--host", HOST, "--port", str(gw_port)],
                base_env(**gateway_env), gw_port)  # fmt: skip
    if args.stock_exchange:
        exchange_argv = ["agents_examples.trading.exchange", "--synthetic"]
    else:
        exchange_argv = ["benchmarks.network_exchange"]
    exchange_argv += ["--host", HOST, "--port", str(ex_port), "--data-dir", str(scratch / "exchange"),
                      "--seed", str(args.seed), "--bars-per-second", str(args.bars_per_second),
                      "--extra-instruments", str(max(0, args.instruments - SHIPPED_INSTRUMENTS))]  # fmt: skip
    fleet.start("exchange", exchange_argv, base_env(A2A_GATEWAY_LOG_LEVEL="WARNING"), ex_port)
    timeout = httpx.Timeout(SIGNAL_TIMEOUT + 5)
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    gw = httpx.AsyncClient(base_url=gw_url, timeout=timeout, limits=limits)
    api = httpx.AsyncClient(base_url=en_url, timeout=timeout, limits=limits)
    try:
        await until_ok(gw, "/health", 60)
        async with httpx.AsyncClient(base_url=ex_url) as probe:
            await until_ok(probe, "/health", 60)
        trader = await login(gw, TRADER)
        trader_key = await user_key(gw, trader)
        operator = await login(gw, OPERATOR)
        exchange_id = await register_by_card(gw, operator, ex_url)
        granted = ""
        if args.price:
            await price_skill(gw, operator, exchange_id, "place-order", args.price)
            granted = grant_credits(gateway_env, TRADER, GRANT)
        engine_env = base_env(
            A2A_GATEWAY_GATEWAY_KEY=trader_key,
            A2A_GATEWAY_OUTBOUND_ALLOWLIST=LOOPBACK_ALLOWLIST,
            A2A_GATEWAY_LOG_LEVEL="WARNING",
        )
        fleet.start("engine", ["agents_examples.trading.engine", "--host", HOST, "--port", str(en_port),
                               "--signals-per-minute", str(args.signals_per_minute),
                               "--duplicate-window-seconds", f"{args.duplicate_window:g}",
                               "--data-dir", str(scratch / "engine"), "--gateway-url", gw_url,
                               "--exchange-url", ex_url, "--exchange-agent-id", exchange_id],
                    engine_env, en_port)  # fmt: skip
        publishers = publishers_needed(args, 8)
        analysts = []
        for n in range(publishers):
            token = await login(gw, f"analyst{n:02d}@example.com")
            key = await user_key(gw, token)
            client = GatewayClient(gw, gw_url, _constant(key), timeout=SIGNAL_TIMEOUT)
            analysts.append(Analyst(await user_id(gw, token), key, client))
        engine_id = await agent_named(gw, trader, "Trading Engine", 60)
        await until_ok(api, "/api/v1/health/ready", 60)
        owner = GatewayClient(gw, gw_url, lambda: trader_key, timeout=SIGNAL_TIMEOUT)
        market = last_data(await owner.send(exchange_id, "market-data", {})) or {}
        symbols = {str(e["tokenAddress"]): str(e["symbol"]) for e in market.get("data", [])}
        if not symbols:
            raise RuntimeError(f"the exchange listed no instrument: {market}")
        config = {
            "signals": {"sources": [f"user:{a.user_id}" for a in analysts]},
            "riskLimits": {"dailyLossLimit": None, "maxDrawdownPercent": None},
            "stopLoss": {"enabled": False},
            "staleTrade": {"enabled": False},
        }
        agents = [
            await trading_agent(api, trader, f"bench agent {n:02d}", config, STARTING_BALANCE)
            for n in range(args.agents)
        ]
        await until_ok(api, "/api/v1/health", 60, lambda doc: doc.get("status") == "healthy")
        fills = Fills([str(a["id"]) for a in agents])
        await fills.open(f"ws://{HOST}:{en_port}/ws", trader_key)
    except BaseException:
        await gw.aclose()
        await api.aclose()
        raise
    window = args.duplicate_window + 1 if args.duplicate_window else 0.0
    keys = SignalKeys(publishers, list(symbols), window)
    bench = Bench(gw, api, engine_id, analysts, symbols, fills, keys, trader, trader_key, exchange_id, ex_url)
    settings = {
        "instruments": len(symbols),
        "symbols": ", ".join(symbols.values()),
        "publishers": publishers,
        "granted": granted,
    }
    return bench, settings


async def close_network(bench: Bench) -> None:
    """Close the sender's sockets and clients (the processes are the fleet's)."""
    await bench.fills.close()
    await bench.gw.aclose()
    await bench.api.aclose()


async def run_network(args: argparse.Namespace, scratch: Path, fleet: Fleet) -> dict[str, Any]:
    """Every network measurement, both modes, in one run of the network."""
    bench, settings = await start_network(fleet, args, scratch)
    results: dict[str, Any] = {"settings": settings}
    try:
        for mode in MODES:  # warm-up: connections, caches, the engine's view of each key
            await latency(bench, mode, args.warmup)
        for mode in MODES:
            run = decided(bench, mode, args.seconds, args.decided_signals, args.senders)
            results[f"decided_{mode}"] = await measured(fleet, run)
            fleet.check()
        for mode in MODES:
            results[f"latency_{mode}"] = await latency(bench, mode, args.samples)
            fleet.check()
        for mode in MODES:
            results[f"solo_{mode}"] = await with_one_agent(bench, latency(bench, mode, args.samples))
            fleet.check()
        for mode in MODES:
            await flatten(bench)
            results[f"trading_{mode}"] = await measured(
                fleet, trading(bench, mode, args.seconds, args.signals)
            )
            fleet.check()
        if args.hops:
            gateway_url = str(bench.gw.base_url).rstrip("/")
            results["hops"] = await hops(
                fleet, bench.exchange_url, gateway_url, bench.exchange_id, bench.trader_key, args.hops
            )
        results["waited"] = bench.keys.waited
        results["errors"] = list(bench.errors)
    finally:
        await close_network(bench)
    return results


# ---------------------------------------------------------------------------------------- the table


def _pct(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _pair(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"{statistics.median(values):.1f} / {_pct(values, 0.99):.1f}"


def _verdict(value: float, ok: bool) -> str:
    return "n/a" if math.isnan(value) else ("met" if ok else "MISSED")


def _rate(run: dict[str, Any], what: str = "done") -> float:
    return float(run[what]) / run["seconds"] if run["seconds"] > 0 else math.nan


def _cores(run: dict[str, Any]) -> str:
    cores = run["cores"]
    return " / ".join(f"{cores.get(name, 0.0):.2f}" for name in ("gateway", "exchange", "engine", "bench"))


def _missed(results: dict[str, Any], mode: str) -> int:
    runs = [results[f"{kind}_{mode}"] for kind in ("latency", "solo", "trading", "decided")]
    return sum(int(run["missed"]) + int(run.get("refused", 0)) for run in runs)


def _network_rows(results: dict[str, Any], agents: int, senders: int) -> list[str]:
    lg, lr = results[f"latency_{GATEWAY}"], results[f"latency_{REST}"]
    each = statistics.median(lg["each"]) if lg["each"] else math.nan
    whole = statistics.median(lg["buy_all"] + lg["sell_all"]) if lg["buy_all"] else math.nan
    sg, sr = results[f"solo_{GATEWAY}"], results[f"solo_{REST}"]
    solo = statistics.median(sg["each"]) if sg["each"] else math.nan
    tg, tr = results[f"trading_{GATEWAY}"], results[f"trading_{REST}"]
    dg, dr = results[f"decided_{GATEWAY}"], results[f"decided_{REST}"]
    rate = _rate(tg)
    cores = "CPU cores in that run: gateway / exchange / engine / sender"
    return [
        f"| signal → each order filled, p50 / p99 ms ({len(lg['each']):,} / {len(lr['each']):,} fills) "
        f"| {_pair(lg['each'])} | {_pair(lr['each'])} "
        f"| p50 < {TARGET_P50_MS:.0f}: {_verdict(each, each < TARGET_P50_MS)} |",
        f"| buy signal → all {agents} buys filled, p50 / p99 ms ({len(lg['buy_all'])} / "
        f"{len(lr['buy_all'])} signals) | {_pair(lg['buy_all'])} | {_pair(lr['buy_all'])} "
        f"| p50 < {TARGET_P50_MS:.0f} (buys and sells): {_verdict(whole, whole < TARGET_P50_MS)} |",
        f"| sell signal → all {agents} sells filled, p50 / p99 ms | {_pair(lg['sell_all'])} "
        f"| {_pair(lr['sell_all'])} | |",
        f"| one agent trading (the others paused): signal → its order filled, p50 / p99 ms "
        f"({len(sg['each'])} / {len(sr['each'])} fills) | {_pair(sg['each'])} | {_pair(sr['each'])} "
        f"| p50 < {TARGET_P50_MS:.0f}: {_verdict(solo, solo < TARGET_P50_MS)} |",
        f"| the sender's answer, p50 / p99 ms | {_pair(lg['answer'])} (task completed, fills in it) "
        f"| {_pair(lr['answer'])} (201, records PENDING) | |",
        f"| **trading signals/s** ({agents} market orders each; {tg['done']:,} / {tr['done']:,} signals) "
        f"| **{rate:,.1f}** | {_rate(tr):,.1f} "
        f"| >= {TARGET_RATE:.0f}: {_verdict(rate, rate >= TARGET_RATE)} |",
        f"| orders filled/s in that run | {_rate(tg, 'orders'):,.0f} | {_rate(tr, 'orders'):,.0f} | |",
        f"| {cores} | {_cores(tg)} | {_cores(tr)} | |",
        f"| decided signals/s, no order ({senders} senders; {dg['done']:,} / {dr['done']:,} signals) "
        f"| {_rate(dg):,.0f} | {_rate(dr):,.0f} | |",
        f"| {cores} | {_cores(dg)} | {_cores(dr)} | |",
        f"| signals missed (no fill, no answer in {SIGNAL_TIMEOUT:.0f} s, or refused) "
        f"| {_missed(results, GATEWAY)} | {_missed(results, REST)} | 0 |",
    ]


def _priced(args: argparse.Namespace) -> str:
    return f"{args.price} credit(s) per place-order call, paid by the trader" if args.price else "free"


def _setting_rows(results: dict[str, Any], args: argparse.Namespace) -> list[str]:
    s = results["settings"]
    window = "off" if args.duplicate_window == 0 else f"{args.duplicate_window:g} s"
    if args.duplicate_window:
        window += (
            f", signals spread over {s['publishers']} analysts x 5 strengths (waited for a fresh pair: "
            f"{results['waited']:.1f} s)"
        )
    limit = (
        "kept: 60 requests/min per key"
        if args.stock_exchange
        else (
            "lifted for the run (`benchmarks.network_exchange`; the exchange's own: 60 requests/min per key)"
        )
    )
    price = _priced(args)
    rows = [
        "",
        "| setting | value |",
        "|---|---|",
        f"| instruments | {s['instruments']} ({s['symbols']}; SYN… on synthetic bars) |",
        f"| trading agents | {args.agents} of one trader, 1,000 USD each, following {s['publishers']} "
        f"analyst{'s' if s['publishers'] != 1 else ''} |",
        f"| engine duplicate window | {window} (engine `--duplicate-window-seconds "
        f"{args.duplicate_window:g}`; default 60 s) |",
        f"| engine signal rate limit | REST: {args.signals_per_minute:,}/min per credential (engine "
        "`--signals-per-minute`; default 120); signal-intake: none |",
        "| gateway rate limits | off (A2A_GATEWAY_RATE_LIMITS={}) |",
        f"| exchange per-key budget | {limit} |",
        f"| priced | {price}; signal-intake free |",
        f"| replay pace | {args.bars_per_second:g} bar/s per instrument (prices stream to the engine) |",
    ]
    if results["errors"]:
        rows += ["", "first errors: " + "; ".join(results["errors"][:3])]
    return rows


def render(results: dict[str, Any], args: argparse.Namespace, backtest_result: dict[str, Any] | None) -> str:
    """The results as Markdown: the measures side by side, the backtest, then the run's settings."""
    rows = [
        "| measure | through the gateway (signal-intake) | baseline: REST straight to the engine | target |",
        "|---|---|---|---|",
    ]
    if results:
        rows += _network_rows(results, args.agents, args.senders)
    if backtest_result is not None:
        total = backtest_result["total_s"]
        rows.append(
            f"| **backtest, {backtest_result['bars']:,} synthetic 1-minute bars** (in process) "
            f"| **{total:.1f} s** | n/a | < {backtest.TARGET_SECONDS:.0f} s: "
            f"{_verdict(total, total < backtest.TARGET_SECONDS)} |"
        )
    if results.get("hops"):
        rows += render_hops(results["hops"], _priced(args))
    if results:
        rows += _setting_rows(results, args)
    return "\n".join(rows)


def _profiles(fleet: Fleet) -> str:
    out = []
    for server in fleet.servers:
        if server.profile_path is None or not server.profile_path.exists():
            continue
        text = io.StringIO()
        pstats.Stats(str(server.profile_path), stream=text).sort_stats("tottime").print_stats(15)
        out.append(f"== {server.name} ==\n{text.getvalue()}")
    return "\n".join(out)


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not 1 <= args.agents <= 100 or not 1 <= args.samples <= 10_000 or not 0 <= args.warmup <= 100:
        parser.error("--agents is 1..100, --samples 1..10,000 and --warmup 0..100")
    if not 0 < args.seconds <= 120 or not 1 <= args.signals <= 100_000:
        parser.error("--seconds is in (0, 120] and --signals 1..100,000")
    if not 1 <= args.decided_signals <= 100_000 or not 1 <= args.senders <= 256:
        parser.error("--decided-signals is 1..100,000 and --senders 1..256")
    if not 0 <= args.price <= 1000 or not 0 < args.bars_per_second <= 1000:
        parser.error("--price is 0..1000 and --bars-per-second in (0, 1000]")
    if not 0 <= args.hops <= 10_000:
        parser.error("--hops is 0..10,000")
    if not 0 <= args.duplicate_window <= 86_400 or args.signals_per_minute < 1:
        parser.error("--duplicate-window is 0..86,400 and --signals-per-minute at least 1")
    if not BARS_PER_DAY <= args.bars <= 3650 * BARS_PER_DAY:
        parser.error(f"--bars is {BARS_PER_DAY:,}..{3650 * BARS_PER_DAY:,} (whole days)")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", type=int, default=10, help="trading agents (default: %(default)s)")
    parser.add_argument(
        "--samples", type=int, default=50, help="latency samples per mode (default: %(default)s)"
    )
    parser.add_argument(
        "--warmup", type=int, default=4, help="warm-up samples per mode (default: %(default)s)"
    )
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="each throughput run at most (default: %(default)s)"
    )
    parser.add_argument(
        "--signals", type=int, default=1000, help="trading signals per mode at most (default: %(default)s)"
    )
    parser.add_argument(
        "--decided-signals",
        type=int,
        default=400,
        help="decided signals per mode at most (default: %(default)s)",
    )
    parser.add_argument(
        "--senders", type=int, default=16, help="concurrent senders of decided signals (default: %(default)s)"
    )
    parser.add_argument(
        "--price", type=int, default=1, help="credits per place-order call, 0: free (default: %(default)s)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="the exchange's synthetic seed (default: %(default)s)"
    )
    parser.add_argument(
        "--bars-per-second", type=float, default=1.0, help="the exchange's replay pace (default: %(default)s)"
    )
    parser.add_argument(
        "--stock-exchange", action="store_true", help="the exchange's own command, its 60/min per key kept"
    )
    parser.add_argument(
        "--instruments",
        type=int,
        default=20,
        help=f"instruments listed: the {SHIPPED_INSTRUMENTS} shipped, then SYN01, … (default: %(default)s)",
    )
    parser.add_argument(
        "--bars",
        type=int,
        default=365 * BARS_PER_DAY,
        help="backtest bars, whole days (default: %(default)s)",
    )
    parser.add_argument("--skip-backtest", action="store_true", help="no backtest")
    parser.add_argument(
        "--duplicate-window",
        type=float,
        default=0.0,
        help="the engine's duplicate window in seconds, 0: off (default: %(default)s)",
    )
    parser.add_argument(
        "--signals-per-minute",
        type=int,
        default=100_000,
        help="the engine's REST signals a minute per credential (default: %(default)s)",
    )
    parser.add_argument(
        "--hops",
        type=int,
        default=100,
        help="orders per way in the per-hop table, 0: none (default: %(default)s)",
    )
    parser.add_argument("--skip-network", action="store_true", help="only the backtest")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="run the servers under cProfile into DIR and print their top functions",
    )
    args = parser.parse_args(argv)  # fmt: skip
    _check(parser, args)
    results: dict[str, Any] = {}
    profiles = ""
    if not args.skip_network:
        lifetime = 300 + 2 * args.samples + 6 * args.seconds
        with tempfile.TemporaryDirectory(prefix="a2a-bench-network-") as scratch_dir:
            scratch = Path(scratch_dir)
            if args.profile is not None:
                args.profile.mkdir(parents=True, exist_ok=True)
            fleet = Fleet(scratch, lifetime, args.profile)
            try:
                with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                    results = runner.run(run_network(args, scratch, fleet))
            except BaseException:
                for server in fleet.servers:
                    print(f"--- {server.name} log ---\n{server.tail()}", file=sys.stderr)
                raise
            finally:
                fleet.close()
            profiles = _profiles(fleet)
    backtest_result = None
    if not args.skip_backtest:
        backtest_result = backtest.measure("BTC", args.bars // BARS_PER_DAY, 0, profile=False)
    if profiles:
        print(profiles)
    print(render(results, args, backtest_result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
