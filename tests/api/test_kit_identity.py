"""A kit agent behind a real gateway: relayed calls carry the caller, direct calls need a gateway credential
when the agent requires the gateway, and registration gives the agent its own nxk_ key."""

from __future__ import annotations

import asyncio
import contextlib
import json
import stat
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from a2a_gateway.agent import AgentDefinition, AgentEvent, ArtifactChunk, SkillContext, skill
from a2a_gateway.agent.caller import ASSERTION_HEADER, Caller
from a2a_gateway.api.kit_authenticator import THROUGH_GATEWAY
from a2a_gateway.app import create_agent_app, create_gateway_app
from a2a_gateway.auth.assertions import INVALID_ASSERTION, CallerAssertions
from a2a_gateway.auth.keyring import KeyRing
from a2a_gateway.outbound.gateway_registrar import KEY_FILE
from a2a_gateway.protocol import v1
from tests.conftest import make_settings
from tests.factories import V1, envelope, host_of, user_message
from tests.fakes import MemorySigningKeys

PUBLIC = "93.184.216.34"
GW, AGENT_HOST = "gw.test", "who.test"
PASSWORD = "long enough password"


@skill("whoami", "Who am I", "Answers with the caller it sees.")
async def whoami(ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
    caller = ctx.caller
    yield ArtifactChunk.of_data(
        {"user": caller.user, "viaGateway": caller.via_gateway, "task": caller.task, "skill": caller.skill}
    )


WHOAMI = AgentDefinition(name="Who Am I", description="Tells the caller who it is.", skills=[whoami])


async def resolver(host: str, port: int) -> list[str]:
    return [PUBLIC] if host in (GW, AGENT_HOST) else []


class Router(httpx.AsyncBaseTransport):
    """Sends each request to the in-process app named by its host; remembers what reached the agent."""

    def __init__(self) -> None:
        self.apps: dict[str, Starlette] = {}
        self.assertions: list[str] = []
        self.heartbeat_keys: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = host_of(request)
        if host == AGENT_HOST and ASSERTION_HEADER in request.headers:
            self.assertions.append(request.headers[ASSERTION_HEADER])
        if request.url.path.endswith("/heartbeat"):
            self.heartbeat_keys.append(request.headers.get("x-api-key", "")[:4])
        if host not in self.apps:
            raise httpx.ConnectError("connection refused", request=request)
        return await httpx.ASGITransport(app=self.apps[host]).handle_async_request(request)


class Net:
    """A gateway with an owner and another user, and a way to start the kit agent against it."""

    def __init__(self, tmp_path: Path, router: Router, gw: httpx.AsyncClient) -> None:
        self.tmp_path = tmp_path
        self.router = router
        self.gw = gw
        self.stack = contextlib.AsyncExitStack()
        self.users: dict[str, dict[str, Any]] = {}

    async def user(self, name: str) -> dict[str, Any]:
        email = f"{name}@example.com"
        await self.gw.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        login = (await self.gw.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})).json()
        bearer = {"Authorization": f"Bearer {login['data']['accessToken']}"}
        me = (await self.gw.get("/api/v1/auth/me", headers=bearer)).json()["data"]
        scopes = ["agents:read", "agents:write", "keys:write", "keys:read", "tasks:read", "tasks:write"]
        key = (
            await self.gw.post("/api/v1/api-keys", json={"name": "k", "scopes": scopes}, headers=bearer)
        ).json()
        found = {"id": me["id"], "bearer": bearer, "key": key["data"]["key"]}
        self.users[name] = found
        return found

    async def start_agent(self, name: str = "agent", **overrides: Any) -> Starlette:
        values: dict[str, Any] = {
            "public_url": f"http://{AGENT_HOST}",
            "gateway_url": f"http://{GW}",
            "gateway_key": self.users["owner"]["key"],
            "heartbeat_seconds": 0.05,
            "outbound_allowlist": [],
            **overrides,
        }
        app = create_agent_app(
            WHOAMI,
            make_settings(self.tmp_path / name, **values),
            outbound_transport=self.router,
            resolver=resolver,
        )
        self.router.apps[AGENT_HOST] = app
        await self.stack.enter_async_context(LifespanManager(app))
        return app

    async def agent_id(self) -> str:
        """The agent's id once it heartbeats with its own key."""
        async with asyncio.timeout(5):
            while True:
                mine = (await self.gw.get("/api/v1/agents", headers=self.users["owner"]["bearer"])).json()[
                    "data"
                ]
                if mine and mine[0]["status"] == "online" and "nxk_" in self.router.heartbeat_keys:
                    return str(mine[0]["id"])
                await asyncio.sleep(0.02)


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[Net]:
    router = Router()
    gateway = create_gateway_app(
        make_settings(tmp_path / "gw", public_url=f"http://{GW}", outbound_allowlist=[]),
        outbound_transport=router,
        resolver=resolver,
    )
    router.apps[GW] = gateway
    async with LifespanManager(gateway), httpx.AsyncClient(transport=router, base_url=f"http://{GW}") as gw:
        network = Net(tmp_path, router, gw)
        await network.user("owner")
        await network.user("alice")
        async with network.stack:
            yield network


