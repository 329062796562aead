"""Priced task lifecycles per second: hold, relay to the agent, complete, capture, vs the same call unpriced.

Run: python -m benchmarks.settlement [--duration 8] [--concurrency 1,32] [--database sqlite|postgresql]
                                      [--buyers one|many|one,many] [--postgres-url URL] [--profile N]
                                      [--no-trust-evidence]

One process on uvloop holds everything: the gateway app (rate limits off, a fresh database: SQLite in a
temp dir, or a uniquely named PostgreSQL database dropped afterwards), an in-process agent that completes
every task at once, reached through the gateway's injected outbound transport (its card URLs are on
127.0.0.1, no socket is opened), and the load, sent through httpx.ASGITransport to ``/a2a`` with
``metadata.agentId``. Two agents are registered from their cards by one owner, one with ``pricePerTask``
and one free; a second user, granted credits, calls both, so the two runs differ only by the price.
A second part calls BillingService directly: hold then capture per task, each in its own transaction,
and hold per task with the captures grouped into one ``settle`` per batch, as the task writer does.
After every run ``ledger check`` (BillingService.check) must be clean and nothing may stay held.
``--buyers many`` runs every window again with each concurrent caller paying from a wallet of its own
(as many buyers as the highest level), so the one buyer's wallet row lock is told apart from what each
hold's statements cost.
Targets: priced >= 80% of unpriced throughput at every level, >= 1,000 settled tasks/s on SQLite with
the settlement service called directly. ``--no-trust-evidence`` (a diagnostic) skips the trust listener
after each call, to show how much of a call's time trust scoring takes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import itertools
import math
import os
import pstats
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvloop
from asgi_lifespan import LifespanManager
from starlette.types import Receive, Scope, Send

from a2a_gateway.app import create_gateway_app
from a2a_gateway.app.ended_calls import CallEvidence
from a2a_gateway.billing.models import Outcome, Settlement
from a2a_gateway.billing.service import BillingService
from a2a_gateway.settings import Settings
from benchmarks.jsonrpc_send import HOST, _fmt
from benchmarks.load import COMPLETED, LoadResult, _Window

DEFAULT_POSTGRES_URL = os.environ.get(
    "A2A_GATEWAY_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
PRICE = 100  # the platform's default 5% fee makes this 95 to the owner, 5 to the platform
GRANT = 10**12  # enough that no run is refused for want of credits
PRICED_PORT, FREE_PORT = 18001, 18002  # only names in card URLs: the transport is in-process
TARGET_PRICED_SHARE = 0.80
TARGET_DIRECT_RPS = 1000.0
SETTLE_BATCH = 64  # at most this many captures per settle, like one task-writer batch


class Agent:
    """An A2A agent that completes every task at once; its card names the host it was asked on."""

    def __init__(self) -> None:
        self._ids = itertools.count()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the card on GET, a completed task on POST."""
        assert scope["type"] == "http"
        host = dict(scope["headers"]).get(b"host", b"").decode()
        if scope["method"] == "GET":
            await _answer(send, _card(host))
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = orjson.loads(body)
        task = {"id": f"up-{next(self._ids)}", "contextId": "c", "status": {"state": "TASK_STATE_COMPLETED"}}
        await _answer(send, {"jsonrpc": "2.0", "id": request["id"], "result": {"task": task}})


def _card(host: str) -> dict[str, Any]:
    return {
        "name": f"Bench {host}",
        "description": "Completes every task at once",
        "supportedInterfaces": [
            {"url": f"http://{host}/a2a", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
        ],
        "version": "1.0.0",
        "capabilities": {"streaming": False},
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "skills": [{"id": "answer", "name": "Answer", "description": "Answers", "tags": ["answer"]}],
    }


async def _answer(send: Send, doc: dict[str, Any]) -> None:
    raw = orjson.dumps(doc)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(raw))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


