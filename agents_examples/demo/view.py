"""The demo's live view: a compact screen with rich in a terminal, one line per event otherwise.

The screen shows prices, open positions with their P/L, each user's credits and how they moved, each
agent's trust score, tasks per second through the gateway and the latest events. The plain form (not a
terminal, or ``--plain``) prints each signal, order and closed trade as it is seen, and a status line
every :data:`STATUS_SECONDS`. Either way the view ends when the demo is told to stop, when
``duration`` has passed, or when an agent process dies (AgentStopped, with the end of its log).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Final

import httpx
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from agents_examples.demo.children import AgentStopped
from agents_examples.demo.network import Network
from agents_examples.demo.observe import Observer, Snapshot

POLL_SECONDS: Final = 1.0
STATUS_SECONDS: Final = 10.0
LATEST: Final = 10
ROLE_LABELS: Final = {"trader": "trader (demo user)", "operator": "exchange operator", "analyst": "analyst"}


async def run_view(
    client: httpx.AsyncClient, network: Network, stop: asyncio.Event, duration: float | None, *, plain: bool
) -> int:
    """Show the network until stopped; the exit code (module doc)."""
    observer = Observer(client, network)
    ends = None if duration is None else time.monotonic() + duration
    latest: deque[str] = deque(maxlen=LATEST)
    started = time.monotonic()
    last_status = started
    live = None if plain else Live(console=Console(), refresh_per_second=4, transient=False)
    try:
        if live is not None:
            live.start()
        while not stop.is_set():
            snap = await observer.poll()
            for event in snap.events:
                line = f"{event.at} {event.text}"
                latest.append(line)
                if live is None:
                    print(line, flush=True)
            now = time.monotonic()
            if live is not None:
                live.update(render(network, snap, latest, now - started))
            elif now - last_status >= STATUS_SECONDS:
                print(status_line(snap), flush=True)
                last_status = now
            for child in network.children:
                if child.exited.done():
                    raise AgentStopped(child.failure())
            wait = POLL_SECONDS if ends is None else min(POLL_SECONDS, ends - time.monotonic())
            if wait <= 0:
                break
            try:
                await asyncio.wait_for(stop.wait(), wait)
            except TimeoutError:
                continue
        return 0
    finally:
        if live is not None:
            live.stop()
        await observer.aclose()


def status_line(snap: Snapshot) -> str:
    """One line: tasks, credits and trust."""
    credits = ", ".join(f"{role} {c.available:,} ({c.change:+,})" for role, c in snap.credits.items())
    trust = ", ".join(f"{name} {_score(score)}" for name, score in snap.trust.items())
    counts = snap.counts
    return (
        f"status  {snap.tasks_total} gateway tasks ({snap.tasks_per_second:.1f}/s); "
        f"{counts['signal']} signals, {counts['order']} orders, {counts['closed']} closed, "
        f"{len(snap.positions)} open; "
        f"credits {credits}; trust {trust}"
    )


def _score(score: float | None) -> str:
    return "-" if score is None else f"{score:.2f}"


def render(network: Network, snap: Snapshot, latest: deque[str], uptime: float) -> Group:
    """The screen for ``snap``."""
    head = Text.assemble(
        ("A2A trading network ", "bold"),
        f"through {network.gateway_url}   up {int(uptime) // 60:02d}:{int(uptime) % 60:02d}   ",
        (f"{snap.tasks_per_second:.1f} tasks/s", "bold cyan"),
        f" ({snap.tasks_total} tasks)   {snap.counts['signal']} signals, {snap.counts['order']} orders, "
        f"{snap.counts['closed']} closed",
    )
    if snap.stale:
        head.append(f"   not answering: {', '.join(snap.stale)}", style="yellow")

    prices = Table(title="Prices", title_justify="left", expand=False)
    prices.add_column("symbol")
    prices.add_column("price", justify="right")
    for symbol, price in sorted(snap.prices.items()):
        prices.add_row(symbol, f"{price:,.6g}")

    positions = Table(title="Open positions", title_justify="left")
    for name in ("agent", "token", "amount", "entry", "now", "P/L USD", "P/L %"):
        positions.add_column(name, justify="left" if name in ("agent", "token") else "right")
    for p in snap.positions:
        pnl = float(p.get("profitLossSol") or 0)
        style = "green" if pnl >= 0 else "red"
        positions.add_row(
            str(p.get("agentName")),
            str(p.get("tokenSymbol")),
            f"{float(p.get('remainingAmount') or 0):.6g}",
            f"{float(p.get('purchasePrice') or 0):,.6g}",
            f"{float(p.get('currentPrice') or 0):,.6g}",
            Text(f"{pnl:+.2f}", style=style),
            Text(f"{float(p.get('profitLossPercent') or 0):+.2f}", style=style),
        )
    if not snap.positions:
        positions.add_row("(none yet)", "", "", "", "", "", "")

    accounts = Table(title="Credits", title_justify="left")
    for name in ("user", "available", "held", "since start"):
        accounts.add_column(name, justify="left" if name == "user" else "right")
    for role, c in snap.credits.items():
        accounts.add_row(ROLE_LABELS.get(role, role), f"{c.available:,}", f"{c.held:,}", f"{c.change:+,}")

    agents = Table(title="Agents", title_justify="left")
    agents.add_column("agent")
    agents.add_column("id")
    agents.add_column("trust", justify="right")
    for name, node in network.nodes.items():
        agents.add_row(name, node.agent_id[:13] + "…", _score(snap.trust.get(name)))

    side = Table.grid(padding=(0, 3))
    side.add_row(prices, accounts, agents)
    events = Text("\n".join(latest) if latest else "(waiting for the first signal)")
    return Group(head, side, positions, Text("Latest", style="bold"), events)
