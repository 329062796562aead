"""REST task streams carry event ids, and a client reconnecting with ``Last-Event-ID`` gets exactly what
it missed (or, once those events are no longer kept, the task as it is now), on a real server.

A local skill of the gateway emits one artifact chunk each time the test lets it, so the test knows
which events happened while its client was away.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from a2a_gateway.agent import AgentEvent, ArtifactChunk, SkillContext, Status, skill
from a2a_gateway.app import create_gateway_app
from a2a_gateway.protocol import v1
from a2a_gateway.tasks import broker
from tests.conftest import LiveServer, free_port, make_settings


class Steps:
    """What the skill emits next: a chunk's text, or None to complete."""

    queue: asyncio.Queue[str | None]


STEPS = Steps()


@skill("steps", "Steps", "One artifact chunk each time the test says so, then completes.")
async def steps(ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
    yield Status(v1.TaskState.WORKING, "started")
    first = True
    while (text := await STEPS.queue.get()) is not None:
        yield ArtifactChunk.of_text(text, name="out", artifact_id="out", append=not first)
        first = False


@contextlib.asynccontextmanager
async def _gateway(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str], str]]:
    STEPS.queue = asyncio.Queue()
    port = free_port()
    app = create_gateway_app(
        make_settings(tmp_path, public_url=f"http://127.0.0.1:{port}"), local_skills=[steps]
    )
    server = LiveServer(app, port)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            credentials = {"email": "s@example.com", "password": "long enough"}
            await client.post("/api/v1/auth/register", json=credentials)
            login = await client.post("/api/v1/auth/login", json=credentials)
            auth = {"Authorization": f"Bearer {login.json()['data']['accessToken']}"}
            body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {
                "message": {"messageId": "m1", "role": "ROLE_USER", "parts": [{"text": "go"}]},
                "configuration": {"returnImmediately": True}, "metadata": {"skillId": "steps"}}}  # fmt: skip
            sent = await client.post("/a2a", json=body, headers={**auth, "A2A-Version": "1.0"})
            task_id = sent.json()["result"]["task"]["id"]
            yield client, auth, task_id
    finally:
        await STEPS.queue.put(None)
        await server.stop()


class Reader:
    """One SSE connection, read event by event: (id, event, data)."""

    def __init__(self, client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
        self._cm = client.stream("GET", url, headers=headers)
        self._lines: AsyncIterator[str] | None = None

    async def __aenter__(self) -> Reader:
        response = await self._cm.__aenter__()
        assert response.status_code == 200, await response.aread()
        self._lines = response.aiter_lines()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._cm.__aexit__(None, None, None)

    async def next(self) -> tuple[str | None, str, Any]:
        assert self._lines is not None
        event_id, name = None, "message"
        async with asyncio.timeout(5):
            async for line in self._lines:
                if line.startswith("id: "):
                    event_id = line[4:]
                elif line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    return event_id, name, orjson.loads(line[6:])
        raise AssertionError("the stream ended")


async def test_a_reconnect_with_last_event_id_gets_exactly_what_it_missed(tmp_path: Path) -> None:
    async with _gateway(tmp_path) as (client, auth, task_id):
        url = f"/api/v1/tasks/{task_id}/stream"
        async with Reader(client, url, auth) as first:
            snapshot_id, name, doc = await first.next()
            assert name == "status" and doc == {"status": "running"} and snapshot_id is not None
            await STEPS.queue.put("a")
            seen_id, name, doc = await first.next()
            assert (name, doc["parts"]) == ("artifact", [{"type": "text", "data": "a"}])
            # The task's own event numbers: the snapshot as of event N, then N+1's first SSE event.
            assert str(snapshot_id).isdigit()
            assert seen_id == f"{int(str(snapshot_id)) + 1}.0"
        # Away: two chunks happen.
        await STEPS.queue.put("b")
        await STEPS.queue.put("c")
        async with asyncio.timeout(5):
            while True:  # until both are in the task
                task = (await client.get(f"/api/v1/tasks/{task_id}", headers=auth)).json()["data"]
                if task["artifacts"] and len(task["artifacts"][0]["parts"]) == 3:
                    break
                await asyncio.sleep(0.01)
        async with Reader(client, url, auth | {"Last-Event-ID": seen_id}) as again:
            missed = [await again.next(), await again.next()]
            assert [(n, d["parts"][0]["data"]) for _, n, d in missed] == [
                ("artifact", "b"),
                ("artifact", "c"),
            ]
            await STEPS.queue.put(None)
            _, name, doc = await again.next()
        assert name == "complete" and doc["status"] == "completed"
        # The snapshot's artifact and what came after, each once.
        assert [p["data"] for p in doc["artifacts"][0]["parts"]] == ["a", "b", "c"]


async def test_a_reconnect_past_what_is_kept_starts_from_the_task_as_it_is_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(broker, "RECENT_EVENTS", 2)
    async with _gateway(tmp_path) as (client, auth, task_id):
        url = f"/api/v1/tasks/{task_id}/stream"
        async with Reader(client, url, auth) as first:
            await first.next()
            await STEPS.queue.put("a")
            seen_id, _, _ = await first.next()
        for text in "bcd":  # three events: more than the two kept
            await STEPS.queue.put(text)
        async with asyncio.timeout(5):
            while True:
                task = (await client.get(f"/api/v1/tasks/{task_id}", headers=auth)).json()["data"]
                if task["artifacts"] and len(task["artifacts"][0]["parts"]) == 4:
                    break
                await asyncio.sleep(0.01)
        async with Reader(client, url + f"?lastEventId={seen_id}", auth) as again:
            snapshot_id, name, doc = await again.next()
            assert name == "status" and doc == {"status": "running"} and "." not in str(snapshot_id)
            assert int(str(snapshot_id)) >= int(str(seen_id).split(".")[0]) + 3
            await STEPS.queue.put(None)
            _, name, doc = await again.next()
        assert name == "complete"
        assert [p["data"] for p in doc["artifacts"][0]["parts"]] == ["a", "b", "c", "d"]


async def test_an_id_of_the_earlier_per_process_form_starts_from_the_task_as_it_is_now(
    tmp_path: Path,
) -> None:
    async with _gateway(tmp_path) as (client, auth, task_id):
        url = f"/api/v1/tasks/{task_id}/stream"
        async with Reader(client, url, auth) as first:
            own, _, _ = await first.next()
            await STEPS.queue.put("a")
            await first.next()
        # E-N ids were numbered per process before the numbers were stored: never taken as resumable.
        async with Reader(client, url, auth | {"Last-Event-ID": "0badcafe-1.0"}) as again:
            event_id, name, doc = await again.next()
        assert (name, doc, event_id) == ("status", {"status": "running"}, str(int(str(own)) + 1))


@pytest.mark.parametrize(
    "bad", ["x", "1.x", "-1", "1.2.3", "9" * 13, "1.", "1.123", "abcdefgh-1", "abcdef12-1.x"]
)
async def test_a_last_event_id_this_stream_never_sent_is_a_400(tmp_path: Path, bad: str) -> None:
    async with _gateway(tmp_path) as (client, auth, task_id):
        answer = await client.get(f"/api/v1/tasks/{task_id}/stream", headers=auth | {"Last-Event-ID": bad})
        assert answer.status_code == 400
        assert "Last-Event-ID must be an event id of this stream" in answer.json()["error"]["message"]
