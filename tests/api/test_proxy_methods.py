"""Every JSON-RPC method through the per-agent proxy endpoint ``/a2a/agents/{agentId}``, in both versions.

The gateway runs live (uvicorn on loopback, so a subscription can stay open while another call is made);
its outbound client reaches fake hosts through an injected transport:

- ``echo.test`` is the kit echo agent, served live on another loopback port so that its streams really
  stream (an in-process ASGI transport would hand over a whole stream only once it had ended). It is
  registered twice from its cards: as a 1.0 agent (``cardUrl http://echo.test``) and as a 0.3 agent
  (``cardUrl http://echo.test/.well-known/agent.json?A2A-Version=0.3``, its 0.3-only card). Each caller
  version is run against each agent version, so translation is checked in both directions (0.3
  caller -> 1.0 agent, 1.0 caller -> 0.3 agent), and the transport records which method name and
  ``A2A-Version`` header the upstream received;
- ``http500.test`` answers HTTP 500, ``badjson.test`` answers 200 with a body that is not JSON, and
  ``down.test`` refuses the connection;
- ``hooks.test`` receives push notifications.

Sends through the proxy are routed to its agent; the other methods work on the caller's gateway tasks.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from a2a_gateway.app import create_agent_app, create_gateway_app
from agents_examples.echo import ECHO_AGENT
from tests.conftest import LiveServer, free_port, make_settings
from tests.factories import envelope, error_of, legacy_message, rpc, user_message
from tests.streaming_helpers import assert_event_stream, read_plain_error, stream_call, wait_for

PUBLIC = "93.184.216.34"
HOOK = "http://hooks.test/hook"

# The proxied methods by caller version; 0.3 has no ListTasks.
METHODS = {
    "1.0": {
        "send": "SendMessage",
        "stream": "SendStreamingMessage",
        "get": "GetTask",
        "cancel": "CancelTask",
        "subscribe": "SubscribeToTask",
    },
    "0.3": {
        "send": "message/send",
        "stream": "message/stream",
        "get": "tasks/get",
        "cancel": "tasks/cancel",
        "subscribe": "tasks/resubscribe",
    },
}
# What the upstream must receive for each agent version (method names and A2A-Version header).
UPSTREAM = {
    "v1": ("1.0", {"send": "SendMessage", "stream": "SendStreamingMessage", "cancel": "CancelTask"}),
    "v03": (None, {"send": "message/send", "stream": "message/stream", "cancel": "tasks/cancel"}),
}
PAIRS = [("1.0", "v1"), ("1.0", "v03"), ("0.3", "v1"), ("0.3", "v03")]
PAIR_IDS = ["caller1.0-agent1.0", "caller1.0-agent0.3", "caller0.3-agent1.0", "caller0.3-agent0.3"]


async def resolver(host: str, port: int) -> list[str]:
    return [PUBLIC] if host.endswith(".test") else []


@dataclass
class Router(httpx.AsyncBaseTransport):
    """Fake hosts for the gateway's outbound client, recording what each host was sent."""

    echo_port: int
    calls: list[tuple[str, str | None, str]] = field(default_factory=list)
    hooks: list[dict[str, Any]] = field(default_factory=list)
    network: httpx.AsyncHTTPTransport = field(default_factory=httpx.AsyncHTTPTransport)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # The Host header names the host even if the SSRF guard pinned the URL to the vetted address.
        host = request.headers.get("Host", request.url.host).split(":")[0]
        body = await request.aread()
        if host == "hooks.test":
            self.hooks.append(json.loads(body))
            return httpx.Response(204)
        if request.method == "POST":
            self.calls.append((host, request.headers.get("A2A-Version"), json.loads(body)["method"]))
        if host == "echo.test":
            url = request.url.copy_with(scheme="http", host="127.0.0.1", port=self.echo_port)
            forwarded = httpx.Request(request.method, url, headers=request.headers, content=body)
            return await self.network.handle_async_request(forwarded)
        if host == "http500.test":
            return httpx.Response(500, content=b"Internal Server Error")
        if host == "badjson.test":
            return httpx.Response(200, headers={"content-type": "application/json"}, content=b"{not json")
        raise httpx.ConnectError("connection refused", request=request)

    def upstream_methods(self) -> list[tuple[str | None, str]]:
        """(A2A-Version header, method) of every JSON-RPC call the echo upstream received."""
        return [(header, method) for host, header, method in self.calls if host == "echo.test"]


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    echo = LiveServer(
        create_agent_app(ECHO_AGENT, make_settings(tmp_path / "echo", public_url="http://echo.test")),
        free_port(),
    )
    await echo.start()  # before the gateway's port is picked, so the two cannot get the same free port
    router = Router(int(echo.url.rsplit(":", 1)[1]))
    port = free_port()
    gateway = create_gateway_app(
        make_settings(tmp_path / "gw", public_url=f"http://127.0.0.1:{port}", outbound_allowlist=[]),
        local_skills=ECHO_AGENT.skills,
        outbound_transport=router,
        resolver=resolver,
    )
    server = LiveServer(gateway, port)
    try:
        await server.start()
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=10.0) as gw,
            httpx.AsyncClient(base_url=echo.url, timeout=10.0) as up,
        ):
            credentials = {"email": "p@example.com", "password": "long enough"}
            await gw.post("/api/v1/auth/register", json=credentials)
            token = (await gw.post("/api/v1/auth/login", json=credentials)).json()["data"]["accessToken"]
            owner = {"Authorization": f"Bearer {token}"}

            async def register(**body: Any) -> str:
                response = await gw.post("/api/v1/agents", json=body, headers=owner)
                assert response.status_code == 201, response.text
                agent_id: str = response.json()["data"]["id"]
                return agent_id

            def broken(host: str) -> dict[str, Any]:
                return {"name": host, "endpoint": f"http://{host}/a2a", "skills": [{"id": "x", "name": "X"}]}

            yield {
                "gw": gw,
                "upstream": up,
                "router": router,
                "v1": await register(cardUrl="http://echo.test"),
                "v03": await register(cardUrl="http://echo.test/.well-known/agent.json?A2A-Version=0.3"),
                "http500": await register(**broken("http500.test")),
                "badjson": await register(**broken("badjson.test")),
                "down": await register(**broken("down.test")),
            }
    finally:
        await server.stop()
        await echo.stop()
        await router.network.aclose()


