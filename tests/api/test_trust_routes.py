"""Trust end to end through the gateway: routed calls to a real (in-process) kit agent become the agent's
evidence, the task's requester rates it once, nobody else can, the score moves and discovery's
minTrustScore filters on it, the history lists what happened, and a broken trust store never breaks a call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import insert, text, update
from starlette.applications import Starlette

from a2a_gateway.app import create_agent_app, create_gateway_app
from a2a_gateway.protocol.base import utc_now
from a2a_gateway.settings import Settings
from a2a_gateway.storage import engine as db
from a2a_gateway.storage.tables import ledger_holds, users
from a2a_gateway.storage.timestamps import micros
from agents_examples.echo import ECHO_AGENT
from tests.conftest import make_settings
from tests.factories import envelope, user_message

PUBLIC = "93.184.216.34"
NEW_AGENT = 42.5  # the prior: a brand-new agent's score


async def resolver(host: str, port: int) -> list[str]:
    return [PUBLIC] if host.endswith(".test") else []


class Hosts(httpx.AsyncBaseTransport):
    """Every ``.test`` name serves the kit echo agent in process, except the names in ``down``."""

    def __init__(self, echo: Starlette) -> None:
        self.echo = httpx.ASGITransport(app=echo)
        self.down: set[str] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.headers["host"] in self.down:
            raise httpx.ConnectError("connection refused", request=request)
        return await self.echo.handle_async_request(request)


@dataclass
class Net:
    """The gateway, its settings, the upstream hosts, and three users: an agent owner and two others."""

    gw: httpx.AsyncClient
    settings: Settings
    hosts: Hosts
    owner: dict[str, str]
    alice: dict[str, str]
    bob: dict[str, str]
    ids: dict[str, str]  # user ids by name

    async def register(self, host: str) -> str:
        """An agent of the owner's at ``host``, online."""
        body = {"name": host, "endpoint": f"http://{host}/a2a",
                "skills": [{"id": "echo", "name": "Echo", "tags": ["say"]}]}  # fmt: skip
        created = await self.gw.post("/api/v1/agents", json=body, headers=self.owner)
        assert created.status_code == 201, created.text
        agent_id: str = created.json()["data"]["id"]
        beat = await self.gw.post(f"/api/v1/agents/{agent_id}/heartbeat", json={}, headers=self.owner)
        assert beat.status_code == 200
        return agent_id

    async def call(
        self, who: dict[str, str], agent_id: str, skill: str = "echo", text: str = "hi"
    ) -> dict[str, Any]:
        """A JSON-RPC SendMessage routed to the agent, made as ``who``: the JSON-RPC response."""
        params = {"message": user_message(text), "metadata": {"agentId": agent_id, "skillId": skill}}
        response = await self.gw.post(
            "/a2a", json=envelope("SendMessage", params), headers={**who, "A2A-Version": "1.0"}
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def task(self, who: dict[str, str], agent_id: str, skill: str = "echo", text: str = "hi") -> str:
        """A routed call that gave a task: its id."""
        task_id: str = (await self.call(who, agent_id, skill, text))["result"]["task"]["id"]
        return task_id

    async def profile(self, agent_id: str, who: dict[str, str] | None = None) -> dict[str, Any]:
        response = await self.gw.get(f"/api/v1/trust/{agent_id}", headers=who or self.alice)
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()["data"]
        return found

    async def counted(self, agent_id: str, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Evidence is recorded in the background once a call has answered: wait until ``check`` holds."""
        async with asyncio.timeout(5):
            while True:
                found = await self.profile(agent_id)
                if check(found):
                    return found
                await asyncio.sleep(0.01)

    async def rate(
        self, who: dict[str, str], agent_id: str, task_id: str, rating: Any = 5, comment: Any = "great"
    ) -> httpx.Response:
        body = {"taskId": task_id, "rating": rating, "comment": comment}
        return await self.gw.post(f"/api/v1/trust/{agent_id}/rate", json=body, headers=who)

    async def discover(self, min_trust: float) -> list[str]:
        response = await self.gw.get(
            "/api/v1/discover", params={"minTrustScore": str(min_trust)}, headers=self.alice
        )
        assert response.status_code == 200, response.text
        return [a["id"] for a in response.json()["data"]]

    async def history(self, agent_id: str, **params: str) -> httpx.Response:
        return await self.gw.get(f"/api/v1/trust/{agent_id}/history", params=params, headers=self.alice)

    async def sql(self, *statements: Any) -> None:
        """Write to the gateway's database behind its back (test set-up the API cannot do yet)."""
        engine = db.create_engine(self.settings.resolved_database_url())
        try:
            async with engine.begin() as conn:
                for statement in statements:
                    await conn.execute(statement)
        finally:
            await engine.dispose()


async def login(gw: httpx.AsyncClient, email: str) -> tuple[dict[str, str], str]:
    credentials = {"email": email, "password": "long enough"}
    registered = await gw.post("/api/v1/auth/register", json=credentials)
    assert registered.status_code == 201, registered.text
    token = (await gw.post("/api/v1/auth/login", json=credentials)).json()["data"]["accessToken"]
    headers = {"Authorization": f"Bearer {token}"}
    me = (await gw.get("/api/v1/auth/me", headers=headers)).json()["data"]
    return headers, str(me["id"])


@contextlib.asynccontextmanager
async def network(tmp_path: Path) -> AsyncIterator[Net]:
    echo = create_agent_app(ECHO_AGENT, make_settings(tmp_path / "echo", public_url="http://echo.test"))
    hosts = Hosts(echo)
    settings = make_settings(tmp_path / "gw", outbound_allowlist=[], trust_refresh_seconds=0.02)
    gateway = create_gateway_app(settings, outbound_transport=hosts, resolver=resolver)
    async with (
        LifespanManager(echo),
        LifespanManager(gateway),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gw") as gw,
    ):
        people = {name: await login(gw, f"{name}@example.com") for name in ("owner", "alice", "bob")}
        yield Net(
            gw,
            settings,
            hosts,
            people["owner"][0],
            people["alice"][0],
            people["bob"][0],
            {name: found[1] for name, found in people.items()},
        )


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[Net]:
    async with network(tmp_path) as started:
        yield started


async def test_a_new_agent_scores_the_prior_with_the_explanation(net: Net) -> None:
    agent_id = await net.register("fresh.test")
    found = await net.profile(agent_id)
    assert found["agentId"] == agent_id and found["trustScore"] == NEW_AGENT
    assert found["components"] == {"reliability": 50.0, "speed": 50.0, "quality": 50.0, "tenure": 0.0}
    assert found["recentEvents"] == []
    assert found["evidence"]["nEff"] == 0 and found["badge"] == "New"
    assert found["params"]["halfLifeDays"] == 30 and found["params"]["perRequesterCap"] == 5


async def test_a_completed_call_is_evidence_and_its_requester_rates_it_once(net: Net) -> None:
    agent_id = await net.register("good.test")
    task_id = await net.task(net.alice, agent_id)
    found = await net.counted(agent_id, lambda p: p["evidence"]["successes"] == 1)
    assert found["trustScore"] > NEW_AGENT and found["components"]["tenure"] > 0
    [event] = found["recentEvents"]
    assert event["eventType"] == "task_completed" and event["taskId"] == task_id and event["counted"]
    assert event["latencyMs"] >= 0 and "requester" not in event  # who uses an agent is not public

    rated = await net.rate(net.alice, agent_id, task_id, 5, "Excellent work")
    assert rated.status_code == 201, rated.text
    shown = rated.json()["data"]
    assert shown["eventType"] == "rating_received" and shown["rating"] == 5
    assert shown["comment"] == "Excellent work" and shown["taskId"] == task_id and shown["counted"]

    again = await net.rate(net.alice, agent_id, task_id, 1, "changed my mind")
    assert again.status_code == 409 and again.json()["error"]["code"] == "CONFLICT"
    assert (await net.rate(net.bob, agent_id, task_id)).status_code == 403
    assert (await net.rate(net.owner, agent_id, task_id)).status_code == 403
    events = (await net.profile(agent_id))["recentEvents"]
    assert [e["eventType"] for e in events] == ["rating_received", "task_completed"]
    assert events[0]["rating"] == 5  # the second rating did not replace the first


async def test_the_owner_cannot_rate_or_score_their_own_agent(net: Net) -> None:
    agent_id = await net.register("mine.test")
    task_id = await net.task(net.owner, agent_id)
    found = await net.counted(agent_id, lambda p: len(p["recentEvents"]) == 1)
    assert found["recentEvents"][0]["counted"] is False  # self-dealing is ignored
    assert found["trustScore"] == NEW_AGENT
    refused = await net.rate(net.owner, agent_id, task_id)
    assert refused.status_code == 403 and "owner" in refused.json()["error"]["message"]


async def test_a_credible_rating_moves_the_score_and_discovery_filters_on_it(net: Net) -> None:
    agent_id = await net.register("rated.test")
    first, second = await net.task(net.alice, agent_id), await net.task(net.alice, agent_id)
    found = await net.counted(agent_id, lambda p: p["evidence"]["successes"] == 2)
    async with asyncio.timeout(5):  # the stored score follows the evidence within the refresh interval
        while await net.discover(found["trustScore"]) != [agent_id]:
            await asyncio.sleep(0.01)

    # A rater who has paid for nothing has no vote: the rating is kept, the quality does not move.
    assert (await net.rate(net.alice, agent_id, first, 4, "good")).status_code == 201
    unmoved = await net.profile(agent_id)
    assert unmoved["components"]["quality"] == 50.0 and unmoved["evidence"]["ratingVotes"] == 0

    # Once she has spent 100 credits of her own and her account is a week old, her vote counts fully.
    week_ago = micros(utc_now() - timedelta(days=8))
    await net.sql(
        update(users).where(users.c.id == net.ids["alice"]).values(created_us=week_ago),
        insert(ledger_holds).values(
            task_id="paid-earlier", payer_user_id=net.ids["alice"], payee_user_id=net.ids["bob"],
            price=100, fee_bps=500, promo=0, purchased=100, state="captured", created_us=week_ago,
        ),
    )  # fmt: skip
    assert (await net.rate(net.alice, agent_id, second, 5, "great")).status_code == 201
    moved = await net.profile(agent_id)
    assert moved["evidence"]["ratingVotes"] == 1 and moved["components"]["quality"] > 50.0
    assert moved["trustScore"] > found["trustScore"]
    between = (found["trustScore"] + moved["trustScore"]) / 2
    other = await net.register("unrated.test")
    assert await net.discover(between) == [agent_id]
    assert set(await net.discover(NEW_AGENT + 0.01)) == {agent_id}  # the unrated agent is not above
    assert other in await net.discover(0)

    history = await net.history(agent_id)
    assert history.status_code == 200
    assert [(e["eventType"], e["taskId"]) for e in history.json()["data"]] == [
        ("rating_received", second),
        ("rating_received", first),
        ("task_completed", second),
        ("task_completed", first),
    ]
    paged = (await net.history(agent_id, limit="1", offset="1")).json()
    assert [e["taskId"] for e in paged["data"]] == [first] and paged["meta"] == {"limit": 1, "offset": 1}


async def test_failures_count_against_the_agent_and_neutral_ends_do_not(net: Net) -> None:
    agent_id = await net.register("flaky.test")
    net.hosts.down.add("flaky.test")
    assert (await net.call(net.alice, agent_id))["error"]["code"] == -32051
    failed = await net.counted(agent_id, lambda p: p["evidence"]["failures"] == 1)
    assert failed["components"]["reliability"] < 50.0 and failed["trustScore"] < NEW_AGENT
    assert failed["recentEvents"][0]["eventType"] == "task_failed"
    net.hosts.down.clear()

    # The agent declining (countdown refuses 0) and the caller cancelling count neither way.
    rejected = await net.call(net.alice, agent_id, "countdown", "0")
    assert rejected["result"]["task"]["status"]["state"] == "TASK_STATE_REJECTED"
    asked = await net.task(net.alice, agent_id, "ask")
    canceled = await net.gw.post(
        "/a2a", json=envelope("CancelTask", {"id": asked}), headers={**net.alice, "A2A-Version": "1.0"}
    )
    assert canceled.json()["result"]["status"]["state"] == "TASK_STATE_CANCELED"
    found = await net.counted(agent_id, lambda p: len(p["recentEvents"]) == 3)
    assert [e["counted"] for e in found["recentEvents"]] == [False, False, True]
    assert {e["eventType"] for e in found["recentEvents"][:2]} == {"task_not_counted"}
    assert found["trustScore"] == failed["trustScore"]

    # Only a completed task can be rated.
    refused = await net.rate(net.alice, agent_id, asked)
    assert refused.status_code == 409 and "completed" in refused.json()["error"]["message"]


async def test_unknown_agents_and_tasks_are_404(net: Net) -> None:
    agent_id, other = await net.register("one.test"), await net.register("two.test")
    task_id = await net.task(net.alice, agent_id)
    for response in (
        await net.gw.get("/api/v1/trust/nope", headers=net.alice),
        await net.history("nope"),
        await net.rate(net.alice, "nope", task_id),
        await net.rate(net.alice, agent_id, "no-such-task"),
        await net.rate(net.alice, other, task_id),  # a task of another agent
    ):
        assert response.status_code == 404, response.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rating": 5}, "taskId"),
        ({"taskId": "t", "rating": 6}, "rating"),
        ({"taskId": "t", "rating": "5"}, "rating"),
        ({"taskId": "t", "rating": 4.5}, "rating"),
        ({"taskId": "t", "rating": True}, "rating"),
        ({"taskId": "t", "rating": 5, "comment": "x" * 1001}, "comment"),
        ({"taskId": "t", "rating": 5, "comment": {"no": "text"}}, "comment"),
    ],
)
async def test_a_bad_rating_body_is_400(net: Net, body: dict[str, Any], field: str) -> None:
    agent_id = await net.register("body.test")
    response = await net.gw.post(f"/api/v1/trust/{agent_id}/rate", json=body, headers=net.alice)
    assert response.status_code == 400, response.text
    assert field in response.text