@dataclass
class Market:
    """The running gateway, its billing service, the two agents and the paying user."""

    gw: httpx.AsyncClient
    billing: BillingService
    priced_id: str
    free_id: str
    owner_id: str
    buyer_id: str
    buyer: dict[str, str]
    others: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # more buyers (--buyers many)

    def buyers(self, mode: str) -> list[tuple[str, dict[str, str]]]:
        """Who pays in a mode: the one buyer, or a buyer per concurrent caller."""
        return (
            [(self.buyer_id, self.buyer), *self.others] if mode == "many" else [(self.buyer_id, self.buyer)]
        )


async def _user(gw: httpx.AsyncClient, email: str) -> tuple[str, dict[str, str]]:
    credentials = {"email": email, "password": "benchmark password"}
    (await gw.post("/api/v1/auth/register", json=credentials)).raise_for_status()
    login = await gw.post("/api/v1/auth/login", json=credentials)
    login.raise_for_status()
    headers = {"Authorization": f"Bearer {login.json()['data']['accessToken']}"}
    me = await gw.get("/api/v1/auth/me", headers=headers)
    return str(me.json()["data"]["id"]), headers


async def _register(gw: httpx.AsyncClient, owner: dict[str, str], port: int, price: int | None) -> str:
    body: dict[str, Any] = {"cardUrl": f"http://{HOST}:{port}"}
    if price is not None:
        body["pricePerTask"] = price
    created = await gw.post("/api/v1/agents", json=body, headers=owner)
    if created.status_code != 201:
        raise RuntimeError(f"registering the agent on port {port} failed: {created.text}")
    return str(created.json()["data"]["id"])


@contextlib.asynccontextmanager
async def market(database_url: str | None, scratch: Path, buyers: int = 1) -> AsyncIterator[Market]:
    """Start the gateway on ``database_url`` (None: SQLite in ``scratch``) with both agents registered
    and ``buyers`` users granted credits."""
    settings = Settings(
        data_dir=scratch,
        database_url=database_url,
        public_url=f"http://{HOST}",
        outbound_allowlist=[HOST],
        rate_limits={},
        log_level="WARNING",
    )
    app = create_gateway_app(settings, outbound_transport=httpx.ASGITransport(app=Agent()), auto_migrate=True)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=f"http://{HOST}", timeout=30
        ) as gw,
    ):
        owner_id, owner = await _user(gw, "owner@bench.test")
        buyer_id, buyer = await _user(gw, "buyer@bench.test")
        priced = await _register(gw, owner, PRICED_PORT, PRICE)
        free = await _register(gw, owner, FREE_PORT, None)
        billing: BillingService = app.state.billing
        others = [await _user(gw, f"buyer{n}@bench.test") for n in range(1, buyers)]
        for user_id, _ in [(buyer_id, buyer), *others]:
            await billing.grant(user_id, GRANT, "benchmark")
        yield Market(gw, billing, priced, free, owner_id, buyer_id, buyer, others)


@contextlib.asynccontextmanager
async def fresh_database(kind: str, postgres_url: str) -> AsyncIterator[tuple[str | None, Path]]:
    """A scratch dir, and None (SQLite inside it) or the URL of a new PostgreSQL database, dropped after."""
    with tempfile.TemporaryDirectory(prefix="a2a-bench-settlement-") as scratch_dir:
        scratch = Path(scratch_dir)
        if kind == "sqlite":
            yield None, scratch
            return
        import asyncpg  # only needed for PostgreSQL

        base = postgres_url.replace("postgresql://", "postgresql+asyncpg://", 1)
        dsn = base.replace("postgresql+asyncpg://", "postgresql://", 1)
        name = f"a2a_bench_{uuid.uuid4().hex[:12]}"
        admin = await asyncpg.connect(dsn)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        try:
            yield base.rsplit("/", 1)[0] + "/" + name, scratch
        finally:
            admin = await asyncpg.connect(dsn)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()