# --- helpers that hide the version differences --------------------------------------------------------


def header(caller: str) -> str | None:
    """The A2A-Version header a caller sends (0.3 callers send none)."""
    return "1.0" if caller == "1.0" else None


def send_params(caller: str, text: str, skill: str | None = None, **message: Any) -> dict[str, Any]:
    msg = user_message(text, **message) if caller == "1.0" else legacy_message(text, **message)
    params: dict[str, Any] = {"message": msg}
    if skill:
        params["metadata"] = {"skillId": skill}
    return params


def task_of(caller: str, result: dict[str, Any]) -> dict[str, Any]:
    """The task of a send result: 1.0 wraps it in ``{"task"}``, 0.3 answers the bare task."""
    if caller == "1.0":
        task: dict[str, Any] = result["task"]
        return task
    assert result["kind"] == "task", result
    return result


def state(task_or_status_event: dict[str, Any]) -> str:
    """The state in one spelling for both versions: TASK_STATE_INPUT_REQUIRED and input-required alike."""
    raw: str = task_or_status_event["status"]["state"]
    return raw.removeprefix("TASK_STATE_").lower().replace("_", "-")


def texts(task: dict[str, Any]) -> list[list[str]]:
    return [[p["text"] for p in a["parts"]] for a in task.get("artifacts", [])]