@pytest.mark.parametrize(
    "params", [{"limit": "0"}, {"limit": "101"}, {"limit": "ten"}, {"offset": "-1"}, {"offset": "1e3"}]
)
async def test_a_bad_history_page_is_400(net: Net, params: dict[str, str]) -> None:
    agent_id = await net.register("page.test")
    assert (await net.history(agent_id, **params)).status_code == 400


async def test_authentication_scopes_and_agent_keys(net: Net) -> None:
    agent_id = await net.register("keys.test")
    task_id = await net.task(net.alice, agent_id)
    await net.counted(agent_id, lambda p: p["evidence"]["successes"] == 1)
    profile, history, rate = (
        f"/api/v1/trust/{agent_id}",
        f"/api/v1/trust/{agent_id}/history",
        f"/api/v1/trust/{agent_id}/rate",
    )
    body = {"taskId": task_id, "rating": 4}
    assert (await net.gw.get(profile)).status_code == 401
    assert (await net.gw.get(history)).status_code == 401
    assert (await net.gw.post(rate, json=body)).status_code == 401

    async def key(who: dict[str, str], scopes: list[str]) -> dict[str, str]:
        made = await net.gw.post("/api/v1/api-keys", json={"name": "k", "scopes": scopes}, headers=who)
        assert made.status_code == 201, made.text
        return {"X-API-Key": made.json()["data"]["key"]}

    reader = await key(net.alice, ["agents:read"])
    writer = await key(net.alice, ["tasks:write"])
    assert (await net.gw.get(profile, headers=reader)).status_code == 200
    assert (await net.gw.get(profile, headers=writer)).status_code == 403
    assert (await net.gw.post(rate, json=body, headers=reader)).status_code == 403
    made = await net.gw.post(f"/api/v1/agents/{agent_id}/api-keys", json={"name": "agent"}, headers=net.owner)
    agent_key = {"X-API-Key": made.json()["data"]["key"]}
    assert (await net.gw.get(profile, headers=agent_key)).status_code == 403
    assert (await net.gw.get(history, headers=agent_key)).status_code == 403
    assert (await net.gw.post(rate, json=body, headers=writer)).status_code == 201


async def test_a_broken_trust_store_never_breaks_a_call(net: Net, caplog: pytest.LogCaptureFixture) -> None:
    agent_id = await net.register("steady.test")
    await net.sql(text("DROP TABLE trust_evidence"))
    with caplog.at_level(logging.WARNING, logger="a2a_gateway.routing.service"):
        answer = await net.call(net.alice, agent_id)
        assert answer["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
        async with asyncio.timeout(5):
            while not any("routed call's end failed" in r.getMessage() for r in caplog.records):
                await asyncio.sleep(0.01)
    assert (await net.call(net.alice, agent_id))["result"]["task"]["status"][
        "state"
    ] == "TASK_STATE_COMPLETED"
