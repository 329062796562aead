"""Routed calls leave a record (requester, agent, skill, upstream ids, timings, outcome); failing calls
make an agent ``degraded``; skill routing prefers, among equally trusted agents, the one that answers
fastest."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from a2a_gateway.app import create_agent_app, create_gateway_app
from agents_examples.echo import ECHO_AGENT
from tests.conftest import make_settings
from tests.factories import error_of, rpc, user_message

PUBLIC = "93.184.216.34"


async def resolver(host: str, port: int) -> list[str]:
    return [PUBLIC] if host.endswith(".test") else []


class Hosts(httpx.AsyncBaseTransport):
    """In-process upstreams chosen by Host header: every name serves the kit echo agent, ``slow.test``
    after a pause, and any name in ``down`` refuses connections."""

    def __init__(self, echo: Starlette) -> None:
        self.echo = httpx.ASGITransport(app=echo)
        self.down: set[str] = set()
        self.seen: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.headers["host"]
        self.seen.append(host)
        if host in self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if host == "slow.test":
            await asyncio.sleep(0.05)
        return await self.echo.handle_async_request(request)


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    async with network(tmp_path) as started:
        yield started


@contextlib.asynccontextmanager
async def network(tmp_path: Path, **overrides: Any) -> AsyncIterator[dict[str, Any]]:
    """A gateway whose outbound calls reach the in-process hosts, with one logged-in owner."""
    echo = create_agent_app(ECHO_AGENT, make_settings(tmp_path / "echo", public_url="http://echo.test"))
    hosts = Hosts(echo)
    gateway = create_gateway_app(
        make_settings(tmp_path / "gw", outbound_allowlist=[], **overrides),
        local_skills=ECHO_AGENT.skills,
        outbound_transport=hosts,
        resolver=resolver,
    )
    async with (
        LifespanManager(echo),
        LifespanManager(gateway),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gw") as gw,
    ):
        credentials = {"email": "h@example.com", "password": "long enough"}
        await gw.post("/api/v1/auth/register", json=credentials)
        token = (await gw.post("/api/v1/auth/login", json=credentials)).json()["data"]["accessToken"]
        gw.headers["Authorization"] = f"Bearer {token}"

        async def register(host: str) -> str:
            body = {"name": host, "endpoint": f"http://{host}/a2a",
                    "skills": [{"id": "echo", "name": "Echo", "tags": ["say"]}]}  # fmt: skip
            response = await gw.post("/api/v1/agents", json=body)
            assert response.status_code == 201, response.text
            agent_id: str = response.json()["data"]["id"]
            assert (await gw.post(f"/api/v1/agents/{agent_id}/heartbeat", json={})).status_code == 200
            return agent_id

        yield {"gw": gw, "hosts": hosts, "register": register}


async def agent(gw: httpx.AsyncClient, agent_id: str) -> dict[str, Any]:
    response = await gw.get(f"/api/v1/agents/{agent_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()["data"]
    return found


async def routing(gw: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    response = await gw.get(f"/api/v1/tasks/{task_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()["data"]["routing"]
    return found


async def settled(gw: httpx.AsyncClient, agent_id: str, check: Any) -> dict[str, Any]:
    """Health is stored in the background after a call ends: wait (briefly) until ``check`` holds."""
    async with asyncio.timeout(5):
        while True:
            found = await agent(gw, agent_id)
            if check(found):
                return found
            await asyncio.sleep(0.01)


async def test_a_routed_call_leaves_a_record(net: dict[str, Any]) -> None:
    gw = net["gw"]
    fast = await net["register"]("fast.test")
    params = {"message": user_message("hi"), "metadata": {"agentId": fast, "skillId": "echo"}}
    task = (await rpc(gw, "SendMessage", params))["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    record = await routing(gw, task["id"])
    assert record["agentId"] == fast and record["skillId"] == "echo"
    assert record["outcome"] == "completed" and record["error"] is None
    assert record["upstreamTaskId"] and record["upstreamTaskId"] != task["id"]
    assert record["firstResponseMs"] >= 0 and record["durationMs"] >= record["firstResponseMs"] - 1
    assert record["startedAt"] and record["finishedAt"]
    # A gateway task that was not routed has no record.
    local = (await rpc(gw, "SendMessage", {"message": user_message("x")}))["result"]["task"]
    assert (await gw.get(f"/api/v1/tasks/{local['id']}")).json()["data"]["routing"] is None


async def test_a_canceled_call_is_recorded_as_canceled(net: dict[str, Any]) -> None:
    gw = net["gw"]
    fast = await net["register"]("fast.test")
    params = {"message": user_message("hi"), "metadata": {"agentId": fast, "skillId": "ask"}}
    asked = (await rpc(gw, "SendMessage", params))["result"]["task"]
    assert asked["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    await rpc(gw, "CancelTask", {"id": asked["id"]})
    record = await routing(gw, asked["id"])
    assert record["outcome"] == "canceled" and record["upstreamTaskId"]


async def test_failing_calls_make_an_agent_degraded_and_success_heals_it(net: dict[str, Any]) -> None:
    gw, hosts = net["gw"], net["hosts"]
    flaky = await net["register"]("flaky.test")
    assert (await agent(gw, flaky))["status"] == "online"
    hosts.down.add("flaky.test")
    for _ in range(3):
        error = error_of(
            await rpc(gw, "SendMessage", {"message": user_message(), "metadata": {"agentId": flaky}})
        )
        assert error["code"] == -32051
    found = await settled(gw, flaky, lambda a: a["status"] == "degraded")
    assert found["health"]["callsFailing"] is True
    degraded = (await gw.get("/api/v1/discover", params={"status": "degraded"})).json()
    assert [a["id"] for a in degraded["data"]] == [flaky]
    online = (await gw.get("/api/v1/discover", params={"status": "online"})).json()
    assert flaky not in [a["id"] for a in online["data"]]
    # A degraded agent is not chosen by skill routing.
    refused = error_of(
        await rpc(gw, "SendMessage", {"message": user_message(), "metadata": {"skillTags": "say"}})
    )
    assert "No online agent" in refused["message"]
    # The agent recovers: successful calls bring it back online.
    hosts.down.clear()
    for _ in range(6):
        params = {"message": user_message(), "metadata": {"agentId": flaky}}
        assert (await rpc(gw, "SendMessage", params))["result"]["task"]["status"][
            "state"
        ] == "TASK_STATE_COMPLETED"
    print(await agent(gw, flaky))
    await settled(gw, flaky, lambda a: a["status"] == "online" and not a["health"]["callsFailing"])


async def test_routing_prefers_the_faster_of_equally_trusted_agents(net: dict[str, Any]) -> None:
    gw, hosts = net["gw"], net["hosts"]
    fast = await net["register"]("fast.test")
    slow = await net["register"]("slow.test")  # heartbeat last: without latency it would rank first
    by_tag = {"message": user_message("pick"), "metadata": {"skillTags": "say"}}
    first = (await rpc(gw, "SendMessage", by_tag))["result"]["task"]
    assert first["metadata"] == {"agentId": slow}
    # One measured call to each.
    for agent_id in (fast, slow):
        await rpc(gw, "SendMessage", {"message": user_message(), "metadata": {"agentId": agent_id}})
    found = await settled(gw, fast, lambda a: a["health"]["latencyMs"] is not None)
    slow_found = await settled(gw, slow, lambda a: a["health"]["latencyMs"] is not None)
    assert slow_found["health"]["latencyMs"] > found["health"]["latencyMs"]
    hosts.seen.clear()
    again = {**by_tag, "message": user_message("pick")}  # a new message (the same one is a retry)
    chosen = (await rpc(gw, "SendMessage", again))["result"]["task"]
    assert chosen["metadata"] == {"agentId": fast} and hosts.seen == ["fast.test"]


async def test_active_health_checks_record_probes_and_degrade_a_silent_agent(tmp_path: Path) -> None:
    async with network(tmp_path, health_check_seconds=0.05) as started:
        gw, hosts = started["gw"], started["hosts"]
        alive = await started["register"]("alive.test")
        silent = await started["register"]("silent.test")
        hosts.down.add("silent.test")
        found = await settled(gw, alive, lambda a: a["health"]["lastProbeOk"] is True)
        assert found["status"] == "online" and found["health"]["latencyMs"] is not None
        # The probe is a real A2A call: the card, then a JSON-RPC request to the agent's endpoint.
        assert "alive.test" in hosts.seen
        quiet = await settled(gw, silent, lambda a: a["status"] == "degraded")
        assert quiet["health"]["lastProbeOk"] is False and quiet["health"]["lastProbeAt"]
        # Once it answers again, probes bring it back.
        hosts.down.clear()
        await settled(gw, silent, lambda a: a["status"] == "online" and a["health"]["lastProbeOk"])
