"""SSE fan-out in one gateway process: S live subscribers over T tasks at one event a second each,
delivery p50/p99, lost deliveries and memory per subscriber, against a naive sse-starlette app.

Run: python -m benchmarks.fanout [--subscribers 10000] [--tasks 100] [--seconds 20]
     [--attach-seconds 30] [--concurrency 128] [--join-live] [--credential token|key]
     [--stream-queue-size N] [--profile DIR] [--quick]

**Ours**: the gateway (``python -m a2a_gateway serve``) on SQLite in a scratch data directory, its rate
limits off, its per-client-address connection cap raised to 100,000 for the run
(``A2A_GATEWAY_MAX_CONNECTIONS_PER_CLIENT``; 256 by default) and its open-file limit lifted to the hard
limit (inherited from this process), with the ticker agent (``benchmarks.fanout_agent``, its own
process) registered by its operator by card URL. T ``ticker`` tasks are started with a non-blocking
``SendMessage`` (``returnImmediately``); each appends one ``{"n", "t"}`` chunk a second to its artifact,
relayed by the gateway from the agent's stream. The subscribers follow them with A2A 1.0
``SubscribeToTask`` on ``/a2a``, S/T per task, with the owner's access token (``--credential key``: a
``nex_`` key, which the gateway looks up in its database on every request). **The reference** is
``benchmarks.fanout_reference`` (Starlette + sse-starlette, one ``asyncio.Queue`` per subscriber, one
publisher task per topic at the same pace), served by uvicorn in its own process, under the same load
in the same run.

**The load** is ``benchmarks.fanout_load`` in its own process: raw asyncio streams over HTTP/1.1, one
connection per subscriber, at most ``--concurrency`` opening at once, all within ``--attach-seconds``.
By default the tasks wait ``--attach-seconds`` before their first tick and then tick ``--seconds``
times, so the subscribers attach to idle tasks and every one of them follows every tick (the idle
memory, then a burst to all of them each second). With ``--join-live`` the ticks start at once and
the subscribers attach while they flow (``--attach-seconds + --seconds`` ticks). Delivery time is the
load process's wall clock at receipt minus the tick's ``t`` (one machine, one clock), over the ticks
made once every subscriber was attached; for the gateway it includes the relay hop from the agent.
A tick is expected by a subscriber if it comes after its first event (the task's snapshot, which
holds the ticks so far; the reference sends its last tick number and times); every stream's end is
classified (``benchmarks.fanout_load``), and the ticks a snapshot holds that were made after the
subscriber sent its request are counted: a client that expects every event from the moment it asked
would count those as lost. **Memory per subscriber** is the server's RSS (``/proc/PID/status`` VmRSS)
with every subscriber attached minus its RSS just before the first one connects, over the subscribers
attached. **CPU per delivery** is the server's CPU seconds (all its threads) from then to the end
divided by the deliveries measured. The gateway's log (warnings up) is searched for ``slow subscriber
dropped`` (``tasks/broker.py``); ``--stream-queue-size`` sets its per-subscriber buffer for the run.
``--profile DIR`` records each server with py-spy (collapsed stacks) while attaching and while ticking
(more py-spy options, such as ``--native``, in ``$PY_SPY_ARGS``).

Targets (issue 15): delivery p99 < 250 ms and < 20 KB per subscriber at 10,000 subscribers over 100 tasks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
import uuid
from asyncio.subprocess import Process
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import uvloop

from benchmarks.network_procs import HOST, LOOPBACK_ALLOWLIST, Fleet, Server, base_env, free_port
from benchmarks.network_setup import bearer, login, register_by_card, until_ok, user_key

OURS: Final = "gateway"
REFERENCE: Final = "reference"
FLOOR: Final = "floor"
TARGET_P99_MS: Final = 250.0
TARGET_KB: Final = 20.0
PERIOD: Final = 1.0
DROP_WARNING: Final = "slow subscriber dropped"
OWNER = "fanout@example.com"
QUICK: Final = {"subscribers": 6, "tasks": 2, "seconds": 3.0, "attach_seconds": 3.0}


@dataclass
class Order:
    """What each task (topic) is asked for: ``ticks`` ticks a ``PERIOD`` apart, the first one about
    ``delay`` seconds after the run starts; ``spread``: task i of n starts i/n of a period later, so
    the ticks of all tasks are spread evenly over each second (else they all come at once)."""

    ticks: int
    delay: float
    spread: bool = True
    zero: float = 0.0  # the wall clock the delay counts from (set as the tasks are started)

    def delay_for(self, index: int, tasks: int) -> float:
        """The delay to ask task ``index`` of ``tasks`` for, now."""
        if not self.zero:
            self.zero = time.time()
        offset = index * PERIOD / tasks if self.spread else 0.0
        return max(0.0, self.zero + self.delay + offset - time.time())


END_KINDS: Final = ("complete", "error_frame", "clean_end_no_terminal", "eof", "refused", "open")


def raise_open_files() -> int:
    """Lift this process's open-file limit (its children inherit it) to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def server_pid(server: Server) -> int:
    """The pid of the Python process serving (the child of coreutils ``timeout``, when there is one)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == server.proc.pid and int(fields[2]) == server.proc.pid:
                return int(stat.parent.name)
    return server.proc.pid


def rss_bytes(pid: int) -> int:
    """A process's resident set size (VmRSS), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _http_request(method: str, host: str, path: str, headers: dict[str, str], body: bytes = b"") -> str:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Accept: text/event-stream"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode().decode("latin-1") + body.decode("latin-1")