def event_kind(caller: str, result: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(task | status | artifact | message, the event body) for a 1.0 StreamResponse or a 0.3 event."""
    if caller == "1.0":
        [(key, body)] = result.items()
        names = {"task": "task", "statusUpdate": "status", "artifactUpdate": "artifact", "message": "message"}
        return names[key], body
    names = {"task": "task", "status-update": "status", "artifact-update": "artifact", "message": "message"}
    return names[result["kind"]], result


@dataclass
class Proxy:
    """One caller version talking to one registered agent through ``/a2a/agents/{id}``."""

    net: dict[str, Any]
    caller: str
    agent: str

    @property
    def path(self) -> str:
        return f"/a2a/agents/{self.net[self.agent]}"

    async def call(self, key: str, params: Any) -> dict[str, Any]:
        method = METHODS[self.caller].get(key, key)
        return await rpc(self.net["gw"], method, params, version=header(self.caller), path=self.path)

    async def result(self, key: str, params: Any) -> Any:
        body = await self.call(key, params)
        assert "result" in body, body
        return body["result"]

    async def send(self, text: str, skill: str | None = None, **message: Any) -> dict[str, Any]:
        return task_of(
            self.caller, await self.result("send", send_params(self.caller, text, skill, **message))
        )

    def upstream_saw(self, key: str) -> None:
        """The echo upstream received this operation in the agent's own protocol version."""
        expected_header, names = UPSTREAM[self.agent]
        router: Router = self.net["router"]
        assert (expected_header, names[key]) in router.upstream_methods(), router.calls


@pytest.fixture(params=PAIRS, ids=PAIR_IDS)
def proxy(request: pytest.FixtureRequest, net: dict[str, Any]) -> Proxy:
    caller, agent = request.param
    return Proxy(net, caller, agent)


async def upstream_tasks(net: dict[str, Any]) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = (await rpc(net["upstream"], "ListTasks", {}))["result"]["tasks"]
    return tasks


# --- the methods --------------------------------------------------------------------------------------


async def test_send_then_get(proxy: Proxy) -> None:
    task = await proxy.send("via proxy")
    proxy.upstream_saw("send")
    assert state(task) == "completed"
    assert texts(task) == [["via proxy"]]
    got = await proxy.result("get", {"id": task["id"]})
    assert got["id"] == task["id"] and state(got) == "completed"
    assert texts(got) == [["via proxy"]]
    if proxy.caller == "0.3":
        assert got["kind"] == "task" and got["artifacts"][0]["parts"][0]["kind"] == "text"
    # The gateway task is its own: the upstream holds a different task that mirrors it.
    [upstream] = await upstream_tasks(proxy.net)
    assert upstream["id"] != task["id"] and upstream["status"]["state"] == "TASK_STATE_COMPLETED"


async def test_streaming_send_keeps_chunks_and_order(proxy: Proxy) -> None:
    params = send_params(proxy.caller, "3", skill="countdown")
    method = METHODS[proxy.caller]["stream"]
    async with stream_call(
        proxy.net["gw"], method, params, version=header(proxy.caller), path=proxy.path
    ) as reader:
        assert_event_stream(reader)
        results = await reader.results()
    proxy.upstream_saw("stream")
    events = [event_kind(proxy.caller, r) for r in results]
    kinds = [k for k, _ in events]
    assert kinds[0] == "task" and kinds[-1] == "status", kinds
    task_id = events[0][1]["id"]
    chunks = [body for kind, body in events if kind == "artifact"]
    assert [c["artifact"]["parts"][0]["text"] for c in chunks] == ["3", "2", "1"]
    assert [bool(c.get("append")) for c in chunks] == [False, True, True]
    assert chunks[-1]["lastChunk"] is True
    assert {c["taskId"] for c in chunks} == {task_id}
    last = events[-1][1]
    assert state(last) == "completed" and last["taskId"] == task_id
    if proxy.caller == "0.3":
        assert last["final"] is True
    got = await proxy.result("get", {"id": task_id})
    assert state(got) == "completed" and texts(got) == [["3", "2", "1"]]


@pytest.mark.parametrize("agent", ["v1", "v03"])
async def test_list_tasks_is_1_0_only(net: dict[str, Any], agent: str) -> None:
    v1 = Proxy(net, "1.0", agent)
    first = await v1.send("one")
    second = await v1.send("two")
    listed = await v1.result("ListTasks", {})
    ids = {t["id"] for t in listed["tasks"]}
    assert {first["id"], second["id"]} <= ids and listed["totalSize"] >= 2
    assert all(state(t) == "completed" for t in listed["tasks"])
    # 0.3 has no list method: ListTasks without the 1.0 header is the other version's method,
    # and there is no tasks/list at all.
    legacy = Proxy(net, "0.3", agent)
    assert error_of(await legacy.call("ListTasks", {}))["code"] == -32009
    assert error_of(await legacy.call("tasks/list", {}))["code"] == -32601


async def test_cancel_paused_task_cancels_the_upstream_task(proxy: Proxy) -> None:
    asked = await proxy.send("hi", skill="ask")
    assert state(asked) == "input-required"
    assert asked["status"]["message"]["parts"][0]["text"] == "What is your name?"
    canceled = await proxy.result("cancel", {"id": asked["id"]})
    assert canceled["id"] == asked["id"] and state(canceled) == "canceled"

    async def upstream_canceled() -> bool:
        tasks = await upstream_tasks(proxy.net)
        return bool(tasks) and all(t["status"]["state"] == "TASK_STATE_CANCELED" for t in tasks)

    await wait_for(upstream_canceled)
    proxy.upstream_saw("cancel")
    assert state(await proxy.result("get", {"id": asked["id"]})) == "canceled"
    again = error_of(await proxy.call("cancel", {"id": asked["id"]}))
    assert again["code"] == -32002


async def test_subscribe_to_paused_task_then_follow_up(proxy: Proxy) -> None:
    asked = await proxy.send("hi", skill="ask")
    assert state(asked) == "input-required"
    method = METHODS[proxy.caller]["subscribe"]
    async with stream_call(
        proxy.net["gw"], method, {"id": asked["id"]}, version=header(proxy.caller), path=proxy.path
    ) as reader:
        assert_event_stream(reader)
        [snapshot] = await reader.until(lambda frame: True)
        kind, body = event_kind(proxy.caller, snapshot.result)
        assert kind == "task" and body["id"] == asked["id"] and state(body) == "input-required"
        # The follow-up goes through the same proxy URL (as an SDK client built from the proxy card does).
        done = await proxy.send("Ada", taskId=asked["id"])
        rest = await reader.results()
    assert done["id"] == asked["id"] and state(done) == "completed"
    assert texts(done) == [["Hello, Ada!"]]
    events = [event_kind(proxy.caller, r) for r in rest]
    assert [k for k, _ in events][-1] == "status" and state(events[-1][1]) == "completed"
    artifacts = [body["artifact"]["parts"][0]["text"] for kind, body in events if kind == "artifact"]
    assert artifacts == ["Hello, Ada!"]
    assert {body["taskId"] for kind, body in events if kind != "task"} == {asked["id"]}
    # A finished task cannot be subscribed to: plain JSON in 1.0, a stream of that one error in 0.3.
    async with stream_call(
        proxy.net["gw"], method, {"id": asked["id"]}, version=header(proxy.caller), path=proxy.path
    ) as late:
        if proxy.caller == "1.0":
            assert (await read_plain_error(late))["code"] == -32004
        else:
            assert_event_stream(late)
            [frame] = await late.rest()
            assert frame.event == "error" and frame.body["error"]["code"] == -32004


async def test_subscribe_to_running_streamed_task(net: dict[str, Any]) -> None:
    v1 = Proxy(net, "1.0", "v03")
    params = send_params("1.0", "5", skill="countdown")
    async with stream_call(net["gw"], "SendStreamingMessage", params, path=v1.path) as sender:
        [first] = await sender.until(lambda frame: True)
        task_id = first.result["task"]["id"]
        async with stream_call(
            net["gw"], "tasks/resubscribe", {"id": task_id}, version=None, path=v1.path
        ) as sub:
            assert_event_stream(sub)
            watched = await sub.results()
        sent = await sender.results()
    assert watched[0]["kind"] == "task" and watched[0]["id"] == task_id
    assert watched[-1]["kind"] == "status-update" and watched[-1]["final"] is True
    assert watched[-1]["status"]["state"] == "completed"
    assert sent[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"


@pytest.mark.parametrize("agent", ["v1", "v03"])
async def test_push_config_crud_1_0(net: dict[str, Any], agent: str) -> None:
    proxy = Proxy(net, "1.0", agent)
    asked = await proxy.send("hi", skill="ask")
    task_id = asked["id"]
    created = await proxy.result(
        "CreateTaskPushNotificationConfig",
        {
            "taskId": task_id,
            "url": HOOK,
            "token": "t",
            "authentication": {"scheme": "Bearer", "credentials": "c"},
        },
    )
    assert created["id"] and created["taskId"] == task_id and created["url"] == HOOK
    got = await proxy.result("GetTaskPushNotificationConfig", {"taskId": task_id, "id": created["id"]})
    assert got == created
    listed = await proxy.result("ListTaskPushNotificationConfigs", {"taskId": task_id})
    assert listed["configs"] == [created]
    # The config is live: the cancel of the proxied task is pushed to it.
    await proxy.result("cancel", {"id": task_id})

    async def pushed_cancel() -> bool:
        return any(
            h.get("statusUpdate", {}).get("status", {}).get("state") == "TASK_STATE_CANCELED"
            and h["statusUpdate"]["taskId"] == task_id
            for h in net["router"].hooks
        )

    await wait_for(pushed_cancel)
    deleted = await proxy.result("DeleteTaskPushNotificationConfig", {"taskId": task_id, "id": created["id"]})
    assert deleted == {}
    assert (await proxy.result("ListTaskPushNotificationConfigs", {"taskId": task_id}))["configs"] == []
    missing = await proxy.call("GetTaskPushNotificationConfig", {"taskId": task_id, "id": created["id"]})
    assert error_of(missing)["code"] == -32001


@pytest.mark.parametrize("agent", ["v1", "v03"])
async def test_push_config_crud_0_3(net: dict[str, Any], agent: str) -> None:
    proxy = Proxy(net, "0.3", agent)
    asked = await proxy.send("hi", skill="ask")
    task_id = asked["id"]
    config = {"url": HOOK, "token": "tok", "authentication": {"schemes": ["Bearer"], "credentials": "s"}}
    created = await proxy.result(
        "tasks/pushNotificationConfig/set", {"taskId": task_id, "pushNotificationConfig": config}
    )
    config_id = created["pushNotificationConfig"]["id"]
    assert created["taskId"] == task_id and config_id
    assert created["pushNotificationConfig"]["url"] == HOOK
    got = await proxy.result(
        "tasks/pushNotificationConfig/get", {"id": task_id, "pushNotificationConfigId": config_id}
    )
    assert got == created
    assert await proxy.result("tasks/pushNotificationConfig/get", {"id": task_id}) == created
    assert await proxy.result("tasks/pushNotificationConfig/list", {"id": task_id}) == [created]
    deleted = await proxy.call(
        "tasks/pushNotificationConfig/delete", {"id": task_id, "pushNotificationConfigId": config_id}
    )
    assert deleted["result"] is None
    assert await proxy.result("tasks/pushNotificationConfig/list", {"id": task_id}) == []


# --- upstream failures --------------------------------------------------------------------------------

FAILURES = [
    ("http500", -32051, "UPSTREAM_UNAVAILABLE"),
    ("badjson", -32006, "INVALID_AGENT_RESPONSE"),
    ("down", -32051, "UPSTREAM_UNAVAILABLE"),
]


@pytest.mark.parametrize(("agent", "code", "reason"), FAILURES, ids=[f[0] for f in FAILURES])
@pytest.mark.parametrize("caller", ["1.0", "0.3"])
async def test_unary_upstream_failures(
    net: dict[str, Any], caller: str, agent: str, code: int, reason: str
) -> None:
    proxy = Proxy(net, caller, agent)
    error = error_of(await proxy.call("send", send_params(caller, "hello")))
    assert error["code"] == code, error
    if caller == "1.0":
        assert error["data"][0]["reason"] == reason
    else:
        assert not isinstance(error.get("data"), list)
    assert "not json" not in error["message"] and "Internal Server Error" not in error["message"]
    # No gateway task is left behind by a call that never started.
    assert (await rpc(net["gw"], "ListTasks", {}))["result"]["totalSize"] == 0


@pytest.mark.parametrize(("agent", "code", "reason"), FAILURES, ids=[f[0] for f in FAILURES])
@pytest.mark.parametrize("caller", ["1.0", "0.3"])
async def test_streaming_upstream_failures(
    net: dict[str, Any], caller: str, agent: str, code: int, reason: str
) -> None:
    proxy = Proxy(net, caller, agent)
    method = METHODS[caller]["stream"]
    params = send_params(caller, "hello")
    async with stream_call(net["gw"], method, params, version=header(caller), path=proxy.path) as reader:
        error = await read_plain_error(reader)  # the error comes before any SSE byte
    assert error["code"] == code, error
    if caller == "1.0":
        assert error["data"][0]["reason"] == reason
    assert (await rpc(net["gw"], "ListTasks", {}))["result"]["totalSize"] == 0


async def test_proxy_envelope_is_checked_before_routing(net: dict[str, Any]) -> None:
    """A bad request to the proxy never reaches the agent."""
    path = f"/a2a/agents/{net['v1']}"
    response = await net["gw"].post(path, content=b"{nope", headers={"A2A-Version": "1.0"})
    assert response.json()["error"]["code"] == -32700
    bad = await net["gw"].post(
        path, json=envelope("SendMessage", {"message": {}}), headers={"A2A-Version": "1.0"}
    )
    assert error_of(bad.json())["code"] == -32602
    assert net["router"].upstream_methods() == []
