"""One market order on its own, three ways, one after another, in the running network: what each hop
of a signal's order costs.

- **exchange REST**: ``POST /v1/agent/orders`` at the exchange, signed (HMAC headers);
- **exchange A2A, direct**: the exchange's ``place-order`` skill at its own ``/a2a``, no gateway
  (``ExchangeLink`` pointed at the exchange, no credential);
- **through the gateway**: ``place-order`` through the gateway with the trader's ``nex_`` key, exactly
  as the engine places every order (``ExchangeLink.place_order``), priced as the run is.

Each is a buy of 0.00004 BTC (about 2 USD) from a fresh sandbox account (a new one every 50 orders,
so a kept 60-a-minute budget is never reached), answered before the next is sent. For each way: the
p50 and p99 latency, and each process's CPU milliseconds per order over those orders.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import httpx

from a2a_gateway.auth.signing import signed_headers
from agents_examples.trading.engine.exchange_link import ExchangeLink, WalletKeys
from benchmarks.network_procs import Fleet

PER_ACCOUNT: Final = 50
QUANTITY: Final = "0.00004"


async def _account(client: httpx.AsyncClient, exchange_url: str) -> WalletKeys:
    body = {"name": "hops", "permissions": ["read:portfolio", "write:orders"], "mode": "sandbox"}
    answer = await client.post(f"{exchange_url}/v1/agent/register", json=body)
    if answer.status_code not in (200, 201):
        raise RuntimeError(f"sandbox account: HTTP {answer.status_code}: {answer.text[:300]}")
    agent = answer.json()["agent"]
    return WalletKeys(str(agent["apiKey"]), str(agent["apiSecret"]))


async def hops(
    fleet: Fleet, exchange_url: str, gateway_url: str, exchange_id: str, caller_key: str, orders: int
) -> dict[str, dict[str, Any]]:
    """The three ways (module doc), ``orders`` each: latency and CPU per order."""
    out: dict[str, dict[str, Any]] = {}
    async with httpx.AsyncClient(timeout=30) as client:
        through = ExchangeLink(client, gateway_url, lambda: caller_key, exchange_agent_id=exchange_id)
        direct = ExchangeLink(client, exchange_url, lambda: None, exchange_agent_id=exchange_id)
        keys = await _account(client, exchange_url)
        count = 0

        async def rest() -> None:
            body = (
                f'{{"symbol": "BTC", "side": "buy", "type": "market", "quantity": {QUANTITY}, '
                f'"price": null, "clientOrderId": "h{time.time_ns()}"}}'
            )
            headers = signed_headers(keys.api_key, keys.api_secret, "POST", "/orders", body)
            answer = await client.post(f"{exchange_url}/v1/agent/orders", content=body, headers=headers)
            if answer.status_code != 201:
                raise RuntimeError(f"REST order: HTTP {answer.status_code}: {answer.text[:300]}")

        def skill(link: ExchangeLink) -> Callable[[], Awaitable[None]]:
            async def place() -> None:
                order = {"symbol": "BTC", "side": "buy", "type": "market", "quantity": QUANTITY,
                         "clientOrderId": f"h{time.time_ns()}"}  # fmt: skip
                outcome = await link.place_order(keys, order)
                if not outcome.accepted:
                    raise RuntimeError(f"place-order refused: {outcome.code} {outcome.message}")

            return place

        ways = {"rest": rest, "direct": skill(direct), "gateway": skill(through)}
        for name, place in ways.items():
            latencies = []
            before = fleet.cpu()
            for _ in range(orders):
                if count and count % PER_ACCOUNT == 0:
                    keys = await _account(client, exchange_url)
                count += 1
                started = time.perf_counter()
                await place()
                latencies.append((time.perf_counter() - started) * 1000.0)
            after = fleet.cpu()
            ordered = sorted(latencies)
            out[name] = {
                "orders": orders,
                "p50": statistics.median(ordered),
                "p99": ordered[math.ceil(0.99 * len(ordered)) - 1],
                "cpu_ms": {k: (after[k] - before.get(k, 0.0)) * 1000.0 / orders for k in after},
            }
    return out


def render_hops(found: dict[str, dict[str, Any]], priced: str) -> list[str]:
    """The hops as a Markdown table."""
    labels = {
        "rest": "exchange REST, signed (`POST /v1/agent/orders`)",
        "direct": "exchange A2A `place-order`, called directly",
        "gateway": f"`place-order` through the gateway, trader's key ({priced})",
    }
    rows = [
        "",
        f"| one market order at a time ({next(iter(found.values()))['orders']} each) | p50 ms | p99 ms "
        "| CPU ms per order: gateway / exchange / engine / sender |",
        "|---|---|---|---|",
    ]
    for name, label in labels.items():
        hop = found[name]
        cpu = " / ".join(
            f"{hop['cpu_ms'].get(k, 0.0):.1f}" for k in ("gateway", "exchange", "engine", "bench")
        )
        rows.append(f"| {label} | {hop['p50']:.1f} | {hop['p99']:.1f} | {cpu} |")
    return rows