# ---------------------------------------------------------------------------------------- the servers


async def start_gateway(
    fleet: Fleet, scratch: Path, order: Order, args: argparse.Namespace
) -> tuple[Server, list[str], str]:
    """The gateway and the ticker agent, ``topics`` ticker tasks started: (server, requests, kind)."""
    gw_port, agent_port = free_port(), free_port()
    gw_url, agent_url = f"http://{HOST}:{gw_port}", f"http://{HOST}:{agent_port}"
    env = base_env(
        A2A_GATEWAY_DATA_DIR=str(scratch / "gateway"),
        A2A_GATEWAY_PUBLIC_URL=gw_url,
        A2A_GATEWAY_OUTBOUND_ALLOWLIST=LOOPBACK_ALLOWLIST,
        A2A_GATEWAY_RATE_LIMITS="{}",
        A2A_GATEWAY_LOG_LEVEL="WARNING",
        A2A_GATEWAY_MAX_CONNECTIONS_PER_CLIENT="100000",
        **({"A2A_GATEWAY_STREAM_QUEUE_SIZE": str(args.stream_queue_size)} if args.stream_queue_size else {}),
    )
    gateway = fleet.start(
        OURS, ["a2a_gateway", "serve", "--host", HOST, "--port", str(gw_port)], env, gw_port
    )
    fleet.start("agent", ["benchmarks.fanout_agent", "--port", str(agent_port), "--data-dir",
                          str(scratch / "agent")], base_env(), agent_port)  # fmt: skip
    async with httpx.AsyncClient(base_url=gw_url, timeout=30.0) as gw:
        await until_ok(gw, "/health", 60)
        async with httpx.AsyncClient(base_url=agent_url) as probe:
            await until_ok(probe, "/.well-known/agent-card.json", 60)
        token = await login(gw, OWNER)
        key = await user_key(gw, token)
        credential = key if args.credential == "key" else token
        agent_id = await register_by_card(gw, token, agent_url)
        headers = {**bearer(key), "A2A-Version": "1.0"}
        task_ids = []
        for index in range(args.tasks):
            delay = order.delay_for(index, args.tasks)
            params = {
                "message": {
                    "messageId": uuid.uuid4().hex,
                    "role": "ROLE_USER",
                    "parts": [{"text": f"{order.ticks} {PERIOD:g} {delay:.3f}"}],
                },
                "configuration": {"returnImmediately": True},
                "metadata": {"agentId": agent_id, "skillId": "ticker"},
            }
            body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": params}
            answer = (await gw.post("/a2a", json=body, headers=headers)).json()
            if "result" not in answer:
                raise RuntimeError(f"SendMessage failed: {answer}")
            task_ids.append(answer["result"]["task"]["id"])
    requests = []
    for task_id in task_ids:
        rpc = {"jsonrpc": "2.0", "id": 1, "method": "SubscribeToTask", "params": {"id": task_id}}
        requests.append(
            _http_request(
                "POST",
                f"{HOST}:{gw_port}",
                "/a2a",
                {**bearer(credential), "A2A-Version": "1.0", "Content-Type": "application/json"},
                json.dumps(rpc).encode(),
            )
        )
    return gateway, requests, "gateway"


