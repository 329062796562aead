"""The graceful drain: on SIGTERM (or AppServer.stop) the listener closes, readiness says ``draining``,
calls in flight finish, every open stream ends with a final frame saying where to reconnect, and the
process is done within ``drain_seconds`` even when a client never reads.

Each test runs the gateway on a real loopback socket in the test's event loop (AppServer, or the
signal-handling loop ``serve`` runs), with a skill that holds a call open until the test lets it go.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette

from a2a_gateway.agent import AgentEvent, ArtifactChunk, Skill, SkillContext, skill
from a2a_gateway.api.health import Drain
from a2a_gateway.api.rest.workflow_routes import _sse as run_stream
from a2a_gateway.app import create_gateway_app
from a2a_gateway.protocol import v1
from a2a_gateway.protocol.base import utc_now
from a2a_gateway.server import AppServer, _serve_until_stopped, listen
from a2a_gateway.settings import Settings
from a2a_gateway.workflows.models import EventKind, RunEvent
from agents_examples.echo import ECHO_AGENT
from tests.conftest import make_settings
from tests.factories import send_text, user_message
from tests.streaming_helpers import SseReader, stream_call

LONG_DRAIN = 30  # longer than any deadline below: a test that waits for it fails
DEADLINE = 8.0


@dataclass
class Hold:
    """A skill whose calls wait until ``release`` is set; ``started`` is set when one is in flight."""

    started: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def skill(self) -> Skill:
        @skill("hold", "Hold", "Waits for the test to let it go, then answers.")
        async def hold(ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
            self.started.set()
            await self.release.wait()
            yield ArtifactChunk.of_text("released", name="hold")

        return hold


@dataclass
class Gateway:
    app: Starlette
    settings: Settings
    sock: socket.socket
    hold: Hold
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def gateway(tmp_path: Path, drain_seconds: int = LONG_DRAIN) -> Gateway:
    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    settings = make_settings(
        tmp_path / "gw", drain_seconds=drain_seconds, public_url=f"http://127.0.0.1:{port}"
    )
    hold = Hold()
    app = create_gateway_app(settings, local_skills=[*ECHO_AGENT.skills, hold.skill()])
    return Gateway(app, settings, sock, hold, port)


@contextlib.asynccontextmanager
async def running(gw: Gateway) -> AsyncIterator[AppServer]:
    server = AppServer(gw.app, gw.settings, gw.sock, log_level="warning")
    await server.start()
    try:
        yield server
    finally:
        server.stop(force=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait(), DEADLINE)
        gw.sock.close()


def hold_call(http: httpx.AsyncClient) -> asyncio.Task[httpx.Response]:
    params = {"message": user_message("wait"), "metadata": {"skillId": "hold"}}
    body = {"jsonrpc": "2.0", "id": 7, "method": "SendMessage", "params": params}
    return asyncio.create_task(http.post("/a2a", json=body, headers={"A2A-Version": "1.0"}))


async def refused(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return True
    writer.close()
    return False


async def final_error(reader: SseReader) -> dict[str, Any]:
    """The stream's last frame, an error event; the server then closes the stream."""
    async with asyncio.timeout(5):
        last = await reader.next()
        assert last is not None and last.event == "error", last
        assert await reader.next() is None
    error: dict[str, Any] = last.body["error"]
    return error


