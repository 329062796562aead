"""A gateway process killed mid-run (SIGKILL) and started again on its data directory finishes the run
without sending a completed or a running step to its agent again (issue 11, the real-process case; the
in-process one is in tests/workflows/test_engine.py).

The steps' agent is a kit agent on a real loopback socket in the test's process, so it keeps working
while the gateway is down; it records every JSON-RPC call it receives, before its own task service sees
it (which would hide a repeated message id behind its own safe-retry lookup).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable
from pathlib import Path
from typing import IO, Any

import httpx
import orjson
import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from a2a_gateway.agent import AgentDefinition, AgentEvent, ArtifactChunk, SkillContext, Status, skill
from a2a_gateway.app import create_agent_app
from a2a_gateway.protocol import v1
from tests.api.test_registry import user
from tests.conftest import LiveServer, free_port, make_settings

DEADLINE = 15.0  # for every wait on the gateway processes
LEASE_SECONDS = 3  # the shortest lease the settings allow: a killed process's lease runs out in that
SENDS = ("SendMessage", "SendStreamingMessage", "message/send", "message/stream")


class CallRecorder:
    """ASGI middleware: notes (method, message id or task id) of every JSON-RPC call, then passes it on."""

    def __init__(self, app: ASGIApp, calls: list[tuple[str, str]]) -> None:
        self.app = app
        self.calls = calls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        body = b"".join(chunks)
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            call = orjson.loads(body)
            params = call.get("params") or {}
            key = (params.get("message") or {}).get("messageId") or params.get("id") or ""
            self.calls.append((str(call.get("method")), str(key)))
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def steps_agent(release: asyncio.Event) -> AgentDefinition:
    @skill("quick", "Quick", "Answers at once.")
    async def quick(ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
        yield ArtifactChunk.of_text(f"quick: {ctx.text}", name="answer")

    @skill("slow", "Slow", "Works until the test lets it finish.")
    async def slow(ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
        yield Status(v1.TaskState.WORKING, "working")
        await release.wait()
        yield ArtifactChunk.of_text(f"slow: {ctx.text}", name="answer")

    return AgentDefinition(name="Steps", description="Workflow steps", skills=[quick, slow], version="1.0.0")


class Gateway:
    """``a2a-gateway serve`` as a real process on one port and one data directory."""

    def __init__(self, data_dir: Path, port: int, log: IO[bytes]) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.data_dir = data_dir
        self.port = port
        self.log = log
        self.env = {
            "PATH": "/usr/bin:/bin",
            "A2A_GATEWAY_DATA_DIR": str(data_dir),
            "A2A_GATEWAY_LOG_LEVEL": "WARNING",
            "A2A_GATEWAY_OUTBOUND_ALLOWLIST": '["127.0.0.1"]',
            "A2A_GATEWAY_WORKFLOW_LEASE_SECONDS": str(LEASE_SECONDS),
            "A2A_GATEWAY_WORKFLOW_TAKEOVER_SECONDS": "0.2",
        }
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        command = [
            sys.executable,
            "-m",
            "a2a_gateway",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        proc = subprocess.Popen(
            command, env=self.env, cwd=self.data_dir.parent, stdout=self.log, stderr=subprocess.STDOUT
        )
        self.procs.append(proc)
        return proc

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")

    async def ready(self, http: httpx.AsyncClient, proc: subprocess.Popen[bytes]) -> None:
        async def answers() -> bool:
            assert proc.poll() is None, f"the gateway exited ({proc.returncode}):\n{self.output()}"
            with contextlib.suppress(httpx.TransportError):
                return (await http.get("/health/ready")).status_code == 200
            return False

        await until(answers, "the gateway to be ready", self.output)

    def lease_holder(self, run_id: str) -> str | None:
        """Who holds the lease on driving the run (docs/workflows.md, Durability), read-only."""
        uri = f"file:{self.data_dir / 'gateway.db'}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5)) as db:
            row = db.execute(
                "SELECT holder FROM leases WHERE name = ?", (f"workflow-run:{run_id}",)
            ).fetchone()
        return None if row is None else str(row[0])

    def ledger_check(self) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "a2a_gateway", "ledger", "check"]
        return subprocess.run(
            command,
            env=self.env,
            cwd=self.data_dir.parent,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


async def until(check: Callable[[], Awaitable[bool]], what: str, output: Callable[[], str]) -> None:
    """Poll ``check`` until it holds, for at most DEADLINE seconds."""
    deadline = time.monotonic() + DEADLINE
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; gateway output:\n{output()}")
        await asyncio.sleep(0.05)


async def wait_exit(proc: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + DEADLINE
    while proc.poll() is None:
        assert time.monotonic() < deadline, "the gateway did not exit"
        await asyncio.sleep(0.02)
    return proc.returncode


@pytest.mark.slow
async def test_a_killed_gateway_restarted_on_its_data_dir_resends_no_completed_or_running_step(
    tmp_path: Path,
) -> None:
    release = asyncio.Event()
    calls: list[tuple[str, str]] = []
    agent_port = free_port()
    agent_app = create_agent_app(
        steps_agent(release), make_settings(tmp_path / "agent", public_url=f"http://127.0.0.1:{agent_port}")
    )
    agent_app.add_middleware(CallRecorder, calls=calls)
    agent = LiveServer(agent_app, agent_port)
    await agent.start()
    log = (tmp_path / "gateway.log").open("wb")
    gateway = Gateway(tmp_path / "gw", free_port(), log)
    try:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=DEADLINE) as http:
            first = gateway.start()
            await gateway.ready(http, first)
            owner = await user(http, "restart-owner@example.com")
            created = await http.post("/api/v1/agents", json={"cardUrl": agent.url}, headers=owner)
            assert created.status_code == 201, created.text
            agent_id = created.json()["data"]["id"]

            def step(name: str, skill_id: str, **extra: Any) -> dict[str, Any]:
                return {"name": name, "agentId": agent_id, "skillId": skill_id, **extra}

            steps = [
                step("first", "quick", input={"text": "a"}),
                step("second", "slow", input={"text": "b"}, dependsOn=[0]),
                step("third", "quick", input={"text": "c"}, dependsOn=[1]),
            ]
            workflow = await http.post(
                "/api/v1/workflows", json={"name": "wf", "steps": steps}, headers=owner
            )
            assert workflow.status_code == 201, workflow.text
            executed = await http.post(
                f"/api/v1/workflows/{workflow.json()['data']['id']}/execute", headers=owner
            )
            assert executed.status_code == 202, executed.text
            run_id = executed.json()["data"]["id"]
            sent = [f"{run_id}:{i}:1" for i in range(3)]  # each attempt's message id (docs/workflows.md)

            async def run() -> dict[str, Any]:
                answer = await http.get(f"/api/v1/workflow-runs/{run_id}", headers=owner)
                assert answer.status_code == 200, answer.text
                body: dict[str, Any] = answer.json()["data"]
                return body

            async def mid_run() -> bool:
                """Step 0 done, step 1 running at the agent, its routing record (upstream task) saved."""
                now = await run()
                zero, one = now["steps"][0], now["steps"][1]
                if zero["status"] != "completed" or one["status"] != "running" or one["taskId"] is None:
                    return False
                if not any(key == sent[1] for _, key in calls):
                    return False
                task = await http.get(f"/api/v1/tasks/{one['taskId']}", headers=owner)
                return bool((task.json()["data"].get("routing") or {}).get("upstreamTaskId"))

            await until(mid_run, "step 1 to run at the agent", gateway.output)
            slow_task = (await run())["steps"][1]["taskId"]
            dead_holder = gateway.lease_holder(run_id)
            assert dead_holder is not None
            first.send_signal(signal.SIGKILL)
            assert await wait_exit(first) == -signal.SIGKILL
            before_restart = len(calls)

            second = gateway.start()
            await gateway.ready(http, second)

            async def taken_over() -> bool:
                """The new process holds the run's lease: it took the run over by itself, once the dead
                one's lease ran out (read from the database: no API call takes a run over as a side
                effect of asking)."""
                holder = gateway.lease_holder(run_id)
                return holder is not None and holder != dead_holder

            await until(taken_over, "the new process to take the run over", gateway.output)
            assert (await run())["steps"][1]["status"] == "running"  # still at the agent
            # The relayed task of step 1 was picked up again by subscribing to the agent's task.
            assert [c for c in calls[before_restart:] if c[0] in SENDS] == []
            assert any(
                method in ("SubscribeToTask", "tasks/resubscribe") for method, _ in calls[before_restart:]
            )
            release.set()

            async def ended() -> bool:
                return (await run())["status"] not in ("pending", "running")

            await until(ended, "the run to end", gateway.output)
            done = await run()
            assert done["status"] == "completed", done
            sends = Counter(key for method, key in calls if method in SENDS)
            assert sends == dict.fromkeys(sent, 1), calls
            assert [s["status"] for s in done["steps"]] == ["completed"] * 3
            assert all(s["attempt"] == 1 and s["taskIds"] == [s["taskId"]] for s in done["steps"])
            assert done["steps"][1]["taskId"] == slow_task
            assert done["steps"][1]["output"][0]["parts"] == [{"text": "slow: b"}]
            assert done["steps"][2]["output"][0]["parts"] == [{"text": "quick: c"}]
            task = (await http.get(f"/api/v1/tasks/{slow_task}", headers=owner)).json()["data"]
            assert task["status"] == "completed" and task["routing"]["outcome"] == "completed"

            stream_url = f"/api/v1/workflow-runs/{run_id}/stream"  # an ended run's stream ends
            async with asyncio.timeout(DEADLINE), http.stream("GET", stream_url, headers=owner) as stream:
                assert stream.status_code == 200
                lines = [line async for line in stream.aiter_lines()]
            kinds = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
            ids = [int(line.removeprefix("id: ")) for line in lines if line.startswith("id: ")]
            assert kinds == ["step_started", "step_completed"] * 3 + ["run_completed"]
            assert ids == list(range(1, 8)) and done["lastEventId"] == 7

            second.send_signal(signal.SIGTERM)
            assert await wait_exit(second) == 0, gateway.output()
            checked = gateway.ledger_check()
            assert checked.returncode == 0, checked.stdout + checked.stderr
    finally:
        release.set()
        gateway.kill_all()
        log.close()
        await agent.stop()
