"""Several gateway processes on one PostgreSQL and Redis behave as one gateway (issue 15).

Real `a2a-gateway serve` processes and the real echo agent: a task sent to one process is followed on
another (A2A SubscribeToTask and tasks/resubscribe, the REST stream with Last-Event-ID) and canceled on
a third; every event arrives once and in order; a relay whose process is SIGKILLed is taken over by
another process and re-attached to its upstream task.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.cluster import gateways
from tests.cluster.gateways import Cluster, cluster, countdown, rpc, sse_results

pytestmark = pytest.mark.slow

WAIT_S = 30.0


async def send(client: httpx.AsyncClient, made: Cluster, gateway: int, n: int) -> str:
    """Start a countdown of ``n`` chunks through one process; its task id."""
    answer = await client.post(
        made.rpc_url(made.gateways[gateway]), json=rpc("SendMessage", countdown(n)), headers=made.auth
    )
    body = answer.json()
    assert "result" in body, body
    return str(body["result"]["task"]["id"])


async def follow_v1(
    client: httpx.AsyncClient, made: Cluster, gateway: int, task_id: str
) -> list[dict[str, Any]]:
    """Every result of SubscribeToTask on one process, to the end of the stream."""
    results: list[dict[str, Any]] = []
    body = rpc("SubscribeToTask", {"id": task_id})
    async with client.stream(
        "POST", made.rpc_url(made.gateways[gateway]), json=body, headers=made.auth
    ) as answer:
        assert answer.status_code == 200
        async for result in sse_results(answer):
            results.append(result)
    return results


def chunks(results: list[dict[str, Any]]) -> list[str]:
    """The countdown's chunk texts in the order the stream carried them (the snapshot's first)."""
    texts: list[str] = []
    first = results[0].get("task", {})
    for artifact in first.get("artifacts", []):
        texts.extend(part["text"] for part in artifact["parts"])
    for result in results[1:]:
        update = result.get("artifactUpdate")
        if update is not None:
            texts.extend(part["text"] for part in update["artifact"]["parts"])
    return texts


def final_state(results: list[dict[str, Any]]) -> str:
    last = results[-1]
    return str(last.get("statusUpdate", last.get("task", {})).get("status", {}).get("state"))


async def test_send_on_one_process_subscribe_on_another_cancel_on_a_third(tmp_path: Path) -> None:
    async with cluster(tmp_path, 3) as made, httpx.AsyncClient(timeout=WAIT_S) as client:
        try:
            task_id = await send(client, made, 0, 100)
            following = asyncio.create_task(follow_v1(client, made, 1, task_id))
            # The countdown goes on (on process 0) while process 1 streams it; then process 2 cancels.
            async with asyncio.timeout(WAIT_S):
                while True:
                    got = await client.post(
                        made.rpc_url(made.gateways[2]),
                        json=rpc("GetTask", {"id": task_id}),
                        headers=made.auth,
                    )
                    task = got.json()["result"]
                    if task.get("artifacts") and len(task["artifacts"][0]["parts"]) >= 5:
                        break
                    await asyncio.sleep(0.05)
            canceled = await client.post(
                made.rpc_url(made.gateways[2]), json=rpc("CancelTask", {"id": task_id}), headers=made.auth
            )
            assert canceled.json()["result"]["status"]["state"] == "TASK_STATE_CANCELED", canceled.text
            async with asyncio.timeout(WAIT_S):
                results = await following
            assert final_state(results) == "TASK_STATE_CANCELED"
            texts = chunks(results)
            # Each chunk once, in order, with none missing between the snapshot and the end.
            assert texts == [str(i) for i in range(100, 100 - len(texts), -1)] and len(texts) >= 5
            stored = await client.post(
                made.rpc_url(made.gateways[1]), json=rpc("GetTask", {"id": task_id}), headers=made.auth
            )
            assert stored.json()["result"]["status"]["state"] == "TASK_STATE_CANCELED"
        except BaseException:
            print(made.logs())
            raise


async def test_events_of_many_tasks_arrive_once_and_in_order_on_every_process(tmp_path: Path) -> None:
    async with cluster(tmp_path, 3) as made, httpx.AsyncClient(timeout=WAIT_S) as client:
        try:
            tasks = [(await send(client, made, i % 3, 25), i % 3) for i in range(6)]
            followers = [
                asyncio.create_task(follow_v1(client, made, other, task_id))
                for task_id, home in tasks
                for other in range(3)
                if other != home
            ]
            async with asyncio.timeout(WAIT_S):
                streams = await asyncio.gather(*followers)
            for results in streams:
                assert final_state(results) == "TASK_STATE_COMPLETED", results[-1]
                assert chunks(results) == [str(i) for i in range(25, 0, -1)]
        except BaseException:
            print(made.logs())
            raise


async def test_a_rest_stream_resumes_on_another_process_with_last_event_id(tmp_path: Path) -> None:
    async with cluster(tmp_path, 2) as made, httpx.AsyncClient(timeout=WAIT_S) as client:
        try:
            task_id = await send(client, made, 0, 40)
            seen: list[tuple[str, str, Any]] = []
            url = f"/api/v1/tasks/{task_id}/stream"
            async with client.stream("GET", made.gateways[0].url + url, headers=made.auth) as first:
                async for event in rest_events(first):
                    seen.append(event)
                    if sum(1 for _, name, _ in seen if name == "artifact") >= 3:
                        break
            last_id = seen[-1][0]
            headers = made.auth | {"Last-Event-ID": last_id}
            rest: list[tuple[str, str, Any]] = []
            async with asyncio.timeout(WAIT_S):
                async with client.stream("GET", made.gateways[1].url + url, headers=headers) as again:
                    async for event in rest_events(again):
                        rest.append(event)
            names = [name for _, name, _ in rest]
            assert names[0] == "artifact" and names[-1] == "complete"
            texts = [p["data"] for _, name, doc in seen + rest if name == "artifact" for p in doc["parts"]]
            # What the first stream saw (its snapshot was as of the start) and what the second added.
            snapshot_texts = [p["data"] for a in seen[0][2].get("artifacts", []) for p in a["parts"]]
            assert snapshot_texts + texts == [str(i) for i in range(40, 0, -1)][: len(snapshot_texts + texts)]
            complete = rest[-1][2]
            assert [p["data"] for p in complete["artifacts"][0]["parts"]] == [
                str(i) for i in range(40, 0, -1)
            ]
        except BaseException:
            print(made.logs())
            raise


async def test_a_relay_whose_process_is_killed_is_taken_over_and_finishes(tmp_path: Path) -> None:
    async with cluster(tmp_path, 2) as made, httpx.AsyncClient(timeout=WAIT_S) as client:
        try:
            task_id = await send(client, made, 0, 80)  # 8 s upstream
            following = asyncio.create_task(follow_v1(client, made, 1, task_id))
            await asyncio.sleep(0)  # the subscription starts before the kill
            async with asyncio.timeout(WAIT_S):
                while True:
                    got = await client.post(
                        made.rpc_url(made.gateways[1]),
                        json=rpc("GetTask", {"id": task_id}),
                        headers=made.auth,
                    )
                    task = got.json()["result"]
                    if task.get("artifacts") and len(task["artifacts"][0]["parts"]) >= 3:
                        break
                    await asyncio.sleep(0.05)
            made.gateways[0].kill()
            async with asyncio.timeout(WAIT_S):
                results = await following
            assert final_state(results) == "TASK_STATE_COMPLETED", results[-1]
            got = await client.post(
                made.rpc_url(made.gateways[1]), json=rpc("GetTask", {"id": task_id}), headers=made.auth
            )
            task = got.json()["result"]
            assert task["status"]["state"] == "TASK_STATE_COMPLETED"
            assert [p["text"] for p in task["artifacts"][0]["parts"]] == [str(i) for i in range(80, 0, -1)]
            assert (
                "took over" in made.gateways[1].output() or "taking a task over" in made.gateways[1].output()
            )
        except BaseException:
            print(made.logs())
            raise


async def rest_events(response: httpx.Response) -> Any:
    """(id, event, data) of each SSE event of a REST task stream."""
    event_id, name = "", ""
    async for line in response.aiter_lines():
        if line.startswith("id:"):
            event_id = line[3:].strip()
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            with contextlib.suppress(ValueError):
                yield event_id, name, orjson.loads(line[5:].strip())


def ask(text: str, task_id: str | None = None) -> dict[str, Any]:
    """SendMessage params for the echo agent's ask skill (or the follow-up to its question)."""
    message: dict[str, Any] = {
        "messageId": secrets.token_hex(8),
        "role": "ROLE_USER",
        "parts": [{"text": text}],
    }
    if task_id is not None:
        message["taskId"] = task_id
    return {"message": message, "metadata": {"skillId": "ask"}}


