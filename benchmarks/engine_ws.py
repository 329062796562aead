"""The trading engine's WebSocket fan-out: how late a price tick reaches a thousand live clients.

Run: python -m benchmarks.engine_ws [--clients 1000] [--ticks-per-second 10] [--seconds 5] [--deflate]

The engine's ``/ws`` route (``agents_examples.trading.engine.ws``) runs alone in a uvicorn subprocess
on loopback (uvloop, httptools, the ``websockets`` sans-I/O protocol), every client following the same
trading agent, with an auth that admits anyone (no gateway: the handshake is not what is measured).
This process opens ``--clients`` sockets (at most 100 handshakes at a time), waits until the server's hub
has them all, then asks the server to publish one ``price_update_batch`` of 10 token updates per tick
for ``--seconds``. Each batch carries its
``perf_counter_ns`` at publish time; a client's receipt time minus that stamp is one delivery latency
(CLOCK_MONOTONIC is one clock for both processes). The table: p50, p99 and max over every receipt,
messages lost, and the server's CPU during the ticks. Target: p99 < 100 ms with 1,000 clients at 10
ticks/s on 2 cores. The clients are a lean protocol of their own (``LeanClient``), so this process
stays well under one core and the other is the server's.

permessage-deflate is off unless ``--deflate``, which lets the server compress and has the clients offer
it as browsers do: the server then compresses every message once per client (about 0.3 more cores at
1,000 clients and 10 ticks/s, and p99 past the target), so an engine serving many sockets runs uvicorn
with it off (``ws_per_message_deflate=False``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import math
import os
import resource
import sys
import time
import zlib
from pathlib import Path
from typing import Any, Final, cast

import httpx
import uvicorn
import uvloop
from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from a2a_gateway.agent import Caller
from a2a_gateway.app import GatewayAuth
from a2a_gateway.auth.gateway_identity import Credential
from agents_examples.trading.engine.events import PositionEvents, envelope
from agents_examples.trading.engine.ws import positions_socket
from benchmarks.jsonrpc_send import HOST, ServerSpec, running_server
from benchmarks.load import percentile

AGENT: Final = "bench-agent"
USER: Final = "bench-user"
TOKENS: Final = 10  # token updates per batch
HANDSHAKES: Final = 100  # at a time
MAX_CLIENTS: Final = 10_000
MAX_SECONDS: Final = 120.0
MAX_TICKS_PER_SECOND: Final = 1_000.0
TARGET_P99_MS: Final = 100.0


# --- the server (its own process) ----------------------------------------------------------------------


class AnyoneAuth(GatewayAuth):
    """Admits every socket as one user: the benchmark measures the fan-out, not the gateway."""

    def __init__(self) -> None:
        super().__init__(None)

    async def credential(self, conn: HTTPConnection) -> Credential:
        return Credential(Caller(user=USER), frozenset())


class OneAgent:
    """A directory of one trading agent, the user's, with one open position."""

    async def owner_of(self, agent_id: str) -> str | None:
        return USER if agent_id == AGENT else None

    async def initial_positions(self, agent_id: str) -> list[dict[str, Any]]:
        return [
            {"id": "p1", "tokenAddress": _token(0), "tokenSymbol": "T0", "purchasePrice": 1.0,
             "purchaseAmount": 10.0, "currentPrice": 1.0, "currentPriceUsd": 150.0, "profitLossPercent": 0.0}
        ]  # fmt: skip


def _token(n: int) -> str:
    return f"Token{n:02d}" + "x" * 34


def bench_app(max_connections: int) -> Starlette:
    """The engine's route and two control routes: how many follow, and publish ticks."""
    hub = PositionEvents()

    async def followers(request: Request) -> JSONResponse:
        return JSONResponse({"followers": hub.count})

    async def ticks(request: Request) -> JSONResponse:
        body = await request.json()
        count, rate = int(body["count"]), float(body["rate"])
        loop = asyncio.get_running_loop()
        start = loop.time()
        late = 0.0
        for n in range(count):
            due = start + n / rate
            late = max(late, loop.time() - due)
            updates = [
                {"tokenAddress": _token(i), "price": 1.0 + n * 1e-4 + i * 1e-6, "priceUsd": 150.0 + n * 0.01}
                for i in range(TOKENS)
            ]
            data = {"updates": updates, "tick": n, "sentNs": time.perf_counter_ns()}
            hub.publish(AGENT, envelope("price_update_batch", data))
            await asyncio.sleep(max(0.0, start + (n + 1) / rate - loop.time()))
        return JSONResponse({"published": count, "followers": hub.count, "maxLateMs": late * 1000})

    routes = [
        positions_socket(AnyoneAuth(), OneAgent(), hub, max_connections=max_connections),
        Route("/bench/followers", followers),
        Route("/bench/ticks", ticks, methods=["POST"]),
    ]
    return Starlette(routes=routes)


