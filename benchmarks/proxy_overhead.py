"""The gateway's routing overhead: SendMessage to the echo agent directly vs. through /a2a/agents/{id}.

Run: python -m benchmarks.proxy_overhead [--duration 10] [--concurrency 1,64] [--client lean|pooled]

Two subprocesses on loopback: the echo agent, and the gateway with the echo agent registered (from its
card) and rate limits off. The same load is sent to both; the table shows the latency percentiles and
maximum, the added p50 latency and the share of direct throughput kept. A second table times a streamed
call's first frames both ways. Targets: at most 1.5 ms added at p50 (concurrency 1), at least 50% of
direct throughput (concurrency 64), the first streamed frame at most 5 ms later through the proxy.
``--client`` picks the gateway's client of unary upstream calls (A2A_GATEWAY_UPSTREAM_HTTP: the
hand-written ``lean`` one, or httpcore's pool, ``pooled``).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import math
import statistics
import sys
import time
from pathlib import Path

import httpx

from benchmarks.jsonrpc_send import HOST, ServerSpec, _fmt, running_server
from benchmarks.load import Target, run_load

TARGET_ADDED_P50_MS = 1.5
TARGET_KEPT_THROUGHPUT = 0.50
TARGET_FIRST_FRAME_ADDED_MS = 5.0
FIRST_FRAME_CALLS = 50


def _echo(port: int, scratch: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "agents_examples.echo",
        "--host",
        HOST,
        "--port",
        str(port),
        "--data-dir",
        str(scratch),
        "--log-level",
        "warning",
    ]


def _gateway(port: int, scratch: Path, client: str = "lean") -> list[str]:
    # `env` sets the gateway's configuration: its own data dir, loopback allowed for the upstream agent,
    # no per-caller budgets (the load comes from one anonymous client), quiet logs, the unary client.
    return [
        "env",
        f"A2A_GATEWAY_DATA_DIR={scratch}",
        f"A2A_GATEWAY_UPSTREAM_HTTP={client}",
        'A2A_GATEWAY_OUTBOUND_ALLOWLIST=["127.0.0.1"]',
        "A2A_GATEWAY_RATE_LIMITS={}",
        "A2A_GATEWAY_LOG_LEVEL=WARNING",
        sys.executable,
        "-m",
        "a2a_gateway",
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
    ]


def register(gateway: Target, echo: Target) -> str:
    """Create a user on the gateway and register the echo agent from its card; the agent id."""
    base = f"http://{gateway.host}:{gateway.port}"
    credentials = {"email": "bench@example.com", "password": "benchmark password"}
    with httpx.Client(base_url=base, timeout=10) as client:
        client.post("/api/v1/auth/register", json=credentials)
        token = client.post("/api/v1/auth/login", json=credentials).json()["data"]["accessToken"]
        created = client.post(
            "/api/v1/agents",
            json={"cardUrl": f"http://{echo.host}:{echo.port}"},
            headers={"Authorization": f"Bearer {token}"},
        )
        created.raise_for_status()
        agent_id: str = created.json()["data"]["id"]
        return agent_id


async def first_frames(target: Target, calls: int) -> dict[str, float]:
    """Time from sending a streaming countdown to its first and second SSE frames, over ``calls`` calls
    made one after the other (p50 and max in ms)."""
    url = f"http://{target.host}:{target.port}{target.path}"
    firsts: list[float] = []
    seconds: list[float] = []
    async with httpx.AsyncClient(timeout=10) as http:
        for n in range(calls):
            body = {
                "jsonrpc": "2.0",
                "id": n,
                "method": "SendStreamingMessage",
                "params": {
                    "message": {"messageId": f"ff-{n}", "role": "ROLE_USER", "parts": [{"text": "1"}]},
                    "metadata": {"skillId": "countdown"},
                },
            }
            started = time.perf_counter()
            frames: list[float] = []
            async with http.stream("POST", url, json=body, headers={"A2A-Version": "1.0"}) as response:
                async for line in response.aiter_lines():
                    if line.startswith("data:"):
                        frames.append((time.perf_counter() - started) * 1000)
            firsts.append(frames[0])
            seconds.append(frames[1] if len(frames) > 1 else math.nan)
    firsts.sort()
    seconds.sort()
    return {
        "first_p50": statistics.median(firsts),
        "first_max": firsts[-1],
        "second_p50": statistics.median(seconds),
    }


async def compare(levels: list[int], duration: float, warmup: float, client: str = "lean") -> int:
    """Run both targets at every level and print the side-by-side table."""
    lifetime = (duration + warmup + 5) * len(levels) * 2 + 60
    echo_spec = ServerSpec("echo", "echo agent (kit), SQLite", _echo)
    gateway_spec = ServerSpec(
        "gateway",
        f"gateway, relay to the echo agent ({client} client)",
        functools.partial(_gateway, client=client),
    )
    print(f"Gateway's unary upstream client: {client}")
    with running_server(echo_spec, lifetime) as echo, running_server(gateway_spec, lifetime) as gateway:
        agent_id = register(gateway.target, echo.target)
        proxy = Target(gateway.target.host, gateway.target.port, f"/a2a/agents/{agent_id}")
        rows = []
        for level in levels:
            direct = (await run_load(echo.target, level, duration, warmup)).summary()
            routed = (await run_load(proxy, level, duration, warmup)).summary()
            rows.append((level, direct, routed))
        streams = [
            (name, await first_frames(t, FIRST_FRAME_CALLS))
            for name, t in (("direct", echo.target), ("proxy", proxy))
        ]
    print(
        "\n| concurrency | direct rps | direct p50 ms | direct p99 ms | direct max ms | proxy rps | "
        "proxy p50 ms | proxy p99 ms | proxy max ms | added p50 ms | kept throughput | errors |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    verdicts = []
    for level, direct, routed in rows:
        added = routed["p50_ms"] - direct["p50_ms"]
        kept = routed["rps"] / direct["rps"] if direct["rps"] else 0.0
        errors = direct["errors"] + routed["errors"]
        print(
            f"| {level} | {_fmt(direct['rps'], 0)} | {_fmt(direct['p50_ms'], 2)} | "
            f"{_fmt(direct['p99_ms'], 2)} | {_fmt(direct['max_ms'], 1)} | "
            f"{_fmt(routed['rps'], 0)} | {_fmt(routed['p50_ms'], 2)} | {_fmt(routed['p99_ms'], 2)} | "
            f"{_fmt(routed['max_ms'], 1)} | {added:.2f} | {kept:.0%} | {errors} |"
        )
        if level == 1:
            verdicts.append(
                f"added p50 at c=1 <= {TARGET_ADDED_P50_MS} ms: {added:.2f} ms "
                f"{'PASS' if added <= TARGET_ADDED_P50_MS else 'FAIL'}"
            )
        if level == 64:
            verdicts.append(
                f"kept throughput at c=64 >= {TARGET_KEPT_THROUGHPUT:.0%}: {kept:.0%} "
                f"{'PASS' if kept >= TARGET_KEPT_THROUGHPUT else 'FAIL'}"
            )
    print(
        f"\nStreamed countdown (SendStreamingMessage, {FIRST_FRAME_CALLS} calls one after the other):\n"
        "\n| path | first frame p50 ms | first frame max ms | second frame p50 ms |"
        "\n| --- | ---: | ---: | ---: |"
    )
    for name, stream in streams:
        print(
            f"| {name} | {stream['first_p50']:.2f} | {stream['first_max']:.2f} | {stream['second_p50']:.2f} |"
        )
    added_first = streams[1][1]["first_p50"] - streams[0][1]["first_p50"]
    verdicts.append(
        f"first frame added p50 <= {TARGET_FIRST_FRAME_ADDED_MS} ms: {added_first:.2f} ms "
        f"{'PASS' if added_first <= TARGET_FIRST_FRAME_ADDED_MS else 'FAIL'}"
    )
    print("\nTargets: " + "; ".join(verdicts))
    return 0


def main() -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--concurrency", default="1,64")
    parser.add_argument(
        "--client", choices=["lean", "pooled"], default="lean", help="the gateway's unary upstream client"
    )
    args = parser.parse_args()
    levels = [int(x) for x in args.concurrency.split(",")]
    return asyncio.run(compare(levels, args.duration, args.warmup, args.client))


if __name__ == "__main__":
    raise SystemExit(main())