async def test_a_follow_up_sent_to_another_process_reaches_the_paused_task(tmp_path: Path) -> None:
    async with cluster(tmp_path, 2) as made, httpx.AsyncClient(timeout=WAIT_S) as client:
        try:
            first = await client.post(
                made.rpc_url(made.gateways[0]), json=rpc("SendMessage", ask("hi")), headers=made.auth
            )
            task = first.json()["result"]["task"]
            assert task["status"]["state"] == "TASK_STATE_INPUT_REQUIRED", first.text
            answer = await client.post(
                made.rpc_url(made.gateways[1]),
                json=rpc("SendMessage", ask("Ada", task["id"])),
                headers=made.auth,
            )
            done = answer.json()["result"]["task"]
            assert done["status"]["state"] == "TASK_STATE_COMPLETED", answer.text
            assert done["artifacts"][0]["parts"][0]["text"] == "Hello, Ada!"
        except BaseException:
            print(made.logs())
            raise


async def test_a_paused_relay_whose_process_is_killed_takes_its_follow_up_elsewhere(tmp_path: Path) -> None:
    async with cluster(tmp_path, 2) as made, httpx.AsyncClient(timeout=WAIT_S) as client:
        try:
            first = await client.post(
                made.rpc_url(made.gateways[0]), json=rpc("SendMessage", ask("hi")), headers=made.auth
            )
            task = first.json()["result"]["task"]
            assert task["status"]["state"] == "TASK_STATE_INPUT_REQUIRED", first.text
            made.gateways[0].kill()
            # The follow-up reaches the other process before or after its lease has expired: either way
            # the relay is re-attached to the upstream task, which still waits for the answer.
            answer = await client.post(
                made.rpc_url(made.gateways[1]),
                json=rpc("SendMessage", ask("Grace", task["id"])),
                headers=made.auth,
            )
            body = answer.json()
            while "error" in body and "try again" in body["error"]["message"]:
                await asyncio.sleep(0.2)
                answer = await client.post(
                    made.rpc_url(made.gateways[1]),
                    json=rpc("SendMessage", ask("Grace", task["id"])),
                    headers=made.auth,
                )
                body = answer.json()
            done = body["result"]["task"]
            assert done["status"]["state"] == "TASK_STATE_COMPLETED", answer.text
            assert done["artifacts"][0]["parts"][0]["text"] == "Hello, Grace!"
        except BaseException:
            print(made.logs())
            raise