def serve(port: int, max_connections: int, deflate: bool) -> None:
    """Run the benchmark's server on loopback until terminated."""
    raise_open_files()
    uvicorn.run(bench_app(max_connections), host=HOST, port=port, loop="uvloop", http="httptools",
                ws="websockets-sansio", ws_per_message_deflate=deflate, log_level="warning",
                access_log=False, backlog=4096)  # fmt: skip


# --- the clients (this process) ------------------------------------------------------------------------


def raise_open_files() -> int:
    """Lift the soft open-file limit to the hard one; the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Receipts:
    """Every client's delivery latencies (milliseconds), and when all expected ones are in."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.expected = math.inf
        self.complete = asyncio.Event()

    def add(self, nanoseconds: int) -> None:
        self.latencies.append(nanoseconds / 1e6)
        if len(self.latencies) >= self.expected:
            self.complete.set()


_STAMP = b'"sentNs":'
_PING = b'"type":"ping"'
_PONG = b'{"type":"pong"}'
_TAIL = b"\x00\x00\xff\xff"  # what permessage-deflate strips from each message


class LeanClient(asyncio.Protocol):
    """A minimal WebSocket client: handshake, unmasked server frames, and the pongs the server wants.

    A general client (the ``websockets`` package) spends more CPU per message than the server under
    test does, and shares the 2 cores with it; this one reads each frame's header, times it on arrival
    and finds its ``sentNs`` stamp without parsing the JSON.
    """

    def __init__(self, path: str, receipts: Receipts, deflate: bool) -> None:
        self.path = path
        self.receipts = receipts
        self.deflate = deflate  # offer permessage-deflate, as browsers do
        self.inflater = zlib.decompressobj(-15)
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = False
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.seen = 0  # text messages, connected and initial_data included
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        key = base64.b64encode(os.urandom(16)).decode()
        offer = "Sec-WebSocket-Extensions: permessage-deflate\r\n" if self.deflate else ""
        transport.write(
            f"GET {self.path} HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n".encode()
        )

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter_ns()
        buffer = self.buffer
        buffer += data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                self._fail(f"handshake refused: {bytes(buffer[:40])!r}")
                return
            del buffer[: end + 4]
            self.upgraded = True
        offset = 0
        size = len(buffer)
        while size - offset >= 2:
            opcode = buffer[offset] & 0x0F
            compressed = buffer[offset] & 0x40
            length = buffer[offset + 1] & 0x7F
            start = offset + 2
            if length == 126:
                if size - offset < 4:
                    break
                length = int.from_bytes(buffer[offset + 2 : offset + 4], "big")
                start = offset + 4
            elif length == 127:
                if size - offset < 10:
                    break
                length = int.from_bytes(buffer[offset + 2 : offset + 10], "big")
                start = offset + 10
            if size - start < length:
                break
            if compressed:
                payload = self.inflater.decompress(bytes(buffer[start : start + length]) + _TAIL)
                self._frame(opcode, bytearray(payload), 0, len(payload), now)
            else:
                self._frame(opcode, buffer, start, start + length, now)
            offset = start + length
        del buffer[:offset]

    def _frame(self, opcode: int, buffer: bytearray, start: int, end: int, now: int) -> None:
        if opcode == 0x1:  # text
            self.seen += 1
            if self.seen == 2 and not self.opened.done():
                self.opened.set_result(None)  # connected, initial_data: following now
            at = buffer.find(_STAMP, start, end)
            if at >= 0:
                stop = at + len(_STAMP)
                digits = stop
                while buffer[digits] in b"0123456789":
                    digits += 1
                self.receipts.add(now - int(buffer[stop:digits]))
            elif buffer.find(_PING, start, end) >= 0:
                self._send(0x1, _PONG)
        elif opcode == 0x9:  # the server's protocol ping
            self._send(0xA, bytes(buffer[start:end]))
        elif opcode == 0x8:
            self.closed = True
            if not self.opened.done():
                self._fail(f"closed: {bytes(buffer[start:end])!r}")

    def _send(self, opcode: int, payload: bytes) -> None:
        assert self.transport is not None and len(payload) < 126
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def _fail(self, reason: str) -> None:
        if not self.opened.done():
            self.opened.set_exception(RuntimeError(reason))
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.opened.done():
            self.opened.set_exception(RuntimeError(f"connection lost: {exc}"))


async def _open(port: int, path: str, receipts: Receipts, deflate: bool, into: list[LeanClient]) -> None:
    """One more client in ``into`` (so it is closed whatever happens), once it follows the agent."""
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(lambda: LeanClient(path, receipts, deflate), HOST, port)
    into.append(client)
    await client.opened


