"""Scale-out: ``SendMessage`` → a task persisted on PostgreSQL, through nginx to 1 gateway process and
to 2 gateway processes, side by side in one run (issue 15). ``--with-fanout`` runs the SSE fan-out
part afterwards (``benchmarks.fanout``, the issue's other half; long).

Run: python -m benchmarks.scale_out [--seconds 20] [--warmup 3] [--concurrency 32] [--quick]
     [--with-fanout] [--postgres-url URL] [--redis-url URL]

**The setup.** A fresh database next to ``--postgres-url`` (default ``$A2A_GATEWAY_TEST_POSTGRES_URL``),
migrated with ``a2a-gateway db upgrade``, and a fresh key prefix on ``--redis-url`` (default
``$A2A_GATEWAY_TEST_REDIS_URL``), both removed at the end. The gateway processes
(``a2a-gateway serve``, each its own process on its own port) share them, one data directory and one
pepper, with ``tasks:create`` raised to 1,000,000/minute per caller (``A2A_GATEWAY_RATE_LIMITS``; the
other budgets stay at their defaults, and the limiter still runs on Redis for every call) and the
per-client connection cap raised (every connection comes from nginx on 127.0.0.1). The echo agent
(``agents_examples.echo``, one process, its own SQLite) is registered by card URL. nginx runs the
deployment example docs/deploy/nginx.conf (one process: ``master_process off``), its upstream set to
the processes of the phase.

**The call.** A2A 1.0 ``SendMessage`` on ``/a2a`` with ``metadata.agentId`` and ``skillId: echo`` and
``configuration.returnImmediately: false``: the gateway authenticates the caller, checks the rate
limit, creates the task in PostgreSQL, relays the message to the echo agent, stores the agent's
artifact and the completed state, and answers with the completed task. A relay is what the gateway
is for, so it is measured rather than a gateway-local skill; the echo agent's own cost shows in the
CPU rows. The caller logs in once and sends its **access token** (a signed token checked without a
database read), so the gateway's CPU goes to the call rather than to an API-key lookup.

**The load** is ``benchmarks.scale_out_load`` in its own process: ``--concurrency`` HTTP/1.1
keep-alive connections to nginx, each with one request in flight (a closed loop), ``--warmup`` seconds
not counted, then ``--seconds`` of measurement (or 1,000,000 answers); an answer counts when it is
HTTP 200 and holds ``TASK_STATE_COMPLETED``. Phase 1: nginx → gateway 1. Phase 2: gateway 2 started,
a new nginx on the same address → gateways 1 and 2 (round robin). **CPU** over each window is user +
system from ``/proc/PID/stat`` of every process of a group: the gateway processes, PostgreSQL (every
``postgres`` process on the machine), Redis (``redis-server``), nginx, the echo agent, the load
generator and this process. Tasks persisted: rows added to ``tasks`` over the measured window.

Target (issue 15): 2 processes at least 1.2x one process on this 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import asyncpg
import httpx
import uvloop

from benchmarks.cluster_procs import (
    Backing,
    cpu_by_group,
    gateway_env,
    nginx_binary,
    scratch_database,
    start_gateway,
    start_nginx,
)
from benchmarks.network_procs import HOST, REPO_ROOT, Fleet, Server, base_env, free_port
from benchmarks.network_setup import bearer, login, register_by_card, until_ok

TARGET_RATIO: Final = 1.2
OWNER: Final = "scale-out@example.com"
SCRATCH_PREFIX: Final = "a2a-bench-scale-out-"
COMPLETED: Final = "TASK_STATE_COMPLETED"
MAX_REQUESTS: Final = 1_000_000
QUICK: Final = {"seconds": 2.0, "warmup": 1.0, "concurrency": 4}
# The CPU groups, in the table's order: (key, label).
GROUPS: Final = (
    ("gateways", "gateway processes"),
    ("postgres", "PostgreSQL"),
    ("redis", "Redis"),
    ("nginx", "nginx"),
    ("echo", "echo agent"),
    ("load", "load generator"),
    ("bench", "this process"),
)
DEPLOYED: Final = ("postgres", "redis", "nginx", "echo")  # what a deployment runs besides the gateways


@dataclass
class Phase:
    """One measurement: the load generator's results, CPU seconds per group, tasks persisted."""

    processes: int
    load: dict[str, Any]
    cpu: dict[str, float]
    cpu_seconds_window: float
    tasks_persisted: int
    cores_each: list[float]  # of each gateway process
    commits: int  # PostgreSQL transactions committed in the run's database
    sessions: int  # PostgreSQL connections opened to it

    @property
    def rps(self) -> float:
        return float(self.load["rps"])

    def cores(self, group: str) -> float:
        return self.cpu[group] / self.cpu_seconds_window if self.cpu_seconds_window > 0 else math.nan

    def ms_per_request(self, *groups: str) -> float:
        requests = self.load["requests"]
        return sum(self.cpu[g] for g in groups) / requests * 1000 if requests else math.nan


