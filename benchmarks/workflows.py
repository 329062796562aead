"""Workflow scheduling overhead: a 20-step DAG (5 chains of 4 steps, plus cross links) over an agent whose
skill takes a fixed 50 ms.

Run: python -m benchmarks.workflows [--runs 10] [--concurrent 50] [--skill-ms 50]

One process holds the gateway (SQLite in a temp dir, rate limits off) and an in-process agent reached
through the gateway's injected outbound transport, which answers every call with a completed task after
``--skill-ms``. Every step is a real gateway task through routing (relay, task writes, routed-call
record). The DAG has width 5: layer k's step i depends on layer k-1's steps i and (i+1) mod 5, so the
critical path is 4 steps long and its ideal time is 4 x skill time.

- one run at a time: overhead per step = (run time - critical path's step times) / steps on it;
- ``--concurrent`` runs at once: runs per second, and the same overhead per step at that load.

Target: under 2 ms of overhead per step with one run at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvloop
from asgi_lifespan import LifespanManager
from starlette.types import Receive, Scope, Send

from a2a_gateway.app import create_gateway_app
from a2a_gateway.settings import Settings
from a2a_gateway.workflows.models import RunStatus
from a2a_gateway.workflows.service import WorkflowService
from benchmarks.settlement import _answer

HOST = "127.0.0.1"
AGENT_PORT = 18101  # only a name in the card URL: the transport is in-process
WIDTH, LAYERS = 5, 4
TARGET_MS = 2.0


class SlowAgent:
    """An A2A agent that completes each task after ``delay`` seconds."""

    def __init__(self, delay: float) -> None:
        self._delay = delay
        self._n = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Card on GET; a completed task after the delay on POST."""
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
        await asyncio.sleep(self._delay)
        self._n += 1
        task = {
            "id": f"up-{self._n}",
            "contextId": "c",
            "status": {"state": "TASK_STATE_COMPLETED"},
            "artifacts": [{"artifactId": "a", "parts": [{"text": "done"}]}],
        }
        await _answer(send, {"jsonrpc": "2.0", "id": request["id"], "result": {"task": task}})


