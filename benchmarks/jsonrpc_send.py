"""Benchmark A2A 1.0 SendMessage: our echo agent vs the a2a-sdk reference vs a bare Starlette ceiling.

Run: python -m benchmarks.jsonrpc_send [--quick] [--duration S] [--json PATH]

Each server runs as its own subprocess on a free loopback port, one after another, so the load
generator (this process, on uvloop) never shares an interpreter with the server it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvloop

from benchmarks.load import COMPLETED, LoadResult, Target, probe, run_load

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
TARGET_CONCURRENCY = 64
TARGET_VS_REFERENCE = 10.0
TARGET_VS_CEILING = 0.40
TARGET_P99_MS = 25.0


@dataclass(frozen=True)
class ServerSpec:
    """How to start one server under test and how to recognise its successful replies."""

    name: str
    description: str
    argv: Callable[[int, Path], list[str]]
    expect: bytes | None = COMPLETED
    sqlite_file: str | None = None  # relative to the scratch dir, for the persisted-task count


def _ours(port: int, scratch: Path) -> list[str]:
    return [sys.executable, "-m", "agents_examples.echo", "--host", HOST, "--port", str(port),
            "--data-dir", str(scratch), "--log-level", "warning"]  # fmt: skip


def _reference(store: str) -> Callable[[int, Path], list[str]]:
    def argv(port: int, scratch: Path) -> list[str]:
        return [sys.executable, "-m", "benchmarks.reference_echo", "--host", HOST, "--port", str(port),
                "--store", store, "--sqlite-path", str(scratch / "reference.db")]  # fmt: skip

    return argv


def _ceiling(port: int, scratch: Path) -> list[str]:
    return [sys.executable, "-m", "benchmarks.ceiling", "--host", HOST, "--port", str(port)]


def server_specs() -> dict[str, ServerSpec]:
    """The servers, keyed by the name used on the command line and in the table."""
    return {
        "ours": ServerSpec(
            "ours",
            "python -m agents_examples.echo: create_agent_app + echo skill, every task persisted in SQLite",
            _ours,
            sqlite_file="gateway.db",
        ),
        "reference": ServerSpec(
            "reference",
            "a2a-sdk 1.3 DefaultRequestHandler + JSON-RPC routes, InMemoryTaskStore (nothing persisted)",
            _reference("memory"),
        ),
        "reference-sqlite": ServerSpec(
            "reference-sqlite",
            "the same a2a-sdk server with its DatabaseTaskStore on an aiosqlite file "
            "(SDK defaults: rollback journal, synchronous=FULL)",
            _reference("sqlite"),
            sqlite_file="reference.db",
        ),
        "ceiling": ServerSpec(
            "ceiling",
            "bare Starlette route returning a fixed completed-task reply, request body not parsed",
            _ceiling,
            expect=None,
        ),
    }


@dataclass(frozen=True)
class RunningServer:
    """A started server: where to reach it, and its process group for CPU accounting."""

    target: Target
    pgid: int

    def cpu_seconds(self) -> float | None:
        """User+system CPU seconds used so far by every process in the server's group (Linux only)."""
        total = 0
        try:
            for stat in Path("/proc").glob("[0-9]*/stat"):
                with contextlib.suppress(OSError):
                    # Fields after the parenthesised command name: state ppid pgrp ... utime stime.
                    fields = stat.read_text().rsplit(")", 1)[1].split()
                    if int(fields[2]) == self.pgid:
                        total += int(fields[11]) + int(fields[12])
        except OSError:
            return None
        return total / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """Ask the kernel for an unused loopback port (released just before the server binds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the server's whole process group, escalating to SIGKILL if it lingers."""
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)


