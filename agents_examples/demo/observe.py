"""What the live view shows, read over HTTP once a second: the engine's REST API and the gateway's.

Prices, open positions, orders, closed trades and signals come from the trading engine (as the trader,
and the signals as the analyst who posted them); credits, trust scores and task counts from the
gateway (each user's balance with that user's read-only key, scores from discovery, tasks from
``/metrics``). A source that does not answer keeps its last values and the snapshot says so. Records
that existed before the first poll (an earlier demo on the same data) are not reported as new.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import httpx

from agents_examples.demo.network import ANALYST, TRADER, Network

RECENT: Final = 50
"""Records asked for on each poll (more new records than this within a second are not all shown)."""


@dataclass(frozen=True)
class Event:
    """One thing that happened: when it was seen (local time), its kind and a line saying it."""

    at: str
    kind: str  # signal, order, closed
    text: str


@dataclass(frozen=True)
class Credits:
    available: int
    held: int
    change: int  # available plus held, against the first poll


@dataclass
class Snapshot:
    """The network as last seen; ``events`` holds only what is new since the previous poll."""

    prices: dict[str, float] = field(default_factory=dict)
    positions: list[dict[str, Any]] = field(default_factory=list)
    credits: dict[str, Credits] = field(default_factory=dict)
    trust: dict[str, float | None] = field(default_factory=dict)
    tasks_total: int = 0
    tasks_per_second: float = 0.0
    counts: dict[str, int] = field(default_factory=lambda: {"signal": 0, "order": 0, "closed": 0})
    events: list[Event] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # the sources that did not answer this time


def _num(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) else 0.0


class Observer:
    """Polls the network ``network`` describes; :meth:`poll` gives the next snapshot. ``engine`` is a
    client of the engine's ``/api/v1`` (by default one it makes and closes)."""

    def __init__(
        self, gateway: httpx.AsyncClient, network: Network, *, engine: httpx.AsyncClient | None = None
    ) -> None:
        self._gateway = gateway
        self._network = network
        self._engine = engine or httpx.AsyncClient(
            base_url=network.nodes["engine"].url + "/api/v1", timeout=5
        )
        self._names = {agent_id: name for name, agent_id in network.trading_agents.items()}
        self._seen: dict[str, set[str]] = {"signal": set(), "order": set(), "closed": set()}
        self._baseline: dict[str, int] = {}
        self._known: set[str] = set()  # the kinds of record whose earlier records have been read
        self._last_tasks: tuple[float, int] | None = None
        self.snapshot = Snapshot()

    async def aclose(self) -> None:
        await self._engine.aclose()

    async def poll(self) -> Snapshot:
        """Read every source once (concurrently) and return the updated snapshot."""
        snap = self.snapshot
        snap.events, snap.stale = [], []
        trader = self._network.accounts[TRADER.name].view
        analyst = self._network.accounts[ANALYST.name].view
        reads = {
            "prices": self._engine.get("/price-feeds", headers=trader),
            "positions": self._engine.get("/agent-positions", params={"limit": 100}, headers=trader),
            "orders": self._engine.get("/agent-transactions", params={"limit": RECENT}, headers=trader),
            "closed": self._engine.get("/agent-historical-swaps", params={"limit": RECENT}, headers=trader),
            "signals": self._engine.get("/trading-signals", params={"limit": RECENT}, headers=analyst),
            "trust": self._gateway.get("/api/v1/discover", params={"limit": 100}, headers=trader),
            "metrics": self._gateway.get("/metrics"),
        }
        for role, account in self._network.accounts.items():
            reads[f"credits:{role}"] = self._gateway.get("/api/v1/billing/balance", headers=account.view)
        answers = await asyncio.gather(*reads.values(), return_exceptions=True)
        for name, answer in zip(reads, answers, strict=True):
            if isinstance(answer, httpx.HTTPError) or (
                isinstance(answer, httpx.Response) and answer.status_code != 200
            ):
                snap.stale.append(name)
                continue
            if isinstance(answer, BaseException):
                raise answer
            try:
                self._apply(snap, name, answer)
            except (ValueError, KeyError, TypeError):
                snap.stale.append(name)
        return snap

    def _apply(self, snap: Snapshot, name: str, response: httpx.Response) -> None:
        if name == "metrics":
            self._tasks(snap, response.text)
            return
        body = response.json()
        if name == "prices":
            snap.prices = {p["symbol"]: _num(p["price"]) for p in body if p.get("price") is not None}
        elif name == "positions":
            snap.positions = [p | {"agentName": self._names.get(p.get("agentId", ""), "?")} for p in body]
        elif name == "trust":
            ids = {node.agent_id: node.name for node in self._network.nodes.values()}
            snap.trust = {ids[a["id"]]: a.get("trustScore") for a in body["data"] if a["id"] in ids}
        elif name.startswith("credits:"):
            data = body["data"]
            role = name.split(":", 1)[1]
            available, held = int(data["available"]), int(data["held"])
            start = self._baseline.setdefault(role, available + held)
            snap.credits[role] = Credits(available, held, available + held - start)
        else:
            kind = {"orders": "order", "closed": "closed", "signals": "signal"}[name]
            self._records(snap, kind, body)

    def _records(self, snap: Snapshot, kind: str, records: list[dict[str, Any]]) -> None:
        seen = self._seen[kind]
        at = datetime.now().strftime("%H:%M:%S")  # the viewer's local time
        earlier = kind not in self._known  # the first answer of this source: what was there already
        self._known.add(kind)
        for record in reversed(records):  # the API lists newest first
            key = str(record.get("id"))
            if key in seen:
                continue
            seen.add(key)
            if earlier:
                continue
            snap.counts[kind] += 1
            snap.events.append(Event(at, kind, self._describe(kind, record)))

    def _describe(self, kind: str, r: dict[str, Any]) -> str:
        agent = self._names.get(r.get("agentId", ""), "a trading agent")
        if kind == "signal":
            return (
                f"signal  {r.get('symbol') or r.get('tokenAddress')} {r.get('signalType')} "
                f"strength {r.get('signalStrength')}: the signal agent -> gateway -> engine"
            )
        if kind == "order":
            if r.get("side") == "buy":
                return (
                    f"order   {agent} bought {_num(r.get('outputAmount')):.6g} {r.get('outputSymbol')} "
                    f"at {_num(r.get('outputPrice')):.6g} for {_num(r.get('inputAmount')):.2f} USD: "
                    "engine -> gateway -> exchange"
                )
            return (
                f"order   {agent} sold {_num(r.get('inputAmount')):.6g} {r.get('inputSymbol')} "
                f"at {_num(r.get('inputPrice')):.6g} for {_num(r.get('outputAmount')):.2f} USD: "
                "engine -> gateway -> exchange"
            )
        part = "part of " if r.get("partial") else ""
        return (
            f"closed  {agent} {part}{r.get('tokenSymbol')} ({r.get('closeReason')}): "
            f"P/L {_num(r.get('profitLossUsd')):+.2f} USD ({_num(r.get('changePercent')):+.2f} %)"
        )

    def _tasks(self, snap: Snapshot, text: str) -> None:
        total = 0
        for line in text.splitlines():
            if line.startswith("a2a_tasks{"):
                total += int(float(line.rsplit(" ", 1)[1]))
        now = time.monotonic()
        if self._last_tasks is not None and now > self._last_tasks[0]:
            snap.tasks_per_second = max(0, total - self._last_tasks[1]) / (now - self._last_tasks[0])
        self._last_tasks = (now, total)
        snap.tasks_total = total