async def start_reference(
    fleet: Fleet, order: Order, topics: int, target: str = REFERENCE
) -> tuple[Server, list[str], str]:
    """The reference app (or the floor), ``topics`` topics started: (server, requests, kind)."""
    port = free_port()
    module = "benchmarks.fanout_reference" if target == REFERENCE else "benchmarks.fanout_floor"
    server = fleet.start(target, [module, "--port", str(port)], base_env(), port)
    url = f"http://{HOST}:{port}"
    ids = []
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        await until_ok(client, "/health", 60)
        for index in range(topics):
            delay = order.delay_for(index, topics)
            answer = await client.post(
                "/topics", json={"count": order.ticks, "period": PERIOD, "delay": delay}
            )
            ids.append(answer.json()["id"])
    requests = [_http_request("GET", f"{HOST}:{port}", f"/topics/{i}/stream", {}) for i in ids]
    return server, requests, "reference"


# ---------------------------------------------------------------------------------------- one run


async def record(directory: Path | None, pid: int, name: str, seconds: float) -> Process | None:
    """With a profile directory, py-spy recording ``pid`` into ``DIR/name.txt`` (collapsed stacks)."""
    if directory is None:
        return None
    py_spy = os.environ.get("PY_SPY") or shutil.which("py-spy")
    if py_spy is None:
        raise RuntimeError("--profile needs py-spy on PATH or in $PY_SPY")
    directory.mkdir(parents=True, exist_ok=True)
    argv = [py_spy, "record", "--pid", str(pid), "--rate", "100", "--format", "raw", "--nonblocking",
            *os.environ.get("PY_SPY_ARGS", "").split(),
            "--duration", str(math.ceil(seconds)), "--output", str(directory / f"{name}.txt")]  # fmt: skip
    return await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )


async def stop(recording: Process | None) -> None:
    """Stop a py-spy recording (it writes its file on SIGINT)."""
    if recording is None or recording.returncode is not None:
        return
    recording.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(recording.wait(), 30.0)
    except TimeoutError:
        recording.kill()
        await recording.wait()


async def _line(stream: asyncio.StreamReader, timeout: float) -> str:
    async with asyncio.timeout(timeout):
        line = await stream.readline()
    if not line:
        raise RuntimeError("the load generator exited early")
    return line.decode().strip()


async def load(server: Server, requests: list[str], kind: str, args: argparse.Namespace, scratch: Path,
               order: Order) -> dict[str, Any]:  # fmt: skip
    """Run the load process against ``server``: its result, with the server's RSS and CPU."""
    ticks = order.ticks
    deadline = order.delay + (ticks + 1) * PERIOD + 20.0
    spec = {
        "host": HOST,
        "port": server.port,
        "kind": kind,
        "requests": requests,
        "subscribers": args.subscribers,
        "count": ticks,
        "concurrency": args.concurrency,
        "attach_seconds": args.attach_seconds,
        "deadline_seconds": deadline,
    }
    spec_path = scratch / f"{server.name}-spec.json"
    spec_path.write_text(json.dumps(spec))
    pid = server_pid(server)
    rss_before = rss_bytes(pid)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.fanout_load", str(spec_path),
        stdout=asyncio.subprocess.PIPE, env=base_env(), cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    assert proc.stdout is not None
    profile = await record(args.profile, pid, f"{server.name}-attach", deadline)
    try:
        attached_line = await _line(proc.stdout, args.attach_seconds + 30.0)
        rss_with = rss_bytes(pid)
        await stop(profile)
        profile = await record(args.profile, pid, f"{server.name}-ticks", deadline)
        cpu_from, wall_from = server.cpu_seconds(), time.monotonic()
        result: dict[str, Any] = json.loads(await _line(proc.stdout, deadline + 30.0))
        result["server_cpu_seconds"] = server.cpu_seconds() - cpu_from
        result["steady_seconds"] = time.monotonic() - wall_from
        await asyncio.wait_for(proc.wait(), 30.0)
    finally:
        await stop(profile)
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    result["attached_line"] = attached_line
    result["rss_before"] = rss_before
    result["rss_with"] = rss_with
    return result


async def measure(target: str, args: argparse.Namespace, scratch: Path, order: Order) -> dict[str, Any]:
    """One target under the load, its processes stopped at the end."""
    fleet = Fleet(scratch, lifetime=order.delay + order.ticks * PERIOD + 240.0)
    try:
        if target == OURS:
            server, requests, kind = await start_gateway(fleet, scratch, order, args)
        else:
            server, requests, kind = await start_reference(fleet, order, args.tasks, target)
        result = await load(server, requests, kind, args, scratch, order)
        fleet.check()
        result["drop_warnings"] = server.tail(size=1 << 30).count(DROP_WARNING)
        result["log_lines"] = len(server.tail(size=1 << 30).splitlines())
        return result
    except BaseException:
        for each in fleet.servers:
            print(f"--- {each.name} log ---\n{each.tail()}", file=sys.stderr)
        raise
    finally:
        fleet.close()