def _card(host: str) -> dict[str, Any]:
    return {
        "name": "Slow agent",
        "description": "Takes a fixed time per task",
        "supportedInterfaces": [
            {"url": f"http://{host}/a2a", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
        ],
        "version": "1.0.0",
        "capabilities": {"streaming": False},
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "skills": [{"id": "work", "name": "Work", "description": "Works", "tags": ["work"]}],
    }


def dag(agent_id: str) -> dict[str, Any]:
    """20 steps, width 5, critical path 4 steps."""
    steps = []
    for layer in range(LAYERS):
        for i in range(WIDTH):
            deps = (
                [] if layer == 0 else sorted({(layer - 1) * WIDTH + i, (layer - 1) * WIDTH + (i + 1) % WIDTH})
            )
            steps.append(
                {
                    "name": f"l{layer}s{i}",
                    "agentId": agent_id,
                    "skillId": "work",
                    "input": {},
                    "dependsOn": deps,
                }
            )
    return {"name": "bench", "description": "width 5, depth 4", "steps": steps}


@contextlib.asynccontextmanager
async def gateway(skill_s: float) -> AsyncIterator[tuple[WorkflowService, str, str]]:
    """The gateway with the slow agent registered; its workflow service, the user and the workflow."""
    with tempfile.TemporaryDirectory(prefix="a2a-bench-workflows-") as scratch:
        settings = Settings(
            data_dir=Path(scratch),
            public_url=f"http://{HOST}",
            outbound_allowlist=[HOST],
            rate_limits={},
            log_level="WARNING",
        )
        transport = httpx.ASGITransport(app=SlowAgent(skill_s))
        app = create_gateway_app(settings, outbound_transport=transport, auto_migrate=True)
        async with (
            LifespanManager(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{HOST}") as gw,
        ):
            credentials = {"email": "bench@bench.test", "password": "benchmark password"}
            (await gw.post("/api/v1/auth/register", json=credentials)).raise_for_status()
            login = await gw.post("/api/v1/auth/login", json=credentials)
            auth = {"Authorization": f"Bearer {login.json()['data']['accessToken']}"}
            user = str((await gw.get("/api/v1/auth/me", headers=auth)).json()["data"]["id"])
            made = await gw.post(
                "/api/v1/agents", json={"cardUrl": f"http://{HOST}:{AGENT_PORT}"}, headers=auth
            )
            made.raise_for_status()
            workflows: WorkflowService = app.state.workflows
            workflow = await workflows.create(user, dag(str(made.json()["data"]["id"])))
            yield workflows, user, workflow.id


async def one_run(workflows: WorkflowService, user: str, workflow_id: str) -> float:
    """Seconds from execute to the run's end."""
    start = time.perf_counter()
    run = await workflows.execute(user, workflow_id)
    await workflows.wait(run.id)
    took = time.perf_counter() - start
    ended = await workflows.get_run(user, run.id)
    if ended.status is not RunStatus.COMPLETED:
        raise RuntimeError(f"a run ended {ended.status}: {ended.error}")
    return took


async def measure(runs: int, concurrent: int, skill_ms: float) -> dict[str, Any]:
    """The two figures: sequential runs, then ``concurrent`` runs at once."""
    ideal = LAYERS * skill_ms
    async with gateway(skill_ms / 1000) as (workflows, user, workflow_id):
        await one_run(workflows, user, workflow_id)  # warm-up
        serial = [await one_run(workflows, user, workflow_id) * 1000 for _ in range(runs)]
        start = time.perf_counter()
        together = await asyncio.gather(*(one_run(workflows, user, workflow_id) for _ in range(concurrent)))
        wall = time.perf_counter() - start
    p50 = statistics.median(serial)
    loaded = statistics.median(t * 1000 for t in together)
    return {
        "ideal_ms": ideal,
        "serial_p50_ms": p50,
        "serial_overhead_ms": (p50 - ideal) / LAYERS,
        "concurrent": concurrent,
        "concurrent_p50_ms": loaded,
        "concurrent_overhead_ms": (loaded - ideal) / LAYERS,
        "runs_per_s": concurrent / wall,
        "steps_per_s": concurrent * WIDTH * LAYERS / wall,
    }


def render(result: dict[str, Any]) -> str:
    """Side by side: the ideal (critical path of skill time only) against measured runs."""
    rows = [
        "| load | ideal run (critical path) | measured run p50 | overhead per step | runs/s | steps/s |",
        "|---|---|---|---|---|---|",
        f"| 1 run at a time | {result['ideal_ms']:.0f} ms | {result['serial_p50_ms']:.1f} ms | "
        f"{result['serial_overhead_ms']:.2f} ms | - | - |",
        f"| {result['concurrent']} runs at once | {result['ideal_ms']:.0f} ms | "
        f"{result['concurrent_p50_ms']:.1f} ms | {result['concurrent_overhead_ms']:.2f} ms | "
        f"{result['runs_per_s']:.1f} | {result['steps_per_s']:.0f} |",
    ]
    verdict = "met" if result["serial_overhead_ms"] < TARGET_MS else "MISSED"
    rows.append("")
    rows.append(f"target: overhead per step < {TARGET_MS} ms at one run at a time: {verdict}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10, help="sequential runs (default: %(default)s)")
    parser.add_argument("--concurrent", type=int, default=50, help="runs at once (default: %(default)s)")
    parser.add_argument(
        "--skill-ms", type=float, default=50.0, help="the skill's time (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= 1000 or not 1 <= args.concurrent <= 500:
        parser.error("--runs is 1..1000 and --concurrent 1..500")
    result = uvloop.run(measure(args.runs, args.concurrent, args.skill_ms))
    print(render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