async def test_a_unary_call_in_flight_completes_while_streams_end(tmp_path: Path) -> None:
    gw = gateway(tmp_path)
    async with running(gw) as server, httpx.AsyncClient(base_url=gw.url, timeout=DEADLINE) as http:
        paused = await send_text(http, skill="ask")
        call = hold_call(http)
        async with asyncio.timeout(5):
            await gw.hold.started.wait()
        async with stream_call(http, "SubscribeToTask", {"id": paused["id"]}) as reader:
            assert (await reader.next()) is not None
            server.stop()
            assert (await final_error(reader))["code"] == -32052
            assert not call.done()  # the call is still in flight after its neighbour's stream ended
            gw.hold.release.set()
            answer = await asyncio.wait_for(call, 5)
        assert answer.status_code == 200
        assert answer.json()["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
        await asyncio.wait_for(server.wait(), DEADLINE)  # well within the 30 s drain


async def test_sigterm_ends_a2a_1_0_and_0_3_streams_with_a_resubscribe_error(tmp_path: Path) -> None:
    gw = gateway(tmp_path)
    serving = asyncio.create_task(_serve_until_stopped(lambda: gw.app, gw.settings, gw.sock, "127.0.0.1"))
    try:
        async with httpx.AsyncClient(base_url=gw.url, timeout=DEADLINE) as http:
            async with asyncio.timeout(DEADLINE):  # up once it answers; its signal handlers are set by then
                while True:
                    with contextlib.suppress(httpx.TransportError):
                        if (await http.get("/health/live")).status_code == 200:
                            break
                    await asyncio.sleep(0.05)
            paused = await send_text(http, skill="ask")
            legacy = {"id": paused["id"]}
            async with (
                stream_call(http, "SubscribeToTask", {"id": paused["id"]}) as new,
                stream_call(http, "tasks/resubscribe", legacy, version="0.3", request_id="old") as old,
            ):
                assert (await new.next()) is not None
                first = await old.next()
                assert first is not None and first.result["status"]["state"] == "input-required"
                os.kill(os.getpid(), signal.SIGTERM)
                new_error, old_error = await final_error(new), await final_error(old)
        assert new_error["code"] == old_error["code"] == -32052
        assert "draining" in new_error["message"] and "SubscribeToTask" in new_error["message"]
        assert "draining" in old_error["message"] and "tasks/resubscribe" in old_error["message"]
        await asyncio.wait_for(serving, DEADLINE)
    finally:
        serving.cancel()
        with contextlib.suppress(BaseException):
            await serving
        gw.sock.close()


async def test_the_rest_task_stream_ends_with_where_to_reconnect(tmp_path: Path) -> None:
    gw = gateway(tmp_path)
    async with running(gw) as server, httpx.AsyncClient(base_url=gw.url, timeout=DEADLINE) as http:
        account = {"email": "drain@example.com", "password": "correct horse 1"}
        assert (await http.post("/api/v1/auth/register", json=account)).status_code == 201
        token = (await http.post("/api/v1/auth/login", json=account)).json()["data"]["accessToken"]
        auth = {"Authorization": f"Bearer {token}"}
        asked = await http.post(
            "/a2a",
            json={"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {
                "message": user_message("hi"), "metadata": {"skillId": "ask"}}},
            headers={**auth, "A2A-Version": "1.0"},
        )  # fmt: skip
        task_id = asked.json()["result"]["task"]["id"]
        events: list[tuple[str, Any]] = []
        async with http.stream("GET", f"/api/v1/tasks/{task_id}/stream", headers=auth) as response:
            assert response.status_code == 200
            name = "message"
            async with asyncio.timeout(5):
                async for line in response.aiter_lines():
                    if line.startswith("event: "):
                        name = line.removeprefix("event: ")
                    elif line.startswith("data: "):
                        events.append((name, orjson.loads(line.removeprefix("data: "))))
                        if len(events) == 1:
                            server.stop()
        assert events[0] == ("status", {"status": "input_required"})
        name, body = events[-1]
        assert name == "error"
        assert body["error"]["code"] == "UNAVAILABLE" and "draining" in body["error"]["message"]
        assert body["reconnect"] == f"/api/v1/tasks/{task_id}/stream"
        await asyncio.wait_for(server.wait(), DEADLINE)


async def test_readiness_says_draining_and_new_connections_are_refused(tmp_path: Path) -> None:
    gw = gateway(tmp_path)
    inside = httpx.AsyncClient(transport=httpx.ASGITransport(app=gw.app), base_url="http://t")
    async with running(gw) as server, httpx.AsyncClient(base_url=gw.url, timeout=DEADLINE) as http, inside:
        assert (await http.get("/health/ready")).status_code == 200
        call = hold_call(http)  # keeps the drain going while readiness is asked
        async with asyncio.timeout(5):
            await gw.hold.started.wait()
        server.stop()
        async with asyncio.timeout(5):
            while not await refused(gw.port):
                await asyncio.sleep(0.02)
        ready = await inside.get("/health/ready")
        assert (ready.status_code, ready.json()) == (503, {"status": "draining"})
        assert (await inside.get("/health/live")).status_code == 200
        gw.hold.release.set()
        assert (await asyncio.wait_for(call, 5)).status_code == 200
        await asyncio.wait_for(server.wait(), DEADLINE)


async def test_the_process_is_done_within_the_drain_when_a_client_never_reads(tmp_path: Path) -> None:
    gw = gateway(tmp_path, drain_seconds=1)
    async with running(gw) as server:
        params = {"message": user_message("wait"), "metadata": {"skillId": "hold"}}
        body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": params})
        _, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        head = (
            f"POST /a2a HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"a2a-version: 1.0\r\ncontent-length: {len(body)}\r\n\r\n"
        )
        writer.write(head.encode() + body)  # and never read: the hold is never released either
        await writer.drain()
        try:
            async with asyncio.timeout(5):
                await gw.hold.started.wait()
            server.stop()
            async with asyncio.timeout(1 + 4):  # the 1 s drain, then the app's own shutdown
                await server.wait()
        finally:
            writer.close()


async def test_a_workflow_run_stream_ends_with_reconnect_and_its_last_event_id() -> None:
    drain = Drain()
    gate = asyncio.Event()

    async def run_events() -> AsyncIterator[RunEvent]:
        yield RunEvent(run_id="r", seq=4, kind=EventKind.STEP_STARTED, at=utc_now(), data={})
        await gate.wait()  # the run goes on; nothing more for a while
        yield RunEvent(run_id="r", seq=5, kind=EventKind.STEP_COMPLETED, at=utc_now(), data={})

    frames = run_stream(run_events(), "r", 3, drain)
    first = await anext(frames)
    assert (first.event, first.id) == ("step_started", "4")
    drain.start()
    last = await asyncio.wait_for(anext(frames), 5)
    assert last.event == "error"
    body = orjson.loads(str(last.data))
    assert body["error"]["code"] == "UNAVAILABLE" and "Last-Event-ID" in body["error"]["message"]
    assert (body["reconnect"], body["lastEventId"]) == ("/api/v1/workflow-runs/r/stream", "4")
    with pytest.raises(StopAsyncIteration):
        await anext(frames)
