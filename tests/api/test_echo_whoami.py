"""The example echo agent behind a real gateway: its whoami skill sees the caller the gateway vouched for."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

from a2a_gateway.app import create_agent_app, create_gateway_app
from agents_examples.echo import ECHO_AGENT
from tests.api.test_self_registration import Router, resolver
from tests.conftest import make_settings
from tests.factories import envelope, rpc, user_message


async def test_whoami_through_the_gateway_names_the_user_and_the_gateway_task(tmp_path: Path) -> None:
    router = Router()
    gateway = create_gateway_app(
        make_settings(tmp_path / "gw", public_url="http://gw.test", outbound_allowlist=[]),
        outbound_transport=router,
        resolver=resolver,
    )
    router.apps["gw.test"] = gateway
    async with LifespanManager(gateway), httpx.AsyncClient(transport=router, base_url="http://gw.test") as gw:
        credentials = {"email": "owner@example.com", "password": "long enough"}
        await gw.post("/api/v1/auth/register", json=credentials)
        login = (await gw.post("/api/v1/auth/login", json=credentials)).json()["data"]
        gw.headers["Authorization"] = f"Bearer {login['accessToken']}"
        scopes = ["agents:read", "agents:write", "keys:write"]
        key = (await gw.post("/api/v1/api-keys", json={"name": "echo", "scopes": scopes})).json()["data"][
            "key"
        ]
        settings = make_settings(
            tmp_path / "echo",
            public_url="http://echo.test",
            gateway_url="http://gw.test",
            gateway_key=key,
            require_gateway=True,
            outbound_allowlist=[],
        )
        echo = create_agent_app(ECHO_AGENT, settings, outbound_transport=router, resolver=resolver)
        router.apps["echo.test"] = echo
        async with LifespanManager(echo):
            async with asyncio.timeout(5):
                while not (agents := (await gw.get("/api/v1/agents")).json()["data"]):
                    await asyncio.sleep(0.02)
            params = {
                "message": user_message("?"),
                "metadata": {"agentId": agents[0]["id"], "skillId": "whoami"},
            }
            task = (await rpc(gw, "SendMessage", params))["result"]["task"]
            assert task["status"]["state"] == "TASK_STATE_COMPLETED", task
            said = task["artifacts"][0]["parts"][0]["data"]
            assert said == {
                "user": login["user"]["id"],
                "viaGateway": True,
                "gatewayTask": task["id"],
                "skill": "whoami",
                "keyKind": "session",
            }
            # Called directly, without the gateway, the agent refuses (it requires the gateway).
            async with httpx.AsyncClient(transport=router, base_url="http://echo.test") as direct:
                body = envelope("SendMessage", {"message": user_message("?")})
                refused = await direct.post("/a2a", json=body, headers={"A2A-Version": "1.0"})
            assert refused.status_code == 401 and refused.json()["error"]["code"] == -32060
