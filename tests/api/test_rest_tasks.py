"""The REST tasks API (seed 002) over routed gateway tasks: create (202), get, list, reply, cancel,
stream to completion, timeouts, and the dashboard route."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import orjson
from asgi_lifespan import LifespanManager

from a2a_gateway.app import create_gateway_app
from tests.api.test_routing import net  # noqa: F401  (the in-process gateway + upstream echo agent)
from tests.conftest import make_settings


async def owner(net: dict[str, Any]) -> dict[str, str]:  # noqa: F811
    login = await net["gw"].post(
        "/api/v1/auth/login", json={"email": "r@example.com", "password": "long enough"}
    )
    return {"Authorization": f"Bearer {login.json()['data']['accessToken']}"}


async def wait_status(
    gw: httpx.AsyncClient, headers: dict[str, str], task_id: str, status: str
) -> dict[str, Any]:
    async with asyncio.timeout(5):
        while True:
            task: dict[str, Any] = (await gw.get(f"/api/v1/tasks/{task_id}", headers=headers)).json()["data"]
            if task["status"] == status:
                return task
            await asyncio.sleep(0.02)


async def test_create_get_and_list(net: dict[str, Any]) -> None:  # noqa: F811
    gw, headers = net["gw"], await owner(net)
    body = {"assignedAgentId": net["v1"], "title": "Say it", "description": "hello there", "input": {"n": 1}}
    created = await gw.post("/api/v1/tasks", json=body, headers=headers)
    assert created.status_code == 202, created.text
    task = created.json()["data"]
    assert task["assignedAgentId"] == net["v1"] and task["title"] == "Say it"
    assert task["status"] in {"assigned", "running", "completed"}
    done = await wait_status(gw, headers, task["id"], "completed")
    assert done["artifacts"][0]["parts"] == [{"type": "text", "data": "Say it\n\nhello there"}]
    assert done["messages"][0]["parts"][1] == {"type": "data", "data": {"n": 1}}
    listed = (await gw.get("/api/v1/tasks", params={"status": "completed"}, headers=headers)).json()
    assert [t["id"] for t in listed["data"]] == [task["id"]] and listed["meta"]["total"] == 1
    assert (await gw.get("/api/v1/tasks", params={"limit": "0"}, headers=headers)).status_code == 400
    assert (await gw.get(f"/api/v1/tasks/{task['id']}")).status_code == 401


async def test_reply_then_stream_to_completion(net: dict[str, Any]) -> None:  # noqa: F811
    gw, headers = net["gw"], await owner(net)
    created = await gw.post(
        "/api/v1/tasks", json={"assignedAgentId": net["v03"], "description": "x"}, headers=headers
    )
    task_id = created.json()["data"]["id"]
    # The echo agent's default skill completes at once; use a paused one through JSON-RPC metadata instead.
    asked = await gw.post(
        "/a2a",
        json={"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {
            "message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "hi"}]},
            "metadata": {"agentId": net["v03"], "skillId": "ask"}}},
        headers={**headers, "A2A-Version": "1.0"},
    )  # fmt: skip
    paused_id = asked.json()["result"]["task"]["id"]
    assert (await wait_status(gw, headers, paused_id, "input_required"))["messages"][-1]["role"] == "agent"
    events: list[tuple[str, Any]] = []

    async def listen() -> None:
        async with gw.stream("GET", f"/api/v1/tasks/{paused_id}/stream", headers=headers) as response:
            name = "message"
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    events.append((name, orjson.loads(line[6:])))

    listener = asyncio.create_task(listen())
    await asyncio.sleep(0.1)
    reply = {"message": {"role": "user", "parts": [{"type": "text", "data": "Bo"}]}}
    replied = await gw.post(f"/api/v1/tasks/{paused_id}/reply", json=reply, headers=headers)
    assert replied.status_code == 200 and replied.json()["data"]["status"] == "completed"
    async with asyncio.timeout(5):
        await listener
    names = [n for n, _ in events]
    assert names[0] == "status" and names[-1] == "complete"
    assert (
        "artifact",
        {"id": events[-2][1]["id"], "name": "greeting", "parts": [{"type": "text", "data": "Hello, Bo!"}]},
    ) in events
    assert events[-1][1]["status"] == "completed"
    finished = [e async for e in _stream_lines(gw, f"/api/v1/tasks/{task_id}/stream", headers)]
    assert finished and finished[0].startswith("event: complete")


async def _stream_lines(gw: httpx.AsyncClient, url: str, headers: dict[str, str]) -> Any:
    async with gw.stream("GET", url, headers=headers) as response:
        async for line in response.aiter_lines():
            if line:
                yield line


async def test_cancel_reaches_upstream(net: dict[str, Any]) -> None:  # noqa: F811
    gw, headers = net["gw"], await owner(net)
    asked = await gw.post(
        "/a2a",
        json={"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {
            "message": {"messageId": "m2", "role": "ROLE_USER", "parts": [{"text": "hi"}]},
            "metadata": {"agentId": net["v1"], "skillId": "ask"}}},
        headers={**headers, "A2A-Version": "1.0"},
    )  # fmt: skip
    paused_id = asked.json()["result"]["task"]["id"]
    canceled = await gw.post(f"/api/v1/tasks/{paused_id}/cancel", headers=headers)
    assert canceled.json()["data"]["status"] == "cancelled"
    again = await gw.post(f"/api/v1/tasks/{paused_id}/cancel", headers=headers)
    assert again.status_code == 409


async def test_timeout_fails_a_waiting_task(net: dict[str, Any], monkeypatch: Any) -> None:  # noqa: F811
    gw, headers = net["gw"], await owner(net)
    service = net["app"].state.service
    send = service.send

    async def send_to_ask(owner: str, request: Any, *, streaming: bool, caller: Any = None) -> Any:
        # Route this REST task to the upstream "ask" skill, so it waits for input until the timeout.
        request.metadata = {**(request.metadata or {}), "skillId": "ask"}
        return await send(owner, request, streaming=streaming, caller=caller)

    monkeypatch.setattr(service, "send", send_to_ask)
    created = await gw.post(
        "/api/v1/tasks", json={"assignedAgentId": net["v1"], "timeoutSeconds": 1}, headers=headers
    )
    task = await wait_status(gw, headers, created.json()["data"]["id"], "failed")
    assert task["messages"][-1]["parts"][0]["data"] == "The task timed out after 1 s"


async def test_dashboard_task_creation(net: dict[str, Any]) -> None:  # noqa: F811
    gw = net["gw"]
    await gw.post("/api/v1/auth/login", json={"email": "r@example.com", "password": "long enough"})
    session = (await gw.get("/api/dashboard/session")).json()["data"]
    no_csrf = await gw.post("/api/dashboard/tasks", json={"agentId": net["v1"], "message": "hey"})
    assert no_csrf.status_code == 403
    created = await gw.post(
        "/api/dashboard/tasks",
        json={"agentId": net["v1"], "message": "hey"},
        headers={"X-CSRF-Token": session["csrfToken"]},
    )
    assert created.status_code == 202 and created.json()["data"]["taskId"]


class _Held(httpx.AsyncBaseTransport):
    """An upstream that says nothing until released, then refuses the connection."""

    def __init__(self) -> None:
        self.called = asyncio.Event()
        self.release = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.called.set()
        await self.release.wait()
        raise httpx.ConnectError("connection refused", request=request)


async def test_create_answers_before_the_upstream_does(tmp_path: Path) -> None:
    from tests.api.test_routing import resolver

    upstream = _Held()
    gateway = create_gateway_app(
        make_settings(tmp_path, outbound_allowlist=[]), outbound_transport=upstream, resolver=resolver
    )
    async with (
        LifespanManager(gateway),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gw") as gw,
    ):
        credentials = {"email": "r@example.com", "password": "long enough"}
        await gw.post("/api/v1/auth/register", json=credentials)
        token = (await gw.post("/api/v1/auth/login", json=credentials)).json()["data"]["accessToken"]
        headers = {"Authorization": f"Bearer {token}"}
        agent = await gw.post(
            "/api/v1/agents",
            json={"name": "S", "endpoint": "http://slow.test/a2a", "skills": [{"id": "x", "name": "X"}]},
            headers=headers,
        )
        body = {"assignedAgentId": agent.json()["data"]["id"], "description": "x", "timeoutSeconds": 60}
        # Regression (issue 8, 1.8): the 202 waited for the upstream's first event (up to 300 s).
        async with asyncio.timeout(5):
            created = await gw.post("/api/v1/tasks", json=body, headers=headers)
        assert created.status_code == 202 and created.json()["data"]["status"] == "assigned"
        await upstream.called.wait()
        task_id = created.json()["data"]["id"]
        assert (await gw.get(f"/api/v1/tasks/{task_id}", headers=headers)).json()["data"]["status"] in {
            "assigned",
            "running",
        }
        upstream.release.set()
        failed = await wait_status(gw, headers, task_id, "failed")
        assert failed["messages"][-1]["role"] == "agent"  # the upstream error, told as the task's end