async def direct(net: Net, headers: dict[str, str] | None = None) -> httpx.Response:
    """SendMessage straight to the agent, skipping the gateway."""
    body = envelope("SendMessage", {"message": user_message("hi")})
    async with httpx.AsyncClient(transport=net.router, base_url=f"http://{AGENT_HOST}") as agent:
        return await agent.post("/a2a", json=body, headers={**V1, **(headers or {})})


def seen(response: httpx.Response) -> dict[str, Any]:
    """The caller the whoami skill saw."""
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["result"]["task"]["artifacts"][0]["parts"][0]["data"]
    return data


def refused(response: httpx.Response, message: str) -> None:
    """The A2A authentication error: HTTP 401 with WWW-Authenticate and the JSON-RPC error -32060."""
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    error = response.json()["error"]
    assert error["code"] == -32060 and error["message"] == message
    assert error["data"][0]["reason"] == "UNAUTHENTICATED"


async def relay(net: Net, agent_id: str, headers: dict[str, str]) -> dict[str, Any]:
    """SendMessage through the gateway to the agent's skill; the gateway's answer."""
    params = {"message": user_message("hi"), "metadata": {"agentId": agent_id, "skillId": "whoami"}}
    response = await net.gw.post("/a2a", json=envelope("SendMessage", params), headers={**V1, **headers})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "result" in body, body
    return body


async def test_a_relayed_call_reaches_the_skill_with_its_caller_and_task(net: Net) -> None:
    await net.start_agent(require_gateway=True)
    agent_id = await net.agent_id()
    alice = net.users["alice"]
    body = await relay(net, agent_id, {"X-API-Key": alice["key"]})
    task = body["result"]["task"]
    data = task["artifacts"][0]["parts"][0]["data"]
    assert data["user"] == alice["id"] and data["viaGateway"] is True
    assert data["task"] == task["id"] and data["skill"] == "whoami"


async def test_an_agent_requiring_the_gateway_refuses_a_direct_anonymous_call(net: Net) -> None:
    await net.start_agent(require_gateway=True)
    await net.agent_id()
    refused(await direct(net), THROUGH_GATEWAY)


async def test_a_replayed_or_forged_assertion_is_refused(net: Net) -> None:
    await net.start_agent(require_gateway=True)
    agent_id = await net.agent_id()
    await relay(net, agent_id, {"X-API-Key": net.users["alice"]["key"]})
    captured = net.router.assertions[-1]
    refused(await direct(net, {ASSERTION_HEADER: captured}), INVALID_ASSERTION)

    other = KeyRing(MemorySigningKeys())
    forger = CallerAssertions(other, issuer=f"http://{GW}")
    forged = await forger.issue(agent_id, Caller(user=net.users["owner"]["id"], key_kind="user"))
    refused(await direct(net, {ASSERTION_HEADER: forged}), INVALID_ASSERTION)
    refused(await direct(net, {ASSERTION_HEADER: "not.a.jwt"}), INVALID_ASSERTION)


async def test_the_owners_direct_calls_are_accepted_with_a_session_token_or_a_user_key(net: Net) -> None:
    await net.start_agent(require_gateway=True)
    await net.agent_id()
    owner = net.users["owner"]
    by_token = seen(await direct(net, owner["bearer"]))
    assert by_token == {"user": owner["id"], "viaGateway": False, "task": None, "skill": None}
    by_key = seen(await direct(net, {"X-API-Key": owner["key"]}))
    assert by_key["user"] == owner["id"] and by_key["viaGateway"] is False
    assert seen(await direct(net, {"Authorization": f"Bearer {owner['key']}"}))["user"] == owner["id"]


