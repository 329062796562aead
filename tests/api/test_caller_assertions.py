"""Caller assertions end to end: every call the gateway relays to an agent carries one in the
``A2A-Caller-Assertion`` header, and it verifies against the gateway's JWKS for that agent, the requesting
user, the key they called with, the gateway task and its skill, with a fresh ``jti`` each time.

The agent is a raw ASGI app that records each request's method and header and answers as a minimal
A2A 1.0 agent; it is reached through the gateway's injected outbound transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
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
from tests.conftest import make_settings
from tests.factories import envelope, rpc, user_message

ISSUER = "http://testserver"  # make_settings' public URL
AGENT_HOST = "agent.test"
CARD = {
    "name": "Recorder",
    "description": "Records who calls it",
    "supportedInterfaces": [
        {"url": f"http://{AGENT_HOST}/a2a", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
    ],
    "version": "1.0.0",
    "capabilities": {"streaming": True},
    "defaultInputModes": ["text/plain"],
    "defaultOutputModes": ["text/plain"],
    "skills": [{"id": "ask", "name": "Ask", "description": "Asks once, then is done", "tags": ["ask"]}],
}


async def resolver(host: str, port: int) -> list[str]:
    return ["93.184.216.34"] if host == AGENT_HOST else []


@dataclass
class Received:
    """One JSON-RPC request the agent received."""

    method: str
    params: dict[str, Any]
    assertion: str | None


@dataclass
class RecordingAgent:
    """A minimal A2A 1.0 agent: a new message is asked a question, a follow-up completes its task."""

    received: list[Received] = field(default_factory=list)
    probed: asyncio.Event = field(default_factory=asyncio.Event)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        if scope["method"] == "GET":
            await self._answer(send, 200, b"application/json", orjson.dumps(CARD))
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = orjson.loads(body)
        header = dict(scope["headers"]).get(b"a2a-caller-assertion")
        method, params = request["method"], request["params"]
        self.received.append(Received(method, params, header.decode() if header is not None else None))
        if method == "SendStreamingMessage":
            frame = {"jsonrpc": "2.0", "id": request["id"], "result": {"task": self._task("COMPLETED")}}
            await self._answer(send, 200, b"text/event-stream", b"data: " + orjson.dumps(frame) + b"\n\n")
            return
        if method == "SendMessage":
            follow_up = params["message"].get("taskId")
            state = "COMPLETED" if follow_up else "INPUT_REQUIRED"
            result: dict[str, Any] = {"task": self._task(state, follow_up)}
        elif method == "CancelTask":
            result = self._task("CANCELED", params["id"])
        else:  # GetTask: the health probe asks for a task that cannot exist
            self.probed.set()
            error = {"code": -32001, "message": "Task not found"}
            reply = {"jsonrpc": "2.0", "id": request["id"], "error": error}
            await self._answer(send, 200, b"application/json", orjson.dumps(reply))
            return
        reply = {"jsonrpc": "2.0", "id": request["id"], "result": result}
        await self._answer(send, 200, b"application/json", orjson.dumps(reply))

    def _task(self, state: str, task_id: str | None = None) -> dict[str, Any]:
        return {
            "id": task_id or f"up-{next(self._ids)}",
            "contextId": "up-ctx",
            "status": {"state": f"TASK_STATE_{state}"},
        }

    @staticmethod
    async def _answer(send: Send, status: int, content_type: bytes, body: bytes) -> None:
        headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@dataclass
class Net:
    """The gateway (its client calls with the user's session) and the agent registered there."""

    gw: httpx.AsyncClient
    agent: RecordingAgent
    agent_id: str
    user_id: str

    def assertions(self, method: str | None = None) -> list[str]:
        """The assertions the agent received (of one method), in order; each request had one."""
        found = [r.assertion for r in self.agent.received if method in (None, r.method)]
        assert found and None not in found, self.agent.received
        return [a for a in found if a is not None]

    async def verified(self, token: str) -> dict[str, Any]:
        """The claims of an assertion, checked against the gateway's published keys."""
        keys = {k["kid"]: k for k in (await self.gw.get("/.well-known/jwks.json")).json()["keys"]}
        header = jwt.get_unverified_header(token)
        assert header["typ"] == "a2a-caller+jwt" and header["alg"] == "EdDSA"
        claims: dict[str, Any] = jwt.decode(
            token,
            jwt.PyJWK(keys[header["kid"]]).key,
            algorithms=["EdDSA"],
            audience=self.agent_id,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "nbf", "jti", "sub", "aud", "iss"]},
        )
        assert claims["exp"] - claims["iat"] == 60  # the default assertion lifetime
        return claims


@contextlib.asynccontextmanager
async def network(tmp_path: Path, **overrides: Any) -> AsyncIterator[Net]:
    agent = RecordingAgent()
    gateway = create_gateway_app(
        make_settings(tmp_path / "gw", outbound_allowlist=[], **overrides),
        outbound_transport=httpx.ASGITransport(app=agent),
        resolver=resolver,
    )
    async with (
        LifespanManager(gateway),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gw") as gw,
    ):
        credentials = {"email": "ada@example.com", "password": "long enough"}
        await gw.post("/api/v1/auth/register", json=credentials)
        login = (await gw.post("/api/v1/auth/login", json=credentials)).json()["data"]
        gw.headers["Authorization"] = f"Bearer {login['accessToken']}"
        created = await gw.post("/api/v1/agents", json={"cardUrl": f"http://{AGENT_HOST}"})
        assert created.status_code == 201, created.text
        yield Net(gw, agent, created.json()["data"]["id"], login["user"]["id"])


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[Net]:
    async with network(tmp_path) as started:
        yield started


