"""Paid calls end to end: a priced agent's price is held before it is called, captured when its task
completes (the owner paid price - fee, the platform the fee), released when it fails, and a call the
caller cannot pay is refused with nothing written, on every entry point."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson
import pytest
from asgi_lifespan import LifespanManager
from starlette.types import Receive, Scope, Send

from a2a_gateway.app import create_gateway_app
from a2a_gateway.billing.service import BillingService
from tests.api.test_registry import user
from tests.conftest import make_settings
from tests.factories import envelope, user_message

AGENT_HOST = "paid.test"
PRICE = 100  # the platform's 5% is 5 credits
CARD = {
    "name": "Paid",
    "description": "Answers for a price",
    "supportedInterfaces": [
        {"url": f"http://{AGENT_HOST}/a2a", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
    ],
    "version": "1.0.0",
    "capabilities": {"streaming": False},
    "defaultInputModes": ["text/plain"],
    "defaultOutputModes": ["text/plain"],
    "skills": [{"id": "answer", "name": "Answer", "description": "Answers", "tags": ["answer"]}],
}


async def resolver(host: str, port: int) -> list[str]:
    return ["93.184.216.34"] if host == AGENT_HOST else []


@dataclass
class PaidAgent:
    """Completes each task at once ("fail" fails it, "ask" asks for input) and keeps the caller assertions
    it got."""

    assertions: list[str] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        if scope["method"] == "GET":
            await self._answer(send, CARD)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = orjson.loads(body)
        header = dict(scope["headers"]).get(b"a2a-caller-assertion")
        if header is not None:
            self.assertions.append(header.decode())
        sent = request["params"].get("message", {})
        text = sent.get("parts", [{}])[0].get("text", "")
        state = {"fail": "TASK_STATE_FAILED", "ask": "TASK_STATE_INPUT_REQUIRED"}.get(
            text, "TASK_STATE_COMPLETED"
        )
        # A question is a bare status, with no message; a reply continues the task it names.
        task_id = sent.get("taskId") or f"up-{len(self.assertions)}"
        task = {"id": task_id, "contextId": "c", "status": {"state": state}}
        await self._answer(send, {"jsonrpc": "2.0", "id": request["id"], "result": {"task": task}})

    @staticmethod
    async def _answer(send: Send, doc: dict[str, Any]) -> None:
        raw = orjson.dumps(doc)
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(raw))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": raw})


@dataclass
class Market:
    gw: httpx.AsyncClient
    agent: PaidAgent
    billing: BillingService
    agent_id: str
    owner: dict[str, str]
    owner_id: str
    buyer: dict[str, str]
    buyer_id: str
    app: Any = None

    async def send(self, text: str = "hi", headers: dict[str, str] | None = None, **metadata: Any) -> Any:
        params = {"message": user_message(text), "metadata": {"agentId": self.agent_id, **metadata}}
        answer = await self.gw.post(
            "/a2a",
            json=envelope("SendMessage", params),
            headers={"A2A-Version": "1.0", **(headers or self.buyer)},
        )
        return answer.json()

    async def reply(self, task_id: str, text: str) -> Any:
        params = {"message": user_message(text, taskId=task_id)}
        answer = await self.gw.post(
            "/a2a", json=envelope("SendMessage", params), headers={"A2A-Version": "1.0", **self.buyer}
        )
        return answer.json()

    async def balance(self, user_id: str) -> tuple[int, int]:
        found = await self.billing.balance(user_id)
        return found.balance, found.held


@contextlib.asynccontextmanager
async def market(tmp_path: Path, database_url: str | None = None) -> AsyncIterator[Market]:
    agent = PaidAgent()
    app = create_gateway_app(
        make_settings(tmp_path, outbound_allowlist=[], rate_limits={}, database_url=database_url),
        outbound_transport=httpx.ASGITransport(app=agent),
        resolver=resolver,
        auto_migrate=True,
    )
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as gw,
    ):
        owner = await user(gw, "owner@example.com")
        buyer = await user(gw, "buyer@example.com")
        ids = [(await gw.get("/api/v1/auth/me", headers=h)).json()["data"]["id"] for h in (owner, buyer)]
        created = await gw.post(
            "/api/v1/agents", json={"cardUrl": f"http://{AGENT_HOST}", "pricePerTask": PRICE}, headers=owner
        )
        assert created.status_code == 201, created.text
        agent_id = created.json()["data"]["id"]
        yield Market(gw, agent, app.state.billing, agent_id, owner, ids[0], buyer, ids[1], app)


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[Market]:
    async with market(tmp_path) as opened:
        yield opened


async def test_a_completed_call_pays_the_owner_and_the_platform_and_tells_the_agent_the_price(
    shop: Market,
) -> None:
    await shop.billing.grant(shop.buyer_id, 250, "test")
    done = await shop.send()
    assert done["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED", done
    assert await shop.balance(shop.buyer_id) == (150, 0)
    assert await shop.balance(shop.owner_id) == (95, 0)
    said = jwt.decode(shop.agent.assertions[-1], options={"verify_signature": False})
    assert said["price"] == PRICE and said["sub"] == shop.buyer_id
    assert (await shop.billing.check()).ok
    metrics = (await shop.gw.get("/metrics")).text
    assert 'a2a_credit_holds{state="captured"} 1' in metrics
    assert f'a2a_credits_by_hold_state{{state="captured"}} {PRICE}' in metrics


async def test_a_failed_call_gives_the_price_back(shop: Market) -> None:
    await shop.billing.grant(shop.buyer_id, 250, "test")
    failed = await shop.send("fail")
    assert failed["result"]["task"]["status"]["state"] == "TASK_STATE_FAILED"
    assert await shop.balance(shop.buyer_id) == (250, 0)
    assert await shop.balance(shop.owner_id) == (0, 0)
    assert (await shop.billing.check()).ok


async def test_a_call_that_asks_twice_pauses_twice_and_is_paid_once(shop: Market) -> None:
    # The agent's questions carry no status message: the second looks exactly like the first.
    await shop.billing.grant(shop.buyer_id, 250, "test")
    asked = (await shop.send("ask"))["result"]["task"]
    assert asked["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    assert await shop.balance(shop.buyer_id) == (250, PRICE)
    again = await shop.reply(asked["id"], "ask")
    assert again["result"]["task"]["status"]["state"] == "TASK_STATE_INPUT_REQUIRED", again
    assert await shop.balance(shop.buyer_id) == (250, PRICE)  # still held, not given back
    done = await shop.reply(asked["id"], "thanks")
    assert done["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED", done
    assert await shop.balance(shop.buyer_id) == (150, 0)
    assert await shop.balance(shop.owner_id) == (95, 0)
    assert len(shop.agent.assertions) == 3  # one call to the agent per message
    assert (await shop.billing.check()).ok


async def test_a_call_the_caller_cannot_pay_is_refused_with_nothing_written_on_every_entry_point(
    shop: Market,
) -> None:
    await shop.billing.grant(shop.buyer_id, 30, "test")
    refused = await shop.send()
    error = refused["error"]
    assert error["code"] == -32070 and error["data"][0]["reason"] == "INSUFFICIENT_CREDITS"
    assert error["data"][0]["metadata"] == {"price": str(PRICE), "available": "30"}
    proxied = await shop.gw.post(
        f"/a2a/agents/{shop.agent_id}",
        json=envelope("SendMessage", {"message": user_message()}),
        headers={"A2A-Version": "1.0", **shop.buyer},
    )
    assert proxied.status_code == 200 and proxied.json()["error"]["code"] == -32070
    rest = await shop.gw.post("/api/v1/tasks", json={"assignedAgentId": shop.agent_id}, headers=shop.buyer)
    assert rest.status_code == 402 and rest.json()["error"]["code"] == "INSUFFICIENT_CREDITS"
    tasks = (await shop.gw.get("/api/v1/tasks", headers=shop.buyer)).json()["data"]
    assert tasks == [] and shop.agent.assertions == []  # no task stored, nothing sent to the agent
    assert await shop.balance(shop.buyer_id) == (30, 0)
    assert (await shop.billing.check()).ok
    assert "a2a_credit_refusals_total 3" in (await shop.gw.get("/metrics")).text


async def test_anonymous_callers_max_price_and_the_owners_own_calls(shop: Market) -> None:
    anonymous = await shop.gw.post(
        "/a2a",
        json=envelope("SendMessage", {"message": user_message(), "metadata": {"agentId": shop.agent_id}}),
        headers={"A2A-Version": "1.0"},
    )
    assert anonymous.status_code == 401 and "authenticate to pay" in anonymous.json()["error"]["message"]
    await shop.billing.grant(shop.buyer_id, 250, "test")
    capped = (await shop.send(maxPrice=PRICE - 1))["error"]
    assert capped["code"] == -32072 and capped["data"][0]["metadata"]["maxPrice"] == str(PRICE - 1)
    assert (await shop.send(maxPrice="lots"))["error"]["code"] == -32602
    assert shop.agent.assertions == []
    own = await shop.send(headers=shop.owner)  # the owner calls its own agent: free
    assert own["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert await shop.balance(shop.owner_id) == (0, 0) and await shop.balance(shop.buyer_id) == (250, 0)
    within = await shop.send(maxPrice=PRICE)
    assert within["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"


async def test_a_hundred_concurrent_calls_against_a_wallet_that_affords_ten_hold_exactly_ten(
    tmp_path: Path, database_url: str
) -> None:
    async with market(tmp_path, database_url) as shop:
        await hundred_against_ten(shop)


async def hundred_against_ten(shop: Market) -> None:
    await shop.billing.grant(shop.buyer_id, 10 * PRICE, "test")
    answers = await asyncio.gather(*(shop.send() for _ in range(100)))
    completed = [a for a in answers if "result" in a]
    refused = [a for a in answers if a.get("error", {}).get("code") == -32070]
    assert len(completed) == 10 and len(refused) == 90, [
        a.get("error") for a in answers if "result" not in a
    ][:3]
    assert await shop.balance(shop.buyer_id) == (0, 0)
    assert await shop.balance(shop.owner_id) == (10 * (PRICE - 5), 0)
    report = await shop.billing.check()
    assert report.ok, report.lines()


async def test_trust_weighs_a_call_paid_with_purchased_credits_fully_and_a_promotional_one_a_quarter(
    shop: Market,
) -> None:
    async def n_eff(successes: int) -> float:
        async with asyncio.timeout(5):
            while True:
                profile = (await shop.gw.get(f"/api/v1/trust/{shop.agent_id}", headers=shop.buyer)).json()
                evidence = profile["data"]["evidence"]
                if evidence["successes"] >= successes:
                    return float(evidence["nEff"])
                await asyncio.sleep(0.01)

    assert await shop.billing.purchase("cs_test_trust", "evt_test_trust", shop.buyer_id, PRICE)
    await shop.send()
    assert await n_eff(1) == pytest.approx(1.0, abs=0.01)
    await shop.billing.grant(shop.buyer_id, PRICE, "promo")
    await shop.send()
    assert await n_eff(2) == pytest.approx(1.25, abs=0.01)