@dataclass
class Run:
    """One measured window, plus what the whole run (warm-up and stragglers too) completed."""

    result: LoadResult
    completed_total: int
    settled: int | None = None  # captures the ledger recorded during the whole run
    held_after: int | None = None
    ledger_ok: bool | None = None
    findings: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The load summary and the money columns."""
        return {
            **self.result.summary(),
            "completed_total": self.completed_total,
            "settled": self.settled,
            "held_after": self.held_after,
            "ledger_ok": self.ledger_ok,
        }


Op = Callable[[int], Awaitable[bool]]  # one operation of the worker numbered by the argument


async def drive(
    op: Op, concurrency: int, duration: float, warmup: float, max_count: int
) -> tuple[LoadResult, int]:
    """Run ``op`` from ``concurrency`` workers, warm up, then measure for ``duration`` s or ``max_count`` ops.

    Returns the window's result and how many ops succeeded in all (warm-up and stragglers included).
    """
    clock = time.perf_counter
    now = clock()
    window = _Window(now + warmup, now + warmup + duration, max_count)
    done = 0

    async def worker(number: int) -> None:
        nonlocal done
        while not window.stop:
            started = clock()
            try:
                async with asyncio.timeout(10.0):
                    ok = await op(number)
            except (httpx.HTTPError, TimeoutError, ValueError):
                ok = False
            done += ok
            window.record(started, clock(), ok)

    workers = [asyncio.create_task(worker(n)) for n in range(concurrency)]
    # Workers stop on the first completion past the window; this loop covers a window with none.
    while not window.stop and clock() < window.measure_end:
        await asyncio.sleep(0.05)
    window.stop = True
    await asyncio.gather(*workers)
    result = LoadResult(
        concurrency,
        len(window.latencies_ms),
        window.errors,
        window.measure_end - window.measure_start,
        window.latencies_ms,
    )
    return result, done


def send_message(m: Market, agent_id: str, mode: str = "one") -> Op:
    """One SendMessage to ``agent_id`` as the worker's buyer, a fresh messageId each time; True when
    completed."""
    run = os.urandom(4).hex()
    ids = itertools.count()
    payers = m.buyers(mode)
    headers = [{"A2A-Version": "1.0", "Content-Type": "application/json", **h} for _, h in payers]

    async def op(worker: int) -> bool:
        n = next(ids)
        message = {"messageId": f"bench-{run}-{n}", "role": "ROLE_USER", "parts": [{"text": "hello"}]}
        body = {
            "jsonrpc": "2.0",
            "id": n,
            "method": "SendMessage",
            "params": {"message": message, "metadata": {"agentId": agent_id}},
        }
        answer = await m.gw.post("/a2a", content=orjson.dumps(body), headers=headers[worker % len(headers)])
        return answer.status_code == 200 and COMPLETED in answer.content

    return op


class GroupedCapture:
    """Captures queued by concurrent tasks, settled ``SETTLE_BATCH`` at a time in one transaction each,
    the way the task writer groups the terminal writes that arrive while it is busy."""

    def __init__(self, billing: BillingService) -> None:
        self._billing = billing
        self._queue: list[tuple[str, asyncio.Future[bool]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def capture(self, task_id: str) -> bool:
        """Queue the capture; True once the batch holding it committed it."""
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((task_id, waiter))
        if self._drainer is None:
            self._drainer = asyncio.create_task(self._drain())
        return await waiter

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[:SETTLE_BATCH], self._queue[SETTLE_BATCH:]
                try:
                    settled = await self._billing.settle([Settlement(t, Outcome.CAPTURE) for t, _ in batch])
                except Exception as exc:  # the batch's callers get the error
                    for _, waiter in batch:
                        waiter.set_exception(exc)
                    continue
                captured = {h.task_id for h in settled}
                for task_id, waiter in batch:
                    waiter.set_result(task_id in captured)
        finally:
            self._drainer = None


def hold_and_capture(m: Market, grouped: bool, mode: str = "one") -> Op:
    """Hold a task's price from the worker's buyer, then capture it, alone or grouped; True when
    captured."""
    run = os.urandom(4).hex()
    ids = itertools.count()
    group = GroupedCapture(m.billing) if grouped else None
    payers = [user_id for user_id, _ in m.buyers(mode)]

    async def op(worker: int) -> bool:
        task_id = f"direct-{run}-{next(ids)}"
        payer = payers[worker % len(payers)]
        held = await m.billing.hold(task_id, payer, PRICE, payee_user_id=m.owner_id)
        if held is None:
            return False
        if group is not None:
            return await group.capture(task_id)
        return await m.billing.capture(task_id) is not None

    return op


async def measured(
    m: Market,
    op: Op,
    level: int,
    duration: float,
    warmup: float,
    max_count: int,
    profile: cProfile.Profile | None = None,
    mode: str = "one",
) -> Run:
    """One window of ``op``, then what the ledger says: captures during it, anything still held, check."""
    payers = [user_id for user_id, _ in m.buyers(mode)]
    before = [await m.billing.balance(p) for p in payers]
    if profile is not None:
        profile.enable()
    result, total = await drive(op, level, duration, warmup, max_count)
    if profile is not None:
        profile.disable()
    after = [await m.billing.balance(p) for p in payers]
    report = await m.billing.check()
    return Run(
        result,
        total,
        sum(a.total_spent - b.total_spent for a, b in zip(after, before, strict=True)) // PRICE,
        sum(a.held for a in after),
        report.ok,
        [f"{f.invariant} {f.subject}: {f.detail}" for f in report.findings[:5]],
    )


@dataclass
class DatabaseResults:
    """Every row measured on one database, in one buyer mode ("one" buyer, or "many": one per caller)."""

    name: str
    mode: str = "one"
    jsonrpc: dict[int, tuple[Run, Run]] = field(default_factory=dict)  # level -> (priced, unpriced)
    direct: dict[int, tuple[Run, Run]] = field(default_factory=dict)  # level -> (one by one, grouped)


async def bench_database(
    kind: str,
    postgres_url: str,
    levels: list[int],
    duration: float,
    warmup: float,
    max_count: int,
    profile: cProfile.Profile | None,
    mode: str = "one",
) -> DatabaseResults:
    """Every level on one fresh database: JSON-RPC priced then unpriced, then the service directly."""
    out = DatabaseResults(kind, mode)
    buyers = max(levels) if mode == "many" else 1
    window = (duration, warmup, max_count)
    async with fresh_database(kind, postgres_url) as (url, scratch), market(url, scratch, buyers) as m:
        for probe_id in (m.priced_id, m.free_id):
            if not await send_message(m, probe_id)(0):
                raise RuntimeError(f"{kind}: the probe SendMessage to {probe_id} did not complete")
        what = f"{kind} ({mode} buyer{'s' if mode == 'many' else ''})"
        for level in levels:
            op = send_message(m, m.priced_id, mode)
            priced = await measured(m, op, level, *window, profile, mode)
            free = await measured(m, send_message(m, m.free_id, mode), level, *window, mode=mode)
            out.jsonrpc[level] = (priced, free)
            _progress(what, f"JSON-RPC c={level}", priced, free)
        for level in levels:
            alone = await measured(m, hold_and_capture(m, False, mode), level, *window, mode=mode)
            grouped = await measured(m, hold_and_capture(m, True, mode), level, *window, mode=mode)
            out.direct[level] = (alone, grouped)
            _progress(what, f"direct c={level}", alone, grouped)
    return out


def _progress(kind: str, what: str, a: Run, b: Run) -> None:
    sa, sb = a.result.summary(), b.result.summary()
    print(
        f"  {kind} {what}: {sa['rps']:.0f} vs {sb['rps']:.0f} per s, errors {sa['errors']}/{sb['errors']}, "
        f"ledger check {_check(a)}/{_check(b)}",
        flush=True,
    )


def _check(run: Run) -> str:
    if run.ledger_ok is None:
        return "n/a"
    clean = run.ledger_ok and not run.held_after
    return (
        "clean" if clean else f"NOT CLEAN (held {run.held_after}; {'; '.join(run.findings) or 'no finding'})"
    )


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def render_jsonrpc(results: list[DatabaseResults]) -> str:
    """Priced vs unpriced SendMessage through /a2a, side by side per database and level."""
    header = [
        "database",
        "concurrency",
        "priced rps",
        "priced p50 ms",
        "priced p99 ms",
        "unpriced rps",
        "unpriced p50 ms",
        "unpriced p99 ms",
        "priced/unpriced",
        "errors",
        "completed priced",
        "settled",
        "ledger check",
    ]
    rows = [_row(header), _row(["---", *["---:"] * (len(header) - 2), "---"])]
    for db in results:
        for level, (priced, free) in db.jsonrpc.items():
            p, f = priced.result.summary(), free.result.summary()
            ratio = p["rps"] / f["rps"] if f["rps"] else math.nan
            rows.append(
                _row(
                    [
                        db.name,
                        str(level),
                        f"{p['rps']:.0f}",
                        _fmt(p["p50_ms"], 2),
                        _fmt(p["p99_ms"], 2),
                        f"{f['rps']:.0f}",
                        _fmt(f["p50_ms"], 2),
                        _fmt(f["p99_ms"], 2),
                        _fmt(100 * ratio, 0) + "%",
                        f"{p['errors']}/{f['errors']}",
                        str(priced.completed_total),
                        str(priced.settled),
                        "clean"
                        if _check(priced) == _check(free) == "clean"
                        else f"{_check(priced)} / {_check(free)}",
                    ]
                )
            )
    return "\n".join(rows)


def render_direct(results: list[DatabaseResults]) -> str:
    """BillingService.hold + capture per task, each capture alone or grouped as the writer groups them."""
    header = [
        "database",
        "concurrency",
        "alone rps",
        "alone p50 ms",
        "alone p99 ms",
        "grouped rps",
        "grouped p50 ms",
        "grouped p99 ms",
        "errors",
        "settled",
        "ledger check",
    ]
    rows = [_row(header), _row(["---", *["---:"] * (len(header) - 2), "---"])]
    for db in results:
        for level, (alone, grouped) in db.direct.items():
            a, g = alone.result.summary(), grouped.result.summary()
            rows.append(
                _row(
                    [
                        db.name,
                        str(level),
                        f"{a['rps']:.0f}",
                        _fmt(a["p50_ms"], 2),
                        _fmt(a["p99_ms"], 2),
                        f"{g['rps']:.0f}",
                        _fmt(g["p50_ms"], 2),
                        _fmt(g["p99_ms"], 2),
                        f"{a['errors']}/{g['errors']}",
                        f"{alone.settled}/{grouped.settled}",
                        "clean"
                        if _check(alone) == _check(grouped) == "clean"
                        else f"{_check(alone)} / {_check(grouped)}",
                    ]
                )
            )
    return "\n".join(rows)


def verdicts(results: list[DatabaseResults]) -> list[str]:
    """A PASS/FAIL line per target, and one for the ledger."""
    lines = []
    for db in results:
        name = db.name if db.mode == "one" else f"{db.name} (many buyers)"
        for level, (priced, free) in db.jsonrpc.items():
            ratio = priced.result.rps / free.result.rps if free.result.rps else 0.0
            ok = ratio >= TARGET_PRICED_SHARE
            lines.append(
                f"{name} c={level}: priced >= {TARGET_PRICED_SHARE:.0%} of unpriced rps: "
                f"{ratio:.0%} {'PASS' if ok else 'FAIL'}"
            )
        if db.name == "sqlite" and db.mode == "one" and db.direct:
            best_level, (_, grouped) = max(db.direct.items(), key=lambda kv: kv[1][1].result.rps)
            ok = grouped.result.rps >= TARGET_DIRECT_RPS
            lines.append(
                f"sqlite direct (hold + grouped capture, best at c={best_level}) >= "
                f"{TARGET_DIRECT_RPS:,.0f} settled/s: {grouped.result.rps:,.0f} {'PASS' if ok else 'FAIL'}"
            )
        runs = [r for pair in (*db.jsonrpc.values(), *db.direct.values()) for r in pair]
        clean = all(_check(r) == "clean" for r in runs)
        lines.append(
            f"{name}: ledger check clean and nothing held after every run: {'PASS' if clean else 'FAIL'}"
        )
    return lines


def _print_profile(profile: cProfile.Profile, top: int) -> None:
    print(f"\nProfile of the priced JSON-RPC windows (top {top} by own time):\n")
    stats = pstats.Stats(profile, stream=sys.stdout)
    stats.sort_stats(pstats.SortKey.TIME).print_stats(top)


async def run(args: argparse.Namespace, levels: list[int]) -> int:
    """Benchmark every database asked for, print the tables and the verdicts."""
    profile = cProfile.Profile() if args.profile else None
    results = []
    modes = getattr(args, "buyers", ["one"])
    for mode in modes:
        for kind in args.database:
            print(
                f"{kind}, {mode} buyer{'s' if mode == 'many' else ''}: fresh database, levels {levels}, "
                f"{args.warmup} s warm-up + {args.duration} s each",
                flush=True,
            )
            results.append(
                await bench_database(
                    kind, args.postgres_url, levels, args.duration, args.warmup, args.max_count, profile, mode
                )
            )
    for mode in modes:
        chosen = [r for r in results if r.mode == mode]
        who = (
            "one buyer pays for every call"
            if mode == "one"
            else "each concurrent caller pays from a wallet of its own"
        )
        print(
            f"\nSendMessage through /a2a ({who}), priced (hold, relay, complete, capture) vs the same call "
            "to a free agent; one process: gateway, in-process agent and load through "
            "httpx.ASGITransport (no sockets). errors priced/unpriced; completed and settled count the "
            "whole run, warm-up included:\n"
        )
        print(render_jsonrpc(chosen))
        print(
            f"\nBillingService called directly ({who}): hold, then capture alone (two transactions per task) "
            f"or grouped (captures queued while one settle runs go in the next, at most {SETTLE_BATCH} per "
            "transaction, as the task writer batches); settled alone/grouped count the whole run:\n"
        )
        print(render_direct(chosen))
    lines = verdicts(results)
    print("\nTargets:\n" + "\n".join(f"- {line}" for line in lines))
    if profile is not None:
        _print_profile(profile, args.profile)
    return 1 if args.check and any(line.endswith("FAIL") for line in lines) else 0


def main() -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per window")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per window")
    parser.add_argument("--concurrency", default="1,32", help="comma-separated levels")
    parser.add_argument("--database", default="sqlite", help="sqlite, postgresql, or both comma-separated")
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES_URL,
        help="server to create the scratch database on (its database is only connected to)",
    )
    parser.add_argument("--max-count", type=int, default=1_000_000, help="cap of measured ops per window")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="cProfile the priced JSON-RPC windows and print the top N functions",
    )
    parser.add_argument(
        "--buyers",
        default="one",
        help="one (every call paid by one buyer), many (a buyer per concurrent caller), or one,many",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--no-trust-evidence",
        action="store_true",
        help="diagnostic: skip the trust listener (CallEvidence.call_ended) after each call",
    )
    args = parser.parse_args()
    args.database = [d.strip() for d in args.database.split(",")]
    if set(args.database) - {"sqlite", "postgresql"}:
        parser.error("--database takes sqlite, postgresql or both")
    args.buyers = [b.strip() for b in args.buyers.split(",")]
    if not args.buyers or set(args.buyers) - {"one", "many"}:
        parser.error("--buyers takes one, many or one,many")
    levels = [int(x) for x in args.concurrency.split(",")]
    if args.no_trust_evidence:
        # Not a setting: the benchmark swaps the listener out to show what trust scoring costs per call.
        async def skip(self: object, call: object) -> None:
            return None

        CallEvidence.call_ended = skip  # type: ignore[method-assign]
        print("diagnostic: trust evidence is NOT recorded after calls (CallEvidence.call_ended skipped)")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(run(args, levels))


if __name__ == "__main__":
    raise SystemExit(main())