def routed(net: Net, text: str = "hello") -> dict[str, Any]:
    return {"message": user_message(text), "metadata": {"agentId": net.agent_id, "skillId": "ask"}}


async def test_a_relayed_call_and_its_follow_up_each_carry_an_assertion_for_the_user_and_task(
    net: Net,
) -> None:
    asked = (await rpc(net.gw, "SendMessage", routed(net)))["result"]["task"]
    assert asked["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    follow_up = {"message": user_message("yes", taskId=asked["id"])}
    done = (await rpc(net.gw, "SendMessage", follow_up))["result"]["task"]
    assert done["status"]["state"] == "TASK_STATE_COMPLETED"

    claims = [await net.verified(token) for token in net.assertions()]
    assert [r.method for r in net.agent.received] == ["SendMessage", "SendMessage"]
    for said in claims:
        assert said["iss"] == ISSUER and said["aud"] == net.agent_id
        assert said["sub"] == net.user_id and said["key_kind"] == "session" and said["key_id"] is None
        assert said["task"] == asked["id"] and said["skill"] == "ask" and said["price"] is None
    assert len({said["jti"] for said in claims}) == 2  # a fresh one per request


async def test_a_user_keys_stream_is_asserted_with_that_key(net: Net) -> None:
    created = await net.gw.post("/api/v1/api-keys", json={"name": "cli"})
    assert created.status_code == 201, created.text
    key = created.json()["data"]
    assert key["key"].startswith("nex_")
    body = envelope("SendStreamingMessage", routed(net))
    net.gw.headers["Authorization"] = f"Bearer {key['key']}"
    headers = {"A2A-Version": "1.0"}
    async with net.gw.stream("POST", "/a2a", json=body, headers=headers) as response:
        frames = [
            orjson.loads(line[6:])["result"] async for line in response.aiter_lines() if line[:6] == "data: "
        ]
    task_id = frames[0]["task"]["id"]
    (token,) = net.assertions("SendStreamingMessage")
    said = await net.verified(token)
    assert said["sub"] == net.user_id and said["key_kind"] == "user" and said["key_id"] == key["id"]
    assert said["task"] == task_id and said["skill"] == "ask"


async def test_the_per_agent_proxy_and_a_cancel_carry_assertions_too(net: Net) -> None:
    path = f"/a2a/agents/{net.agent_id}"
    params = {"message": user_message("hi"), "metadata": {"skillId": "ask"}}
    asked = (await rpc(net.gw, "SendMessage", params, path=path))["result"]["task"]
    canceled = await rpc(net.gw, "CancelTask", {"id": asked["id"]}, path=path)
    assert canceled["result"]["status"]["state"] == "TASK_STATE_CANCELED"
    assert [r.method for r in net.agent.received] == ["SendMessage", "CancelTask"]
    claims = [await net.verified(token) for token in net.assertions()]
    assert {(c["aud"], c["sub"], c["task"]) for c in claims} == {(net.agent_id, net.user_id, asked["id"])}
    assert claims[0]["jti"] != claims[1]["jti"]


async def test_an_anonymous_caller_of_an_open_gateway_is_asserted_as_anonymous(tmp_path: Path) -> None:
    async with network(tmp_path, open_gateway=True) as net:
        del net.gw.headers["Authorization"]
        task = (await rpc(net.gw, "SendMessage", routed(net)))["result"]["task"]
        (token,) = net.assertions()
        said = await net.verified(token)
        assert said["sub"] == "anonymous" and said["key_kind"] == "anonymous" and said["task"] == task["id"]


async def test_an_assertion_is_never_logged(net: Net, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        await rpc(net.gw, "SendMessage", routed(net))
    (token,) = net.assertions()
    signature = token.rsplit(".", 1)[1]
    for record in caplog.records:
        assert signature not in f"{record.getMessage()} {record.__dict__}"


async def test_health_probes_carry_an_assertion_for_no_caller_and_no_task(tmp_path: Path) -> None:
    async with network(tmp_path, health_check_seconds=0.05) as net:
        async with asyncio.timeout(10):
            await net.agent.probed.wait()
        token = net.assertions("GetTask")[0]
        said = await net.verified(token)
        assert said["sub"] == "anonymous" and said["key_kind"] == "anonymous"
        assert said["task"] is None and said["skill"] is None


async def test_a_task_created_over_rest_is_asserted_for_the_session(net: Net) -> None:
    body = {"assignedAgentId": net.agent_id, "title": "Ask", "description": "hello"}
    created = await net.gw.post("/api/v1/tasks", json=body)
    assert created.status_code == 202, created.text
    task_id = created.json()["data"]["id"]
    for _ in range(200):  # the task is handed back at once; the relay's first call follows
        if net.agent.received:
            break
        await asyncio.sleep(0.01)
    (said,) = [await net.verified(token) for token in net.assertions()]
    assert said["sub"] == net.user_id and said["key_kind"] == "session" and said["task"] == task_id