def _wait_listening(proc: subprocess.Popen[bytes], port: int, deadline: float, log_path: Path) -> None:
    """Poll the port until the server accepts connections, failing fast if the process died."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"server exited with {proc.returncode} before listening:\n{tail}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.2):
            return
        time.sleep(0.1)
    raise RuntimeError(f"server did not listen on {HOST}:{port} in time")


@contextlib.contextmanager
def running_server(
    spec: ServerSpec, lifetime: float, startup_timeout: float = 30.0
) -> Iterator[RunningServer]:
    """Start the server subprocess in a scratch dir, yield it once listening, always kill it on exit."""
    with tempfile.TemporaryDirectory(prefix=f"a2a-bench-{spec.name}-") as scratch_dir:
        scratch = Path(scratch_dir)
        port = free_port()
        argv = spec.argv(port, scratch)
        # coreutils timeout bounds the server's life even if this process is SIGKILLed and never
        # reaches the cleanup below.
        if shutil.which("timeout"):
            argv = ["timeout", "--kill-after=5", f"{math.ceil(lifetime)}", *argv]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
            # Every load connection comes from loopback: lift the per-client cap (default 256) for the run.
            "A2A_GATEWAY_MAX_CONNECTIONS_PER_CLIENT": "100000",
        }
        log_path = scratch / "server.log"
        with log_path.open("wb") as log:
            # A new session makes the server a process group we can kill as a whole.
            proc = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
            try:
                _wait_listening(proc, port, time.monotonic() + startup_timeout, log_path)
                yield RunningServer(Target(HOST, port, "/a2a", spec.expect), proc.pid)
            finally:
                _stop_group(proc)
        if spec.sqlite_file:
            print(f"  {spec.name}: {_count_tasks(scratch / spec.sqlite_file)} tasks persisted in SQLite")


def _count_tasks(db: Path) -> str:
    """Count rows in the tasks table, proving the requests really were persisted."""
    try:
        with contextlib.closing(sqlite3.connect(db)) as conn:
            return str(conn.execute("SELECT count(*) FROM tasks").fetchone()[0])
    except sqlite3.Error as exc:
        return f"unknown ({exc})"


async def measure(
    spec: ServerSpec,
    server: RunningServer,
    levels: list[int],
    duration: float,
    warmup: float,
    max_requests: int,
) -> list[LoadResult]:
    """Check one call succeeds like the curl would, then run every concurrency level."""
    target = server.target
    status, body = await probe(target)
    if status != 200 or (spec.expect is not None and spec.expect not in body):
        raise RuntimeError(f"{spec.name}: probe SendMessage failed: {status} {body[:300]!r}")
    print(f"  {spec.name}: probe OK ({status}, {len(body)} bytes)")
    results = []
    for level in levels:
        result = await run_load(target, level, duration, warmup, max_requests, server_cpu=server.cpu_seconds)
        summary = result.summary()
        print(f"  {spec.name} c={level}: {summary['rps']:.0f} req/s, p50 {summary['p50_ms']:.2f} ms, "
              f"p99 {summary['p99_ms']:.2f} ms, {summary['errors']} errors, "
              f"server CPU {_fmt(summary['server_cpu_pct'], 0)}% of a core")  # fmt: skip
        results.append(result)
    return results


def machine_info() -> dict[str, Any]:
    """CPU count, CPU model and Python version, for the record."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _fmt(value: float | None, digits: int) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> float:
    if not a or not b or not b["rps"]:
        return math.nan
    return float(a["rps"]) / float(b["rps"])


def render_table(summaries: dict[str, dict[int, dict[str, Any]]], levels: list[int]) -> str:
    """One markdown table, servers side by side, then ours relative to each other server."""
    names = list(summaries)
    others = [n for n in names if n != "ours"] if "ours" in summaries else []
    header = ["concurrency"]
    for name in names:
        header += [f"{name} rps", f"{name} p50 ms", f"{name} p99 ms", f"{name} err"]
    header += [f"ours/{n}" for n in others]
    rows = [header, ["---:"] * len(header)]
    for level in levels:
        row = [str(level)]
        for name in names:
            s = summaries[name][level]
            row += [f"{s['rps']:.0f}", _fmt(s["p50_ms"], 2), _fmt(s["p99_ms"], 2), str(s["errors"])]
        ours = summaries["ours"].get(level) if others else None
        for name in others:
            ratio = _ratio(ours, summaries[name].get(level))
            # Against the ceiling a share reads better than a multiple.
            row.append(_fmt(100 * ratio, 0) + "%" if name == "ceiling" else _fmt(ratio, 1) + "x")
        rows.append(row)
    return "\n".join("| " + " | ".join(cells) + " |" for cells in rows)


def render_cpu_table(summaries: dict[str, dict[int, dict[str, Any]]], levels: list[int]) -> str:
    """Server CPU during each window: near 100% means CPU-bound, well below means it was waiting."""
    names = list(summaries)
    header = ["concurrency"]
    for name in names:
        header += [f"{name} CPU %", f"{name} CPU us/req"]
    rows = [header, ["---:"] * len(header)]
    for level in levels:
        row = [str(level)]
        for name in names:
            s = summaries[name].get(level) or {}
            row += [_fmt(s.get("server_cpu_pct"), 0), _fmt(s.get("server_cpu_us_per_req"), 0)]
        rows.append(row)
    return "\n".join("| " + " | ".join(cells) + " |" for cells in rows)


