"""A priced subscription end to end, on real servers (a subscription streams without end, which the
in-process transport cannot carry): its price is captured when it starts streaming, the caller cancels
it, and ``ledger check`` is clean while it runs and after it has ended canceled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from a2a_gateway.agent import AgentDefinition, AgentEvent, ArtifactChunk, SkillContext, skill
from a2a_gateway.app import create_agent_app, create_gateway_app
from a2a_gateway.billing.service import BillingService
from a2a_gateway.protocol import v1
from tests.api.test_registry import user
from tests.conftest import LiveServer, free_port, make_settings
from tests.factories import envelope, user_message

PRICE = 100  # the platform's 5% is 5 credits


@skill("ticker", "Ticker", "A price per event until cancelled", subscription=True)
async def ticker(ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
    n = 0
    while True:
        n += 1
        yield ArtifactChunk.of_text(f"tick {n}", artifact_id=f"t{n}")
        await asyncio.sleep(0.001)


@dataclass
class Network:
    gw: httpx.AsyncClient
    billing: BillingService
    agent_id: str
    buyer: dict[str, str]
    buyer_id: str
    owner_id: str


@pytest.fixture
async def network(tmp_path: Path) -> AsyncIterator[Network]:
    port = free_port()
    agent = LiveServer(
        create_agent_app(
            AgentDefinition(name="Ticker", description="Streams prices", skills=[ticker]),
            make_settings(tmp_path / "agent", public_url=f"http://127.0.0.1:{port}"),
        ),
        port,
    )
    await agent.start()
    gw_port = free_port()
    app = create_gateway_app(make_settings(tmp_path / "gw", public_url=f"http://127.0.0.1:{gw_port}"))
    gateway = LiveServer(app, gw_port)
    await gateway.start()
    try:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as gw:
            owner = await user(gw, "owner@example.com")
            buyer = await user(gw, "buyer@example.com")
            ids = [(await gw.get("/api/v1/auth/me", headers=h)).json()["data"]["id"] for h in (owner, buyer)]
            created = await gw.post(
                "/api/v1/agents", json={"cardUrl": agent.url, "pricePerTask": PRICE}, headers=owner
            )
            assert created.status_code == 201, created.text
            yield Network(gw, app.state.billing, created.json()["data"]["id"], buyer, ids[1], ids[0])
    finally:
        await gateway.stop()
        await agent.stop()


async def rpc(net: Network, method: str, params: dict[str, Any]) -> dict[str, Any]:
    answer = await net.gw.post(
        "/a2a", json=envelope(method, params), headers={"A2A-Version": "1.0", **net.buyer}
    )
    body: dict[str, Any] = answer.json()
    assert "result" in body, body
    return body


async def test_a_priced_subscription_is_paid_when_it_starts_and_its_cancel_leaves_the_books_clean(
    network: Network,
) -> None:
    net = network
    await net.billing.grant(net.buyer_id, 250, "test")
    params = {"message": user_message("go"), "metadata": {"agentId": net.agent_id, "skillId": "ticker"}}
    body = envelope("SendStreamingMessage", params)
    task_id, ticks = "", 0
    headers = {"A2A-Version": "1.0", **net.buyer}
    async with net.gw.stream("POST", "/a2a", json=body, headers=headers) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                result = orjson.loads(line[6:])["result"]
                task_id = task_id or result.get("task", {}).get("id", "")
                ticks += "artifactUpdate" in result
                if ticks == 3:
                    break
    async with asyncio.timeout(5):  # the capture commits with the task's first WORKING write
        while (hold := await net.billing.hold_of(task_id)) is None or hold.state.value != "captured":
            await asyncio.sleep(0.01)
    assert hold.subscription
    assert (await net.billing.balance(net.buyer_id)).balance == 250 - PRICE
    task = (await rpc(net, "GetTask", {"id": task_id}))["result"]
    assert task["status"]["state"] == "TASK_STATE_WORKING"
    running = await net.billing.check()
    assert running.ok, running.lines()  # before the fix: I5, "the task is still WORKING but captured"

    canceled = (await rpc(net, "CancelTask", {"id": task_id}))["result"]
    assert canceled["status"]["state"] == "TASK_STATE_CANCELED"
    ended = await net.billing.check()
    assert ended.ok, ended.lines()  # before the fix: I5, "ended CANCELED but its hold was captured"
    assert (await net.billing.balance(net.buyer_id)).balance == 250 - PRICE  # paid once, kept
    assert (await net.billing.balance(net.owner_id)).balance == PRICE - 5