# ---------------------------------------------------------------------------------------- the table


def _kb_per(result: dict[str, Any]) -> float:
    attached = result["attached"]
    return (result["rss_with"] - result["rss_before"]) / 1024 / attached if attached else math.nan


def _triple(stats: dict[str, float]) -> str:
    return f"{stats['p50']:.0f} / {stats['p99']:.0f} / {stats['max']:.0f}" if stats else "n/a"


def _counts(counts: dict[str, int], kinds: tuple[str, ...]) -> str:
    return " / ".join(f"{counts.get(kind, 0):,}" for kind in kinds)


def _states(result: dict[str, Any]) -> str:
    states = result["terminal_states"]
    if not states:
        return "none"
    return ", ".join(f"{k.removeprefix('TASK_STATE_').lower()} {v:,}" for k, v in sorted(states.items()))


def _lost(result: dict[str, Any]) -> str:
    by_end = result["lost_by_end"]
    if not by_end:
        return "0"
    streams = result["streams_with_loss_by_end"]
    return "; ".join(f"{kind}: {by_end[kind]:,} in {streams[kind]:,} streams" for kind in sorted(by_end))


def _per_delivery_us(result: dict[str, Any], key: str) -> float:
    deliveries = result["latency_ms"].get("n", 0)
    return result[key] / deliveries * 1e6 if deliveries else math.nan


def _verdict(ok: bool, value: float) -> str:
    return "n/a" if math.isnan(value) else ("met" if ok else "MISSED")