def message_params(agent_id: str) -> dict[str, Any]:
    """SendMessage params: the echo skill, answered when the task is completed."""
    return {
        "message": {"messageId": uuid.uuid4().hex, "role": "ROLE_USER", "parts": [{"text": "hello"}]},
        "metadata": {"agentId": agent_id, "skillId": "echo"},
        "configuration": {"returnImmediately": False},
    }


async def database_counts(backing: Backing) -> tuple[int, int, int]:
    """The rows in ``tasks``, and the transactions committed and sessions opened in the run's database
    so far (PostgreSQL's statistics, which each backend reports within about a second)."""
    connection = await asyncpg.connect(backing.database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        tasks = await connection.fetchval("SELECT count(*) FROM tasks")
        stats = await connection.fetchrow(
            "SELECT xact_commit, sessions FROM pg_stat_database WHERE datname = current_database()"
        )
        assert stats is not None
        return int(tasks), int(stats["xact_commit"]), int(stats["sessions"])
    finally:
        await connection.close()


async def _line(stream: asyncio.StreamReader, timeout: float) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        line = await stream.readline()
    if not line:
        raise RuntimeError("the load generator exited early")
    found: dict[str, Any] = json.loads(line)
    return found


async def probe(url: str, token: str, agent_id: str, times: int) -> None:
    """A few calls through nginx, each answered with a completed task (else the run stops here)."""
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        for _ in range(times):
            body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": message_params(agent_id)}
            answer = await client.post("/a2a", json=body, headers={**bearer(token), "A2A-Version": "1.0"})
            if answer.status_code != 200 or COMPLETED not in answer.text:
                raise RuntimeError(
                    f"SendMessage through nginx: HTTP {answer.status_code}: {answer.text[:500]}"
                )


async def run_phase(
    args: argparse.Namespace,
    scratch: Path,
    backing: Backing,
    nginx: Server,
    gateways: list[Server],
    echo: Server,
    token: str,
    agent_id: str,
) -> Phase:
    """The load generator against ``nginx``: its results and the CPU of every group over its window."""
    spec = {
        "host": HOST,
        "port": nginx.port,
        "path": "/a2a",
        "headers": {**bearer(token), "A2A-Version": "1.0"},
        "params": message_params(agent_id),
        "expect": COMPLETED,
        "concurrency": args.concurrency,
        "warmup_seconds": args.warmup,
        "seconds": args.seconds,
        "max_requests": MAX_REQUESTS,
    }
    spec_path = scratch / f"load-{len(gateways)}.json"
    spec_path.write_text(json.dumps(spec))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.scale_out_load", str(spec_path),
        stdout=asyncio.subprocess.PIPE, env=base_env(), cwd=REPO_ROOT, start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    groups = {
        **{g.name: [g.proc.pid] for g in gateways},
        "nginx": [nginx.proc.pid],
        "echo": [echo.proc.pid],
        "load": [proc.pid],
    }
    try:
        await _line(proc.stdout, args.warmup + 60.0)  # {"phase": "measuring"}
        cpu_from, wall_from = cpu_by_group(groups), time.monotonic()
        before = await database_counts(backing)
        load = await _line(proc.stdout, args.seconds + 60.0)
        cpu_to, wall_to = cpu_by_group(groups), time.monotonic()
        after = await database_counts(backing)
        await asyncio.wait_for(proc.wait(), 30.0)
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    cpu = {name: cpu_to[name] - cpu_from[name] for name in cpu_to}
    cpu["gateways"] = sum(cpu[g.name] for g in gateways)
    each = [cpu[g.name] / (wall_to - wall_from) for g in gateways]
    return Phase(
        len(gateways),
        load,
        cpu,
        wall_to - wall_from,
        after[0] - before[0],
        each,
        after[1] - before[1],
        after[2] - before[2],
    )


async def measure(args: argparse.Namespace, scratch: Path, binary: str) -> list[Phase]:
    """Both phases on one database, one echo agent and one nginx address."""
    budget = 2 * (args.warmup + args.seconds) + 300.0
    fleet = Fleet(scratch, lifetime=budget)
    async with scratch_database(args.postgres_url, args.redis_url, scratch) as backing:
        try:
            proxy_port = free_port()
            public_url = f"http://{HOST}:{proxy_port}"
            env = gateway_env(
                backing,
                scratch / "gateway-data",
                public_url,
                A2A_GATEWAY_RATE_LIMITS=json.dumps({"tasks:create": "1000000/minute"}),
                A2A_GATEWAY_MAX_CONNECTIONS_PER_CLIENT="100000",
            )
            gateways = [start_gateway(fleet, "gateway-1", free_port(), env)]
            echo_port = free_port()
            echo_argv = ["agents_examples.echo", "--host", HOST, "--port", str(echo_port),
                         "--data-dir", str(scratch / "echo")]  # fmt: skip
            echo = fleet.start("echo", echo_argv, base_env(), echo_port)
            async with httpx.AsyncClient(base_url=gateways[0].url, timeout=30.0) as gw:
                await until_ok(gw, "/health/ready", 60)
                async with httpx.AsyncClient(base_url=echo.url) as card:
                    await until_ok(card, "/.well-known/agent-card.json", 60)
                token = await login(gw, OWNER)
                agent_id = await register_by_card(gw, token, echo.url)
            phases = []
            for size in (1, 2):
                if size > len(gateways):
                    gateways.append(start_gateway(fleet, f"gateway-{size}", free_port(), env))
                    async with httpx.AsyncClient(base_url=gateways[-1].url, timeout=30.0) as gw:
                        await until_ok(gw, "/health/ready", 60)
                nginx = start_nginx(fleet, f"nginx-{size}", binary, proxy_port, [g.port for g in gateways])
                fleet.wait_listening(nginx)
                await probe(public_url, token, agent_id, times=2 * size)
                phases.append(await run_phase(args, scratch, backing, nginx, gateways, echo, token, agent_id))
                fleet.check()
                nginx.stop()
                fleet.servers.remove(nginx)
            return phases
        except BaseException:
            for each in fleet.servers:
                print(f"--- {each.name} log ---\n{each.tail()}", file=sys.stderr)
            raise
        finally:
            fleet.close()


# ---------------------------------------------------------------------------------------- the table


def _num(value: float, digits: int = 1) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"


def render(phases: list[Phase], args: argparse.Namespace) -> str:
    """The two phases side by side, the ratio, and what the CPU profile predicts, as Markdown."""
    one, two = phases
    ratio = two.rps / one.rps if one.rps else math.nan
    verdict = "n/a" if math.isnan(ratio) else ("met" if ratio >= TARGET_RATIO else "MISSED")

    def row(measure: str, cell: Any, target: str = "") -> str:
        return f"| {measure} | {cell(one)} | {cell(two)} | {target} |"

    lines = [
        "| measure | 1 process behind nginx | 2 processes behind nginx | target |",
        "|---|---|---|---|",
        row(
            f"**SendMessage → completed task, requests/s** "
            f"({args.concurrency} connections, {args.seconds:g} s)",
            lambda p: f"**{_num(p.rps)}**",
            f"2 proc ≥ {TARGET_RATIO:g}x 1 proc",
        ),
        row(
            "latency p50 / p99 / max, ms",
            lambda p: f"{_num(p.load['p50_ms'])} / {_num(p.load['p99_ms'])} / {_num(p.load['max_ms'])}",
        ),
        row(
            "answers counted / errors", lambda p: f"{p.load['requests']:,} / {p.load['errors']:,}", "0 errors"
        ),
        row("tasks persisted in PostgreSQL over the window", lambda p: f"{p.tasks_persisted:,}"),
        row(
            "PostgreSQL transactions per request (pg_stat_database)",
            lambda p: _num(p.commits / p.load["requests"] if p.load["requests"] else math.nan),
        ),
        row(
            "PostgreSQL connections opened per second (pg_stat_database sessions)",
            lambda p: _num(p.sessions / p.cpu_seconds_window if p.cpu_seconds_window else math.nan),
        ),
    ]
    for key, label in GROUPS:
        lines.append(row(f"CPU, cores: {label}", lambda p, k=key: _num(p.cores(k), 2)))
    lines += [
        row("CPU, cores: each gateway process", lambda p: " + ".join(f"{c:.2f}" for c in p.cores_each)),
        row("CPU, cores: all of them (of 2)", lambda p: _num(sum(p.cores(k) for k, _ in GROUPS), 2)),
        row("CPU, cores: the whole machine busy (/proc/stat)", lambda p: _num(p.cores("machine"), 2)),
        row("gateway CPU per request, ms", lambda p: _num(p.ms_per_request("gateways"), 2)),
        row(
            "PostgreSQL + Redis + nginx + echo CPU per request, ms",
            lambda p: _num(p.ms_per_request(*DEPLOYED), 2),
        ),
        row("load generator CPU per request, ms", lambda p: _num(p.ms_per_request("load"), 2)),
        "",
        f"**2 processes / 1 process: {_num(ratio, 2)}x** (target ≥ {TARGET_RATIO:g}x: {verdict})",
        "",
        *predict(one, two),
    ]
    errors = [
        f"{p.processes} process(es): first error: {p.load['first_error']}" for p in phases if p.load["errors"]
    ]
    return "\n".join([*lines, *(["", *errors] if errors else [])])


def predict(one: Phase, two: Phase) -> list[str]:
    """What the CPU per request says about more cores: each gateway process can use one core, the
    rest of the machine is shared."""
    gateway = two.ms_per_request("gateways") / 1000
    deployed = two.ms_per_request(*DEPLOYED) / 1000
    load = two.ms_per_request("load") / 1000
    if any(math.isnan(v) or v <= 0 for v in (gateway, deployed + load)):
        return ["profile: not enough requests to say"]
    machine = 2 / (gateway + deployed + load)
    per_core = 1 / (gateway + deployed)
    return [
        f"- profile (2-process phase): the gateway takes {gateway * 1000:.2f} ms of CPU per request; "
        f"PostgreSQL, Redis, nginx and the echo agent {deployed * 1000:.2f} ms; the load generator "
        f"{load * 1000:.2f} ms. The processes that are not gateways took "
        f"{sum(one.cores(k) for k in (*DEPLOYED, 'load', 'bench')):.2f} of a core with 1 process and "
        f"{sum(two.cores(k) for k in (*DEPLOYED, 'load', 'bench')):.2f} with 2.",
        f"- one process can use one core: at most {1 / gateway:,.0f} requests/s; this 2-core machine, "
        f"everything on it, at most 2 / {(gateway + deployed + load) * 1000:.2f} ms = {machine:,.0f} "
        f"requests/s (measured {two.rps:,.0f}).",
        f"- per added core, with one more gateway process and the load generator elsewhere: about "
        f"+{per_core:,.0f} requests/s (1 / {(gateway + deployed) * 1000:.2f} ms), as long as PostgreSQL, "
        f"Redis, nginx and the agent scale with it (they take {deployed / (gateway + deployed):.0%} of "
        "the CPU of a request).",
    ]


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not 0.5 <= args.seconds <= 120 or not 0 <= args.warmup <= 30:
        parser.error("--seconds is 0.5..120 and --warmup 0..30")
    if not 1 <= args.concurrency <= 256:
        parser.error("--concurrency is 1..256")
    if not args.postgres_url or not args.redis_url:
        parser.error(
            "needs PostgreSQL and Redis: --postgres-url/--redis-url or "
            "A2A_GATEWAY_TEST_POSTGRES_URL/A2A_GATEWAY_TEST_REDIS_URL"
        )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table (then the fan-out's, with ``--with-fanout``)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="measured, per phase (default: %(default)s)"
    )
    parser.add_argument(
        "--warmup", type=float, default=3.0, help="not counted, per phase (default: %(default)s)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=32, help="connections, one request each (default: %(default)s)"
    )
    parser.add_argument("--postgres-url", default=os.environ.get("A2A_GATEWAY_TEST_POSTGRES_URL"))
    parser.add_argument("--redis-url", default=os.environ.get("A2A_GATEWAY_TEST_REDIS_URL"))
    parser.add_argument(
        "--with-fanout", action="store_true", help="then run benchmarks.fanout (10,000 subscribers; long)"
    )
    parser.add_argument("--quick", action="store_true", help="a tiny run: 4 connections, 1 + 2 s per phase")
    args = parser.parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    _check(parser, args)
    binary = nginx_binary()
    if binary is None:
        parser.error("nginx is not installed (not on PATH nor in /usr/sbin); apt-get install nginx-light")
    with (
        tempfile.TemporaryDirectory(prefix=SCRATCH_PREFIX) as scratch_dir,
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
    ):
        phases = runner.run(measure(args, Path(scratch_dir), binary))
    print(render(phases, args))
    if args.with_fanout:
        from benchmarks import fanout

        print()
        return fanout.main(["--quick"] if args.quick else [])
    return 0


if __name__ == "__main__":
    sys.exit(main())