async def test_another_users_direct_call_is_refused_unless_listed(net: Net) -> None:
    alice = net.users["alice"]
    await net.start_agent(require_gateway=True)
    await net.agent_id()
    refused(await direct(net, alice["bearer"]), THROUGH_GATEWAY)
    refused(await direct(net, {"X-API-Key": alice["key"]}), THROUGH_GATEWAY)


async def test_a_user_in_direct_callers_may_call_directly(net: Net) -> None:
    alice = net.users["alice"]
    await net.start_agent(require_gateway=True, direct_callers=[alice["id"]])
    await net.agent_id()
    assert seen(await direct(net, alice["bearer"]))["user"] == alice["id"]


async def test_credentials_that_are_not_gateway_user_credentials_are_refused(net: Net) -> None:
    await net.start_agent(require_gateway=True)
    agent_id = await net.agent_id()
    owner = net.users["owner"]
    agent_key = (
        await net.gw.post(f"/api/v1/agents/{agent_id}/api-keys", json={"name": "x"}, headers=owner["bearer"])
    ).json()["data"]["key"]
    response = await direct(net, {"X-API-Key": agent_key})
    assert response.status_code == 401 and agent_key not in response.text
    forged = await direct(net, {"Authorization": "Bearer " + owner["bearer"]["Authorization"][7:-4] + "AAAA"})
    refused(forged, "Invalid or expired access token")


async def test_without_require_gateway_anonymous_calls_pass_and_credentials_name_the_caller(net: Net) -> None:
    await net.start_agent()
    agent_id = await net.agent_id()
    assert seen(await direct(net)) == {"user": None, "viaGateway": False, "task": None, "skill": None}
    alice = net.users["alice"]
    assert seen(await direct(net, alice["bearer"]))["user"] == alice["id"]
    refused(await direct(net, {ASSERTION_HEADER: "not.a.jwt"}), INVALID_ASSERTION)
    body = await relay(net, agent_id, {"X-API-Key": alice["key"]})
    assert body["result"]["task"]["artifacts"][0]["parts"][0]["data"]["viaGateway"] is True


async def test_the_minted_agent_key_is_kept_0600_and_reused_after_a_restart(net: Net) -> None:
    await net.start_agent("first")
    agent_id = await net.agent_id()
    path = net.tmp_path / "first" / "secrets" / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())
    assert stored["agentId"] == agent_id and stored["key"].startswith("nxk_")
    owner = net.users["owner"]
    listed = (await net.gw.get(f"/api/v1/agents/{agent_id}/api-keys", headers=owner["bearer"])).json()["data"]
    assert len(listed) == 1

    await net.stack.aclose()
    net.router.heartbeat_keys.clear()
    await net.start_agent("first")
    assert await net.agent_id() == agent_id
    listed = (await net.gw.get(f"/api/v1/agents/{agent_id}/api-keys", headers=owner["bearer"])).json()["data"]
    assert len(listed) == 1
    assert set(net.router.heartbeat_keys) == {"nxk_"}


async def test_an_agent_registered_by_hand_uses_its_id_and_key(net: Net) -> None:
    owner = net.users["owner"]
    spec = {
        "name": "Who Am I",
        "description": "by hand",
        "endpoint": f"http://{AGENT_HOST}/a2a",
        "skills": [{"id": "whoami", "name": "Who am I", "description": "d"}],
    }
    registered = (await net.gw.post("/api/v1/agents", json=spec, headers=owner["bearer"])).json()["data"]
    key = (
        await net.gw.post(
            f"/api/v1/agents/{registered['id']}/api-keys",
            json={"name": "by hand", "scopes": ["agents:read"]},
            headers=owner["bearer"],
        )
    ).json()["data"]["key"]
    await net.start_agent(gateway_key=None, agent_id=registered["id"], agent_key=key, require_gateway=True)
    assert await net.agent_id() == registered["id"]
    async with asyncio.timeout(5):
        while (response := await direct(net, owner["bearer"])).status_code != 200:
            await asyncio.sleep(0.02)  # the owner is learnt from the agent's record
    assert seen(response)["user"] == owner["id"]
    body = await relay(net, registered["id"], {"X-API-Key": net.users["alice"]["key"]})
    assert body["result"]["task"]["artifacts"][0]["parts"][0]["data"]["user"] == net.users["alice"]["id"]