def render(results: dict[str, dict[str, Any]], args: argparse.Namespace, order: Order) -> str:
    """The runs side by side (ours, the reference, the floor when run), as Markdown."""
    ours = results[OURS]
    runs = [results[name] for name in (OURS, REFERENCE, FLOOR) if name in results]
    p99 = ours["latency_ms"].get("p99", math.nan)
    kb = _kb_per(ours)
    how = "while the ticks flow" if args.join_live else f"to idle tasks (ticks start after {order.delay:g} s)"
    how += ", all tasks ticking at once" if args.burst else ", the tasks' ticks spread over each second"
    tick_seconds = order.ticks * PERIOD

    def row(measure: str, cells: list[str], target: str = "") -> str:
        return f"| {measure} | {' | '.join(cells)} | {target} |"

    def each(measure: str, cell: Any, target: str = "", *, bold: bool = False) -> str:
        cells = [cell(r) for r in runs]
        if bold:
            cells[0] = f"**{cells[0]}**"
        return row(measure, cells, target)

    def others(mine: str, theirs: str, floor: str) -> list[str]:
        return [mine, theirs, floor][: len(runs)]

    notes = [f"{name}: first refusal: {r['refusal']!r}" for name, r in results.items() if r["refusal"]]
    notes += [
        f"{name}: first error frame: {r['error_sample']}" for name, r in results.items() if r["error_sample"]
    ]
    header = others(
        "ours: gateway, SubscribeToTask",
        "reference: sse-starlette, a queue per subscriber",
        "floor: one frame per tick written to each transport",
    )
    return "\n".join(
        [
            f"| measure | {' | '.join(header)} | target |",
            "|---|" + "---|" * len(runs) + "---|",
            each(
                f"subscribers attached / opened ({args.subscribers:,} asked, over {args.tasks} tasks, {how})",
                lambda r: f"{r['attached']:,} / {r['opened']:,}",
            ),
            each("time to attach them all, s", lambda r: f"{r['attach_seconds']:.1f}"),
            each("subscribe → first event, p50 / p99 / max ms", lambda r: _triple(r["attach_wait_ms"])),
            each(
                "delivery p50 / p99 / max, ms, once all attached ("
                + " / ".join(f"{r['latency_ms'].get('n', 0):,}" for r in runs)
                + " deliveries)",
                lambda r: _triple(r["latency_ms"]),
                f"p99 < {TARGET_P99_MS:.0f}: {_verdict(p99 < TARGET_P99_MS, p99)}",
                bold=True,
            ),
            each(
                f"deliveries seen / expected ({order.ticks} ticks a task, 1/s)",
                lambda r: f"{r['seen']:,} / {r['expected']:,}",
                "all",
            ),
            each("lost deliveries, by how the stream ended", _lost, "0"),
            each(f"streams: {' / '.join(END_KINDS)}", lambda r: _counts(r["ends"], END_KINDS)),
            each(
                "refused answers, by HTTP status",
                lambda r: ", ".join(f"{k}: {v:,}" for k, v in sorted(r["http"].items())) or "none",
            ),
            each("terminal events seen", _states),
            each("duplicates", lambda r: f"{r['duplicates']:,}", "0"),
            each(
                "ticks made while a subscribe waited (in its snapshot, not sent as events)",
                lambda r: f"{r['folded']:,}",
            ),
            each(
                "server RSS before / with the subscribers, MB",
                lambda r: f"{r['rss_before'] / 2**20:.0f} / {r['rss_with'] / 2**20:.0f}",
            ),
            each(
                "RSS per subscriber, KB",
                lambda r: f"{_kb_per(r):.1f}",
                f"< {TARGET_KB:.0f}: {_verdict(kb < TARGET_KB, kb)}",
                bold=True,
            ),
            each(
                "server CPU per delivery, µs (CPU after all attached / deliveries)",
                lambda r: f"{_per_delivery_us(r, 'server_cpu_seconds'):.0f}",
            ),
            each(
                f"server / load generator CPU cores over the {tick_seconds:g} s of ticks",
                lambda r: (
                    f"{r['server_cpu_seconds'] / tick_seconds:.2f} / "
                    f"{r['steady_cpu_seconds'] / tick_seconds:.2f}"
                ),
            ),
            row(
                f"`{DROP_WARNING}` warnings in the server log",
                others(f"{ours['drop_warnings']:,}", "n/a", "n/a"),
            ),
            row("subscribers' credential", others(f"{args.credential} (Bearer)", "none", "none")),
            row(
                "events buffered per subscriber",
                others(
                    f"{args.stream_queue_size or 'default'} (A2A_GATEWAY_STREAM_QUEUE_SIZE)",
                    "unbounded",
                    "256 KiB unsent, then dropped",
                ),
            ),
            *(["", *notes] if notes else []),
        ]
    )


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not 1 <= args.tasks <= 1000 or not args.tasks <= args.subscribers <= 20_000:
        parser.error("--tasks is 1..1,000 and --subscribers from --tasks to 20,000")
    if not 1 <= args.seconds <= 300 or not 1 <= args.attach_seconds <= 300:
        parser.error("--seconds and --attach-seconds are 1..300")
    if not 1 <= args.concurrency <= 1024 or not 0 <= args.stream_queue_size <= 100_000:
        parser.error("--concurrency is 1..1,024 and --stream-queue-size 0..100,000")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=10_000, help="subscribers (default: %(default)s)")
    parser.add_argument("--tasks", type=int, default=100, help="tasks they follow (default: %(default)s)")
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="steady state at least, s (default: %(default)s)"
    )
    parser.add_argument(
        "--attach-seconds", type=float, default=30.0, help="budget to attach all, s (default: %(default)s)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=128, help="connections opening at once (default: %(default)s)"
    )
    parser.add_argument(
        "--join-live", action="store_true", help="the ticks start at once; subscribers attach while they flow"
    )
    parser.add_argument(
        "--burst",
        action="store_true",
        help="every task ticks at the same moment of the second (default: spread evenly over it)",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="a third column: benchmarks.fanout_floor, a shared frame written to each transport",
    )
    parser.add_argument(
        "--stream-queue-size",
        type=int,
        default=0,
        help="the gateway's events buffered per subscriber (A2A_GATEWAY_STREAM_QUEUE_SIZE), 0: its default",
    )
    parser.add_argument(
        "--credential",
        choices=("token", "key"),
        default="token",
        help="the subscribers' credential: the owner's access token or a nex_ key (default: %(default)s)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="record each server with py-spy (PATH or $PY_SPY) while attaching and while ticking",
    )
    parser.add_argument("--quick", action="store_true", help="a tiny run: 6 subscribers, 2 tasks, 3 + 3 s")
    args = parser.parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    _check(parser, args)
    files = raise_open_files()
    if files < args.subscribers + 1000:
        print(f"warning: the open-file limit is {files:,}, fewer than the subscribers need", file=sys.stderr)
    if args.join_live:  # the ticks start at once: subscribers attach while events flow
        ticks, delay = math.ceil((args.attach_seconds + args.seconds) / PERIOD), 0.0
    else:  # the subscribers attach to idle tasks, then every one of them follows every tick
        ticks, delay = math.ceil(args.seconds / PERIOD), args.attach_seconds
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="a2a-bench-fanout-") as scratch_dir:
        for target in (OURS, REFERENCE, *((FLOOR,) if args.floor else ())):
            scratch = Path(scratch_dir) / target
            scratch.mkdir()
            order = Order(ticks, delay, spread=not args.burst)
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                results[target] = runner.run(measure(target, args, scratch, order))
    print(render(results, args, order))
    return 0


if __name__ == "__main__":
    sys.exit(main())