async def fanout(
    clients: int = 1000, ticks_per_second: float = 10, seconds: float = 5, *, deflate: bool = False
) -> dict[str, float]:
    """Connect ``clients`` sockets to the engine's route in a subprocess, publish ``ticks_per_second``
    batches for ``seconds``, and measure each delivery: latency percentiles in milliseconds and counts."""
    if not 1 <= clients <= MAX_CLIENTS or not 0 < ticks_per_second <= MAX_TICKS_PER_SECOND:
        raise ValueError(
            f"clients is 1..{MAX_CLIENTS:,} and ticks_per_second in (0, {MAX_TICKS_PER_SECOND:,.0f}]"
        )
    if not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"seconds is in (0, {MAX_SECONDS:.0f}]")
    limit = raise_open_files()
    if limit < clients + 64:
        raise RuntimeError(f"{clients} sockets need more open files than the limit of {limit}")
    count = max(1, round(ticks_per_second * seconds))

    def argv(port: int, scratch: Path) -> list[str]:
        return [sys.executable, "-m", "benchmarks.engine_ws", "--serve", str(port),
                "--max-connections", str(clients + 10), *(["--deflate"] if deflate else [])]  # fmt: skip

    spec = ServerSpec("engine-ws", "the engine's /ws route alone", argv, expect=None)
    lifetime = 120 + seconds + clients / 50
    with running_server(spec, lifetime) as server:
        base = f"http://{HOST}:{server.target.port}"
        receipts = Receipts()
        path = f"/ws?token=bench&agentId={AGENT}"
        sockets: list[LeanClient] = []
        started = time.perf_counter()
        try:
            for first in range(0, clients, HANDSHAKES):
                size = min(clients, first + HANDSHAKES) - first
                async with asyncio.timeout(30):
                    await asyncio.gather(
                        *(_open(server.target.port, path, receipts, deflate, sockets) for _ in range(size))
                    )
            connect_seconds = time.perf_counter() - started
            async with httpx.AsyncClient(base_url=base, timeout=seconds + 60) as control:
                followers = (await control.get("/bench/followers")).json()["followers"]
                if followers != clients:
                    raise RuntimeError(f"the server has {followers} followers, not {clients}")
                receipts.expected = clients * count
                cpu_before, own_before = server.cpu_seconds(), time.process_time()
                ticked = time.perf_counter()
                answer = (
                    await control.post("/bench/ticks", json={"count": count, "rate": ticks_per_second})
                ).json()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(10):
                        await receipts.complete.wait()
                elapsed = time.perf_counter() - ticked
                cpu_after, own_after = server.cpu_seconds(), time.process_time()
        finally:
            for client in sockets:
                if client.transport is not None:
                    client.transport.abort()
    ordered = sorted(receipts.latencies)
    server_cpu = (
        (cpu_after - cpu_before) / elapsed if cpu_before is not None and cpu_after is not None else math.nan
    )
    return {
        "clients": float(clients),
        "ticks": float(count),
        "expected": float(clients * count),
        "received": float(len(ordered)),
        "lost": float(clients * count - len(ordered)),
        "p50_ms": percentile(ordered, 0.50),
        "p99_ms": percentile(ordered, 0.99),
        "max_ms": ordered[-1] if ordered else math.nan,
        "connect_seconds": connect_seconds,
        "server_cpu_cores": server_cpu,
        "client_cpu_cores": (own_after - own_before) / elapsed,
        "publisher_max_late_ms": float(answer["maxLateMs"]),
    }


def render(result: dict[str, float], deflate: bool) -> str:
    """The run as a small table and the target's verdict."""
    rows = [
        "| clients | ticks | received / expected | p50 ms | p99 ms | max ms | server CPU | client CPU |",
        "|---|---|---|---|---|---|---|---|",
        f"| {result['clients']:,.0f} | {result['ticks']:,.0f} | {result['received']:,.0f} / "
        f"{result['expected']:,.0f} | {result['p50_ms']:.1f} | {result['p99_ms']:.1f} | "
        f"{result['max_ms']:.1f} | {result['server_cpu_cores']:.2f} | {result['client_cpu_cores']:.2f} |",
        "",
        f"connected in {result['connect_seconds']:.1f} s; permessage-deflate {'on' if deflate else 'off'}; "
        f"publisher at most {result['publisher_max_late_ms']:.1f} ms behind its schedule",
        f"target: p99 < {TARGET_P99_MS:.0f} ms: {'met' if result['p99_ms'] < TARGET_P99_MS else 'MISSED'}",
    ]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table (or, with --serve, be its server)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=1000, help="sockets (default: %(default)s)")
    parser.add_argument("--ticks-per-second", type=float, default=10.0, help="(default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=5.0, help="ticking time (default: %(default)s)")
    parser.add_argument("--deflate", action="store_true", help="let the server compress (permessage-deflate)")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--max-connections", type=int, default=MAX_CLIENTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        serve(args.serve, args.max_connections, args.deflate)
        return 0
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        try:
            result = runner.run(
                fanout(args.clients, args.ticks_per_second, args.seconds, deflate=args.deflate)
            )
        except ValueError as exc:
            parser.error(str(exc))
    print(render(result, args.deflate))
    return 0


if __name__ == "__main__":
    sys.exit(main())