def workflow_scopes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test user's key may make and run workflows."""
    monkeypatch.setattr(gateways, "SCOPES", [*gateways.SCOPES, "workflows:read", "workflows:write"])


def quick_takeover(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workflow leases short enough that a killed driver's run is taken over within seconds."""
    base = Cluster.env

    def env(self: Cluster, data_dir: Path, port: int) -> dict[str, str]:
        return base(self, data_dir, port) | {
            "A2A_GATEWAY_WORKFLOW_LEASE_SECONDS": "3",
            "A2A_GATEWAY_WORKFLOW_TAKEOVER_SECONDS": "1",
        }

    monkeypatch.setattr(Cluster, "env", env)
    workflow_scopes(monkeypatch)


async def run_workflow(client: httpx.AsyncClient, made: Cluster, gateway: int, n: int) -> str:
    """A one-step workflow (a countdown of ``n``) created and run through one process; the run's id."""
    base = made.gateways[gateway].url
    step = {"name": "count", "agentId": made.agent_id, "skillId": "countdown", "input": {"text": str(n)}}
    created = await client.post(
        base + "/api/v1/workflows",
        json={"name": "count", "description": "", "steps": [step]},
        headers=made.auth,
    )
    assert created.status_code == 201, created.text
    workflow_id = created.json()["data"]["id"]
    ran = await client.post(base + f"/api/v1/workflows/{workflow_id}/execute", json={}, headers=made.auth)
    assert ran.status_code == 202, ran.text
    return str(ran.json()["data"]["id"])


async def run_events(
    client: httpx.AsyncClient, made: Cluster, gateway: int, run_id: str
) -> list[tuple[str, str, Any]]:
    url = made.gateways[gateway].url + f"/api/v1/workflow-runs/{run_id}/stream"
    async with client.stream("GET", url, headers=made.auth) as answer:
        assert answer.status_code == 200
        return [event async for event in rest_events(answer)]


async def test_a_workflow_run_streams_on_a_process_that_does_not_drive_it_and_survives_its_driver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    quick_takeover(monkeypatch)
    async with cluster(tmp_path, 2) as made, httpx.AsyncClient(timeout=WAIT_S) as client:
        try:
            watched = await run_workflow(client, made, 0, 10)
            async with asyncio.timeout(WAIT_S):
                events = await run_events(client, made, 1, watched)
            assert [name for _, name, _ in events] == ["step_started", "step_completed", "run_completed"]
            assert [int(i) for i, _, _ in events] == [1, 2, 3]
            # Now its driver dies mid-run: the other process takes the run (and its step's task) over.
            killed = await run_workflow(client, made, 0, 60)
            following = asyncio.create_task(run_events(client, made, 1, killed))
            async with asyncio.timeout(WAIT_S):
                while True:
                    run = (
                        await client.get(
                            made.gateways[1].url + f"/api/v1/workflow-runs/{killed}", headers=made.auth
                        )
                    ).json()
                    step = run["data"]["steps"][0]
                    if step["status"] == "running" and step.get("taskId"):
                        task = (
                            await client.get(
                                made.gateways[1].url + f"/api/v1/tasks/{step['taskId']}", headers=made.auth
                            )
                        ).json()
                        # A few chunks in: the upstream task's id is stored, so the relay can be re-attached
                        # (a call killed before it learned that id cannot be, and fails).
                        if sum(len(a["parts"]) for a in task["data"].get("artifacts", [])) >= 3:
                            break
                    await asyncio.sleep(0.1)
            made.gateways[0].kill()
            async with asyncio.timeout(WAIT_S):
                events = await following
            assert [name for _, name, _ in events][-1] == "run_completed", events
            assert [int(i) for i, _, _ in events] == list(range(1, len(events) + 1))
        except BaseException:
            print(made.logs())
            raise


async def test_a_run_is_answered_and_canceled_through_a_process_that_does_not_drive_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workflow_scopes(monkeypatch)  # the default lease: the driver keeps its run however busy the machine
    async with cluster(tmp_path, 2) as made, httpx.AsyncClient(timeout=WAIT_S) as client:
        try:
            a, b = made.gateways[0].url, made.gateways[1].url
            step = {"name": "ask", "agentId": made.agent_id, "skillId": "ask", "input": {"text": "hi"}}
            created = await client.post(
                a + "/api/v1/workflows",
                json={"name": "ask", "description": "", "steps": [step]},
                headers=made.auth,
            )
            workflow_id = created.json()["data"]["id"]
            run_id = (
                await client.post(a + f"/api/v1/workflows/{workflow_id}/execute", json={}, headers=made.auth)
            ).json()["data"]["id"]
            async with asyncio.timeout(WAIT_S):
                while (await client.get(b + f"/api/v1/workflow-runs/{run_id}", headers=made.auth)).json()[
                    "data"
                ]["steps"][0]["status"] != "input_required":
                    await asyncio.sleep(0.1)
            answered = await client.post(
                b + f"/api/v1/workflow-runs/{run_id}/steps/0/reply",
                json={"message": {"role": "user", "parts": [{"type": "text", "data": "Ada"}]}},
                headers=made.auth,
            )
            assert answered.status_code == 200, answered.text
            async with asyncio.timeout(WAIT_S):
                events = await run_events(client, made, 1, run_id)
            assert events[-1][1] == "run_completed", events
            # A long run driven by process 0, canceled through process 1.
            long_run = await run_workflow(client, made, 0, 100)
            async with asyncio.timeout(WAIT_S):
                while (await client.get(b + f"/api/v1/workflow-runs/{long_run}", headers=made.auth)).json()[
                    "data"
                ]["steps"][0]["status"] != "running":
                    await asyncio.sleep(0.1)
            canceled = await client.post(b + f"/api/v1/workflow-runs/{long_run}/cancel", headers=made.auth)
            assert canceled.status_code == 200, canceled.text
            assert canceled.json()["data"]["status"] == "canceled"
        except BaseException:
            print(made.logs())
            raise