def evaluate_targets(summaries: dict[str, dict[int, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Check the goals at concurrency 64; a goal whose inputs were not measured is n/a."""
    ours = summaries.get("ours", {}).get(TARGET_CONCURRENCY)
    ref = summaries.get("reference", {}).get(TARGET_CONCURRENCY)
    ceil = summaries.get("ceiling", {}).get(TARGET_CONCURRENCY)
    vs_ref, vs_ceil = _ratio(ours, ref), _ratio(ours, ceil)
    p99 = ours["p99_ms"] if ours else math.nan
    errors = float(ours["errors"]) if ours else math.nan
    checks = [
        (f"ours >= {TARGET_VS_REFERENCE:.0f}x reference rps", vs_ref, vs_ref >= TARGET_VS_REFERENCE, "x"),
        (f"ours >= {TARGET_VS_CEILING:.0%} of ceiling rps", vs_ceil * 100, vs_ceil >= TARGET_VS_CEILING, "%"),
        (f"ours p99 < {TARGET_P99_MS:.0f} ms", p99, p99 < TARGET_P99_MS, " ms"),
        ("ours errors == 0", errors, errors == 0, ""),
    ]
    return [
        {
            "goal": goal,
            "value": value,
            "status": "n/a" if math.isnan(value) else ("PASS" if ok else "FAIL"),
            "unit": unit,
        }
        for goal, value, ok, unit in checks
    ]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    """Parse arguments, benchmark each server in turn, print the table and targets."""
    parser = argparse.ArgumentParser(description="Benchmark A2A 1.0 SendMessage throughput and latency.")
    parser.add_argument("--duration", type=float, default=10.0, help="measurement seconds per level")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per level")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 s per level, 0.5 s warm-up")
    parser.add_argument("--concurrency", default="1,8,64", help="comma-separated levels")
    parser.add_argument("--servers", default=",".join(server_specs()), help="subset/order of servers")
    parser.add_argument("--max-requests", type=int, default=2_000_000, help="cap per level")
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.warmup = 2.0, 0.5
    levels = [int(c) for c in args.concurrency.split(",")]
    specs = server_specs()
    names = [n.strip() for n in args.servers.split(",")]
    unknown = set(names) - set(specs)
    if unknown:
        parser.error(f"unknown servers: {sorted(unknown)}")

    # SIGTERM must unwind like Ctrl-C so the finally blocks kill the servers.
    signal.signal(signal.SIGTERM, _interrupt)
    machine = machine_info()
    print(f"machine: {machine['nproc']} CPUs, {machine['cpu_model']}, Python {machine['python']}")
    print(f"levels {levels}, {args.warmup} s warm-up + {args.duration} s measured each\n")
    lifetime = 60 + len(levels) * (args.warmup + args.duration + 10)
    summaries: dict[str, dict[int, dict[str, Any]]] = {}
    for name in names:
        spec = specs[name]
        print(f"{name}: {spec.description}")
        with (
            running_server(spec, lifetime) as server,
            asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
        ):
            results = runner.run(measure(spec, server, levels, args.duration, args.warmup, args.max_requests))
        summaries[name] = {r.concurrency: r.summary() for r in results}

    table = render_table(summaries, levels)
    targets = evaluate_targets(summaries)
    print("\n" + table + "\n")
    print("Server CPU (100% = one core; the servers are single-process):\n")
    print(render_cpu_table(summaries, levels) + "\n")
    verdicts = [
        f"{t['goal']}: {_fmt(t['value'], 1)}{t['unit']} {t['status']}"
        if t["status"] != "n/a"
        else f"{t['goal']}: n/a"
        for t in targets
    ]
    print(f"Targets at concurrency {TARGET_CONCURRENCY}: " + "; ".join(verdicts))
    print("\nNotes:")
    for name in names:
        print(f"- {name}: {specs[name].description}")
    print("- the load generator (this process, one core at most) shares the machine's cores with the server")
    if args.json:
        args.json.write_text(json.dumps({
            "machine": machine,
            "settings": {"duration_s": args.duration, "warmup_s": args.warmup, "levels": levels,
         "max_requests": args.max_requests},
            "servers": {n: specs[n].description for n in names},
            "results": summaries,
            "targets": targets,
        }, indent=2, allow_nan=True))  # fmt: skip
        print(f"raw numbers written to {args.json}")
    missed = any(t["status"] == "FAIL" for t in targets)
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        # The context managers have already stopped the servers by the time we get here.
        print("\ninterrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
