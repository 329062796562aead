"""The REST workflows API on a live gateway: create (201, 400 naming the step, 402), list, get (recent runs,
Mermaid, critical path), execute (202, Idempotency-Key), runs with their steps' tasks, retries and
skipped dependents, a step's question answered, cancel, the run stream (resumed from Last-Event-ID),
owner-only reads and the scopes (decision 0013: a per-agent key may do nothing here).

The gateway runs on a real loopback socket so the run stream is read line by line as it is written; the
steps' agent is a kit agent in process behind the gateway's outbound transport.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from a2a_gateway.agent import (
    AgentDefinition,
    AgentEvent,
    ArtifactChunk,
    InputRequired,
    SkillContext,
    Status,
    skill,
)
from a2a_gateway.agent.skill import message_text
from a2a_gateway.app import create_agent_app, create_gateway_app
from a2a_gateway.billing.service import BillingService
from a2a_gateway.protocol import v1
from tests.api.test_agent_key_scope import agent_key
from tests.api.test_registry import user
from tests.conftest import LiveServer, free_port, make_settings
from tests.factories import host_of

TIMEOUT = 15.0
AGENT_HOST = "steps.test"


@skill("done", "Done", "Answers with the text it got (or its data).")
async def done(ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
    """Complete at once."""
    if ctx.text:
        yield ArtifactChunk.of_text(f"done: {ctx.text}", name="answer")
    else:
        yield ArtifactChunk.of_data(ctx.data, name="answer")


@skill("ask", "Ask", "Asks for a name, then greets it.")
async def ask(ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
    """Pause in input-required until the follow-up comes."""
    reply = yield InputRequired("What is your name?")
    name = message_text(reply).strip() if reply is not None else ""
    yield ArtifactChunk.of_text(f"Hello, {name}!", name="greeting")


@skill("fail", "Fail", "Always fails.")
async def fail(ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
    """End the task failed."""
    yield Status(v1.TaskState.FAILED, "it broke")


STEPS_AGENT = AgentDefinition(
    name="Steps", description="Skills for workflow steps", skills=[done, ask, fail], version="1.0.0"
)


async def resolver(host: str, port: int) -> list[str]:
    return ["93.184.216.34"] if host == AGENT_HOST else []


class AgentHost(httpx.AsyncBaseTransport):
    """steps.test is the kit agent, in process."""

    def __init__(self, agent: Starlette) -> None:
        self._agent = httpx.ASGITransport(app=agent)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if host_of(request) == AGENT_HOST:
            return await self._agent.handle_async_request(request)
        raise httpx.ConnectError("connection refused", request=request)


@dataclass
class World:
    http: httpx.AsyncClient
    owner: dict[str, str]
    other: dict[str, str]
    agent_id: str
    priced_id: str
    billing: BillingService

    def step(self, name: str, skill_id: str, **extra: Any) -> dict[str, Any]:
        return {"name": name, "agentId": self.agent_id, "skillId": skill_id, **extra}

    async def create(self, *steps: dict[str, Any], headers: dict[str, str] | None = None) -> str:
        answer = await self.http.post(
            "/api/v1/workflows", json={"name": "wf", "steps": list(steps)}, headers=headers or self.owner
        )
        assert answer.status_code == 201, answer.text
        workflow_id: str = answer.json()["data"]["id"]
        return workflow_id

    async def execute(self, workflow_id: str, body: Any = None, **headers: str) -> dict[str, Any]:
        answer = await self.http.post(
            f"/api/v1/workflows/{workflow_id}/execute", json=body, headers={**self.owner, **headers}
        )
        assert answer.status_code == 202, answer.text
        run: dict[str, Any] = answer.json()["data"]
        return run

    async def run(self, run_id: str) -> dict[str, Any]:
        answer = await self.http.get(f"/api/v1/workflow-runs/{run_id}", headers=self.owner)
        assert answer.status_code == 200, answer.text
        run: dict[str, Any] = answer.json()["data"]
        return run


@dataclass
class Event:
    id: int
    kind: str
    data: dict[str, Any]


async def read_stream(
    http: httpx.AsyncClient,
    run_id: str,
    headers: dict[str, str],
    *,
    until: str | None = None,
    count: int | None = None,
    params: dict[str, str] | None = None,
) -> list[Event]:
    """The run stream's events, read to its end, or until an event of kind ``until`` or ``count``
    events have come (then the connection is dropped)."""
    events: list[Event] = []
    fields: dict[str, str] = {}
    async with (
        asyncio.timeout(TIMEOUT),
        http.stream(
            "GET", f"/api/v1/workflow-runs/{run_id}/stream", headers=headers, params=params
        ) as response,
    ):
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith(":"):
                continue  # a keep-alive comment
            if line:
                name, _, value = line.partition(": ")
                fields[name] = value
                continue
            if "data" not in fields:
                continue
            events.append(Event(int(fields["id"]), fields["event"], orjson.loads(fields["data"])))
            fields = {}
            if events[-1].kind == until or (count is not None and len(events) == count):
                break
    return events


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    agent = create_agent_app(
        STEPS_AGENT, make_settings(tmp_path / "agent", public_url=f"http://{AGENT_HOST}")
    )
    port = free_port()
    gateway = create_gateway_app(
        make_settings(tmp_path / "gw", public_url=f"http://127.0.0.1:{port}", outbound_allowlist=[]),
        outbound_transport=AgentHost(agent),
        resolver=resolver,
    )
    server = LiveServer(gateway, port)
    async with LifespanManager(agent):
        await server.start()
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
                owner = await user(http, "wf-owner@example.com")
                other = await user(http, "wf-other@example.com")
                ids = []
                for price in (0, 10):
                    created = await http.post(
                        "/api/v1/agents",
                        json={"cardUrl": f"http://{AGENT_HOST}", "pricePerTask": price},
                        headers=owner,
                    )
                    assert created.status_code == 201, created.text
                    ids.append(created.json()["data"]["id"])
                yield World(http, owner, other, ids[0], ids[1], gateway.state.billing)
        finally:
            await server.stop()


async def test_a_workflow_is_saved_listed_run_to_completion_and_shown_with_its_dag(world: World) -> None:
    http = world.http
    first = world.step("first", "done", input={"text": "hello"}, timeout=60)
    reference = {"text": {"$ref": "steps.0.text"}}
    second = world.step("second", "done", input=reference, dependsOn=[0], retryPolicy={"maxRetries": 2})
    created = await http.post(
        "/api/v1/workflows",
        json={"name": "twice", "description": "done, then done again", "steps": [first, second]},
        headers=world.owner,
    )
    assert created.status_code == 201, created.text
    workflow = created.json()["data"]
    assert workflow["name"] == "twice" and workflow["budget"] == 0
    assert workflow["steps"][1] == {
        "index": 1,
        "name": "second",
        "agentId": world.agent_id,
        "skillId": "done",
        "input": {"text": {"$ref": "steps.0.text"}},
        "dependsOn": [0],
        "timeout": 300,
        "retryPolicy": {"maxRetries": 2, "backoffMs": 1000},
        "price": 0,
    }
    listed = (await http.get("/api/v1/workflows", params={"limit": "10"}, headers=world.owner)).json()
    assert [w["id"] for w in listed["data"]] == [workflow["id"]]
    assert listed["meta"] == {"limit": 10, "offset": 0}
    assert (await http.get("/api/v1/workflows", params={"offset": "1"}, headers=world.owner)).json()[
        "data"
    ] == []

    before = (await http.get(f"/api/v1/workflows/{workflow['id']}", headers=world.owner)).json()["data"]
    assert before["runs"] == [] and ":::" not in before["mermaid"]
    assert before["criticalPath"] == [0, 1]

    run = await world.execute(workflow["id"])
    assert run["workflowId"] == workflow["id"] and run["status"] in {"running", "completed"}
    events = await read_stream(http, run["id"], world.owner)
    assert [e.kind for e in events] == [
        "step_started",
        "step_completed",
        "step_started",
        "step_completed",
        "run_completed",
    ]
    assert [e.id for e in events] == [1, 2, 3, 4, 5]
    assert events[0].data["step"] == 0 and events[0].data["runId"] == run["id"] and "at" in events[0].data
    assert events[-1].data["outputs"][0]["name"] == "second"

    ended = await world.run(run["id"])
    assert ended["status"] == "completed" and ended["endedAt"] is not None and ended["lastEventId"] == 5
    steps = ended["steps"]
    assert [s["status"] for s in steps] == ["completed", "completed"]
    assert [s["name"] for s in steps] == ["first", "second"]
    assert steps[1]["output"][0]["parts"] == [{"text": "done: done: hello"}]
    assert all(s["attempt"] == 1 and s["taskIds"] == [s["taskId"]] for s in steps)
    # The steps are the caller's gateway tasks, routed to the agent, like any other task.
    listed_tasks = (await http.get("/api/v1/tasks", headers=world.owner)).json()["data"]
    assert {s["taskId"] for s in steps} <= {t["id"] for t in listed_tasks}
    task = (await http.get(f"/api/v1/tasks/{steps[0]['taskId']}", headers=world.owner)).json()["data"]
    assert task["status"] == "completed" and task["assignedAgentId"] == world.agent_id

    shown = (await http.get(f"/api/v1/workflows/{workflow['id']}", headers=world.owner)).json()["data"]
    assert [r["id"] for r in shown["runs"]] == [run["id"]] and shown["runs"][0]["status"] == "completed"
    mermaid = shown["mermaid"]
    assert mermaid.startswith("graph TD") and "s0 --> s1" in mermaid
    assert 's1["1: second"]:::completed' in mermaid and "classDef completed" in mermaid


async def test_a_failing_step_is_retried_then_skips_what_depends_on_it(world: World) -> None:
    workflow_id = await world.create(
        world.step("flaky", "fail", retryPolicy={"maxRetries": 1, "backoffMs": 100}),
        world.step("after", "done", dependsOn=[0]),
        world.step("aside", "done", input={"text": "independent"}),
    )
    run = await world.execute(workflow_id)
    events = await read_stream(world.http, run["id"], world.owner)
    kinds = [e.kind for e in events]
    assert kinds[-1] == "run_failed" and "step_skipped" in kinds
    retry = next(e for e in events if e.kind == "step_retry")
    assert retry.data["step"] == 0 and retry.data["nextAttempt"] == 2 and retry.data["waitMs"] == 100
    assert next(e for e in events if e.kind == "step_skipped").data["step"] == 1
    ended = await world.run(run["id"])
    flaky, after, aside = ended["steps"]
    assert flaky["status"] == "failed" and flaky["attempt"] == 2 and len(flaky["taskIds"]) == 2
    assert flaky["error"] == "it broke"
    assert after["status"] == "skipped" and after["taskId"] is None
    assert aside["status"] == "completed"
    assert ended["status"] == "failed" and "0 (flaky)" in ended["error"]
    shown = (await world.http.get(f"/api/v1/workflows/{workflow_id}", headers=world.owner)).json()["data"]
    assert ":::failed" in shown["mermaid"] and ":::skipped" in shown["mermaid"]


async def test_a_step_question_is_answered_through_its_reply_route(world: World) -> None:
    http = world.http
    workflow_id = await world.create(
        world.step("asker", "ask"), world.step("then", "done", input={"text": "x"}, dependsOn=[0])
    )
    run = await world.execute(workflow_id)
    seen = await read_stream(http, run["id"], world.owner, until="step_input_required")
    assert seen[-1].data["question"] == "What is your name?" and seen[-1].data["step"] == 0
    waiting = await world.run(run["id"])
    assert waiting["steps"][0]["status"] == "input_required"
    assert waiting["steps"][0]["question"] == "What is your name?"

    reply = {"message": {"role": "user", "parts": [{"type": "text", "data": "Bo"}]}}
    base = f"/api/v1/workflow-runs/{run['id']}/steps"
    not_waiting = await http.post(f"{base}/1/reply", json=reply, headers=world.owner)
    assert not_waiting.status_code == 409, not_waiting.text
    assert (await http.post(f"{base}/7/reply", json=reply, headers=world.owner)).status_code == 404
    assert (await http.post(f"{base}/x/reply", json=reply, headers=world.owner)).status_code == 404
    bad = await http.post(f"{base}/0/reply", json={"message": {"parts": []}}, headers=world.owner)
    assert bad.status_code == 400

    answered = await http.post(f"{base}/0/reply", json=reply, headers=world.owner)
    assert answered.status_code == 200, answered.text
    rest = await read_stream(http, run["id"], {**world.owner, "Last-Event-ID": str(seen[-1].id)})
    assert rest[0].id == seen[-1].id + 1 and rest[-1].kind == "run_completed"
    ended = await world.run(run["id"])
    assert ended["steps"][0]["output"][0]["parts"] == [{"text": "Hello, Bo!"}]
    assert ended["steps"][0]["question"] is None
    again = await http.post(f"{base}/0/reply", json=reply, headers=world.owner)
    assert again.status_code == 409


async def test_canceling_a_run_stops_its_running_step_and_skips_the_rest(world: World) -> None:
    http = world.http
    workflow_id = await world.create(world.step("asker", "ask"), world.step("then", "done", dependsOn=[0]))
    run = await world.execute(workflow_id)
    await read_stream(http, run["id"], world.owner, until="step_input_required")
    canceled = await http.post(f"/api/v1/workflow-runs/{run['id']}/cancel", headers=world.owner)
    assert canceled.status_code == 200, canceled.text
    view = canceled.json()["data"]
    assert view["status"] == "canceled"
    assert [s["status"] for s in view["steps"]] == ["canceled", "skipped"]
    events = await read_stream(http, run["id"], world.owner)
    assert events[-1].kind == "run_canceled" and events[-2].kind == "step_skipped"
    task_id = view["steps"][0]["taskId"]
    task = (await http.get(f"/api/v1/tasks/{task_id}", headers=world.owner)).json()["data"]
    assert task["status"] == "cancelled"
    again = await http.post(f"/api/v1/workflow-runs/{run['id']}/cancel", headers=world.owner)
    assert again.status_code == 409 and again.json()["error"]["code"] == "CONFLICT"


async def test_a_reconnecting_stream_gets_only_what_it_missed(world: World) -> None:
    http = world.http
    workflow_id = await world.create(
        world.step("a", "done", input={"text": "1"}),
        world.step("b", "done", input={"text": "2"}, dependsOn=[0]),
    )
    run = await world.execute(workflow_id)
    first_two = await read_stream(http, run["id"], world.owner, count=2)
    assert [e.id for e in first_two] == [1, 2]
    rest = await read_stream(http, run["id"], {**world.owner, "Last-Event-ID": "2"})
    assert [e.id for e in rest] == [3, 4, 5] and rest[-1].kind == "run_completed"
    by_query = await read_stream(http, run["id"], world.owner, params={"lastEventId": "4"})
    assert [e.id for e in by_query] == [5]
    assert await read_stream(http, run["id"], {**world.owner, "Last-Event-ID": "5"}) == []
    for bad in ("-1", "x", "9" * 20):
        answer = await http.get(
            f"/api/v1/workflow-runs/{run['id']}/stream", headers={**world.owner, "Last-Event-ID": bad}
        )
        assert answer.status_code == 400 and answer.json()["error"]["details"][0]["field"] == "Last-Event-ID"


async def test_execute_with_an_idempotency_key_starts_one_run(world: World) -> None:
    http = world.http
    workflow_id = await world.create(world.step("a", "done", input={"text": "1"}))
    body = {"inputs": {"0": {"text": "override"}}}
    first = await world.execute(workflow_id, body, **{"Idempotency-Key": "run-once"})
    replay = await http.post(
        f"/api/v1/workflows/{workflow_id}/execute",
        json=body,
        headers={**world.owner, "Idempotency-Key": "run-once"},
    )
    assert replay.status_code == 202 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["data"]["id"] == first["id"]
    assert first["inputs"] == {"0": {"text": "override"}}
    other_body = await http.post(
        f"/api/v1/workflows/{workflow_id}/execute",
        json={"inputs": {}},
        headers={**world.owner, "Idempotency-Key": "run-once"},
    )
    assert other_body.status_code == 422
    events = await read_stream(http, first["id"], world.owner)
    assert events[-1].kind == "run_completed"
    assert (await world.run(first["id"]))["steps"][0]["output"][0]["parts"] == [{"text": "done: override"}]
    shown = (await http.get(f"/api/v1/workflows/{workflow_id}", headers=world.owner)).json()["data"]
    assert [r["id"] for r in shown["runs"]] == [first["id"]]
    bad_inputs = await http.post(
        f"/api/v1/workflows/{workflow_id}/execute", json={"inputs": {"3": {}}}, headers=world.owner
    )
    assert bad_inputs.status_code == 400 and bad_inputs.json()["error"]["details"][0]["field"] == "inputs.3"


async def test_validation_errors_name_the_step_and_field(world: World) -> None:
    http = world.http

    async def refused(*steps: dict[str, Any]) -> str:
        answer = await http.post(
            "/api/v1/workflows", json={"name": "bad", "steps": list(steps)}, headers=world.owner
        )
        assert answer.status_code == 400, answer.text
        field: str = answer.json()["error"]["details"][0]["field"]
        return field

    ok = world.step("a", "done")
    assert await refused(ok, world.step("b", "done", dependsOn=[1])) == "steps[1].dependsOn"
    assert await refused(ok, world.step("b", "nope")) == "steps[1].skillId"
    assert await refused({**ok, "agentId": "missing"}) == "steps[0].agentId"
    assert await refused({**ok, "timeout": 1}) == "steps[0].timeout"
    assert await refused({**ok, "retryPolicy": {"maxRetries": 9}}) == "steps[0].retryPolicy.maxRetries"
    assert await refused() == "steps"
    not_json = await http.post("/api/v1/workflows", content=b"{", headers=world.owner)
    assert not_json.status_code == 400
    limit = await http.get("/api/v1/workflows", params={"limit": "0"}, headers=world.owner)
    assert limit.status_code == 400 and limit.json()["error"]["details"][0]["field"] == "limit"
    assert (await http.get("/api/v1/workflows", headers=world.owner)).json()["data"] == []


async def test_a_priced_workflow_the_caller_cannot_afford_is_refused_at_creation(world: World) -> None:
    priced = {"name": "paid", "agentId": world.priced_id, "skillId": "done"}
    answer = await world.http.post(
        "/api/v1/workflows", json={"name": "too dear", "steps": [priced]}, headers=world.other
    )
    assert answer.status_code == 402, answer.text
    error = answer.json()["error"]
    assert error["code"] == "INSUFFICIENT_CREDITS" and "10 credits" in error["message"]
    assert (await world.http.get("/api/v1/workflows", headers=world.other)).json()["data"] == []
    # The owner's own agent costs the owner nothing.
    assert (await world.create(priced)) is not None


async def balance(world: World, headers: dict[str, str]) -> dict[str, int]:
    answer = await world.http.get("/api/v1/billing/balance", headers=headers)
    assert answer.status_code == 200, answer.text
    shown: dict[str, int] = answer.json()["data"]
    return shown


async def user_id(world: World, headers: dict[str, str]) -> str:
    answer = await world.http.get("/api/v1/auth/me", headers=headers)
    assert answer.status_code == 200, answer.text
    found: str = answer.json()["data"]["id"]
    return found


async def test_a_priced_run_pays_each_completed_step_once_from_its_budget(world: World) -> None:
    """Three 10-credit steps: one completes, one fails twice (both attempts given back to the budget),
    one is skipped (never charged); the run spends 10 and its close gives back the other 20."""
    http, payer = world.http, world.other
    await world.billing.grant(await user_id(world, payer), 100, "test")
    paid = {"agentId": world.priced_id}
    workflow_id = await world.create(
        {**paid, "name": "ok", "skillId": "done", "input": {"text": "x"}},
        {**paid, "name": "flaky", "skillId": "fail", "retryPolicy": {"maxRetries": 1, "backoffMs": 100}},
        {**paid, "name": "after", "skillId": "done", "dependsOn": [1]},
        headers=payer,
    )
    shown = (await http.get(f"/api/v1/workflows/{workflow_id}", headers=payer)).json()["data"]
    assert shown["budget"] == 30 and [s["price"] for s in shown["steps"]] == [10, 10, 10]
    answer = await http.post(f"/api/v1/workflows/{workflow_id}/execute", headers=payer)
    assert answer.status_code == 202, answer.text
    run = answer.json()["data"]
    assert run["budget"] == 30
    events = await read_stream(http, run["id"], payer)
    assert events[-1].kind == "run_failed"
    ended = (await http.get(f"/api/v1/workflow-runs/{run['id']}", headers=payer)).json()["data"]
    assert [s["status"] for s in ended["steps"]] == ["completed", "failed", "skipped"]
    assert len(ended["steps"][1]["taskIds"]) == 2
    after = await balance(world, payer)
    assert after["balance"] == 90 and after["available"] == 90 and after["held"] == 0
    assert after["total_spent"] == 10
    budget = await world.billing.budget_of(run["id"])
    assert budget is not None and budget.refunded == 20 and budget.remaining == 0
    report = await world.billing.check()
    assert report.ok, report.findings


async def test_a_run_its_payer_cannot_afford_now_is_refused_with_402_and_nothing_starts(
    world: World,
) -> None:
    http, payer = world.http, world.other
    await world.billing.grant(await user_id(world, payer), 15, "test")
    workflow_id = await world.create(
        {"name": "asker", "agentId": world.priced_id, "skillId": "ask"}, headers=payer
    )
    first = await http.post(f"/api/v1/workflows/{workflow_id}/execute", headers=payer)
    assert first.status_code == 202, first.text
    run_id = first.json()["data"]["id"]
    await read_stream(http, run_id, payer, until="step_input_required")
    held = await balance(world, payer)
    assert held["available"] == 5 and held["held"] == 10  # the run's budget: 10, its step carved from it
    second = await http.post(f"/api/v1/workflows/{workflow_id}/execute", headers=payer)
    assert second.status_code == 402, second.text
    error = second.json()["error"]
    assert error["code"] == "INSUFFICIENT_CREDITS" and "10 credits" in error["message"]
    shown = (await http.get(f"/api/v1/workflows/{workflow_id}", headers=payer)).json()["data"]
    assert [r["id"] for r in shown["runs"]] == [run_id]  # the refused run was never saved
    canceled = await http.post(f"/api/v1/workflow-runs/{run_id}/cancel", headers=payer)
    assert canceled.status_code == 200, canceled.text
    await read_stream(http, run_id, payer)
    restored = await balance(world, payer)
    assert restored["available"] == 15 and restored["held"] == 0 and restored["total_spent"] == 0
    report = await world.billing.check()
    assert report.ok, report.findings


async def test_a_run_started_with_a_capped_key_counts_its_budget_and_gets_back_what_it_did_not_spend(
    world: World,
) -> None:
    http, payer = world.http, world.other
    await world.billing.grant(await user_id(world, payer), 200, "test")
    minted = await http.post("/api/v1/api-keys", json={"name": "capped", "dailySpendCap": 30}, headers=payer)
    assert minted.status_code == 201, minted.text
    key = {"X-API-Key": minted.json()["data"]["key"]}
    paid = {"agentId": world.priced_id}
    workflow_id = await world.create(
        {**paid, "name": "ok", "skillId": "done", "input": {"text": "x"}},
        {**paid, "name": "broken", "skillId": "fail"},
        headers=payer,
    )

    async def execute() -> httpx.Response:
        return await http.post(f"/api/v1/workflows/{workflow_id}/execute", headers=key)

    for _ in range(2):  # each run counts 20, then gives back the 10 its failed step did not spend
        started = await execute()
        assert started.status_code == 202, started.text
        events = await read_stream(http, started.json()["data"]["id"], payer)
        assert events[-1].kind == "run_failed"
    refused = await execute()  # 20 counted today, 30 allowed: the next 20 does not fit
    assert refused.status_code == 402, refused.text
    assert refused.json()["error"]["code"] == "SPEND_CAP_REACHED"
    assert (await balance(world, payer))["total_spent"] == 20
    report = await world.billing.check()
    assert report.ok, report.findings


async def test_workflows_and_runs_are_their_owners_only(world: World) -> None:
    http = world.http
    workflow_id = await world.create(world.step("asker", "ask"))
    run = await world.execute(workflow_id)
    await read_stream(http, run["id"], world.owner, until="step_input_required")
    other = world.other
    reply = {"message": {"role": "user", "parts": [{"type": "text", "data": "Eve"}]}}
    for method, path, body in [
        ("GET", f"/api/v1/workflows/{workflow_id}", None),
        ("POST", f"/api/v1/workflows/{workflow_id}/execute", None),
        ("GET", f"/api/v1/workflow-runs/{run['id']}", None),
        ("POST", f"/api/v1/workflow-runs/{run['id']}/cancel", None),
        ("POST", f"/api/v1/workflow-runs/{run['id']}/steps/0/reply", reply),
        ("GET", f"/api/v1/workflow-runs/{run['id']}/stream", None),
    ]:
        answer = await http.request(method, path, json=body, headers=other)
        assert answer.status_code == 404, (path, answer.text)
        assert answer.json()["error"]["code"] == "NOT_FOUND"
    assert (await http.get("/api/v1/workflows", headers=other)).json()["data"] == []
    assert (await world.run(run["id"]))["steps"][0]["status"] == "input_required"  # untouched
    assert (await http.get("/api/v1/workflows")).status_code == 401
    await http.post(f"/api/v1/workflow-runs/{run['id']}/cancel", headers=world.owner)


async def test_reads_need_workflows_read_writes_workflows_write_and_agent_keys_get_neither(
    world: World,
) -> None:
    http = world.http
    workflow_id = await world.create(world.step("a", "done"))

    async def key(scopes: list[str] | None) -> dict[str, str]:
        body: dict[str, Any] = {"name": "k"} | ({"scopes": scopes} if scopes is not None else {})
        created = await http.post("/api/v1/api-keys", json=body, headers=world.owner)
        assert created.status_code == 201, created.text
        return {"X-API-Key": created.json()["data"]["key"]}

    full = await key(None)  # a key minted without scopes holds its session's: every scope
    assert (await http.get(f"/api/v1/workflows/{workflow_id}", headers=full)).status_code == 200
    tasks_only = await key(["tasks:read", "tasks:write"])
    refused = await http.get("/api/v1/workflows", headers=tasks_only)
    assert refused.status_code == 403 and "workflows:read" in refused.json()["error"]["message"]
    reader = await key(["workflows:read"])
    assert (await http.get("/api/v1/workflows", headers=reader)).status_code == 200
    write = await http.post(f"/api/v1/workflows/{workflow_id}/execute", headers=reader)
    assert write.status_code == 403 and "workflows:write" in write.json()["error"]["message"]
    agent = await agent_key(http, world.owner, world.agent_id)  # the owner's own scopes: all of them
    for method, path, body in [
        ("GET", "/api/v1/workflows", None),
        ("GET", f"/api/v1/workflows/{workflow_id}", None),
        ("POST", "/api/v1/workflows", {"name": "x", "steps": [world.step("a", "done")]}),
        ("POST", f"/api/v1/workflows/{workflow_id}/execute", None),
    ]:
        answer = await http.request(method, path, json=body, headers=agent)
        assert answer.status_code == 403, (path, answer.text)
    assert len((await http.get("/api/v1/workflows", headers=world.owner)).json()["data"]) == 1
