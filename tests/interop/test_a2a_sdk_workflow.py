"""The gateway's run-workflow skill through the official a2a-sdk client, on a live gateway.

Two steps run on the SDK's reference echo agent (in process behind the gateway's outbound transport):
the second echoes what the first answered, through a reference. The SDK client streams the run as one
A2A task of the gateway: step events arrive as status updates, the final step's output as an artifact,
and the task ends COMPLETED. The steps are ordinary gateway tasks of the caller (the tasks API lists them).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

pytest.importorskip("a2a")

from a2a.client import ClientConfig, create_client
from a2a.types.a2a_pb2 import Message, Part, Role, SendMessageRequest, StreamResponse, TaskState
from google.protobuf import json_format

from a2a_gateway.app import create_gateway_app
from agents_examples.echo import ECHO_AGENT
from tests.conftest import LiveServer, free_port, make_settings
from tests.interop.test_a2a_sdk_proxy import Upstreams, resolver

TIMEOUT = 15.0


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[tuple[str, dict[str, str], str]]:
    port = free_port()
    app = create_gateway_app(
        make_settings(tmp_path / "gw", public_url=f"http://127.0.0.1:{port}", outbound_allowlist=[]),
        local_skills=ECHO_AGENT.skills,
        outbound_transport=Upstreams(),
        resolver=resolver,
    )
    server = LiveServer(app, port)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
            credentials = {"email": "wf@example.com", "password": "long enough"}
            assert (await http.post("/api/v1/auth/register", json=credentials)).status_code == 201
            token = (await http.post("/api/v1/auth/login", json=credentials)).json()["data"]["accessToken"]
            auth = {"Authorization": f"Bearer {token}"}
            response = await http.post("/api/v1/agents", json={"cardUrl": "http://sdk.test"}, headers=auth)
            assert response.status_code == 201, response.text
            agent = response.json()["data"]
            skill = agent["skills"][0]["id"]
            steps = [
                {"name": "first", "agentId": agent["id"], "skillId": skill, "input": {"text": "hello"}},
                {
                    "name": "second",
                    "agentId": agent["id"],
                    "skillId": skill,
                    "input": {"text": {"$ref": "steps.0.text"}},
                    "dependsOn": [0],
                },
            ]
            workflows = app.state.workflows
            workflow = await workflows.create(_user_id(app, token), {"name": "echo twice", "steps": steps})
        yield server.url, auth, workflow.id
    finally:
        await server.stop()


def _user_id(app: object, token: str) -> str:
    import base64
    import json

    payload = token.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"])


async def collect(events: AsyncIterator[StreamResponse]) -> list[StreamResponse]:
    async with asyncio.timeout(TIMEOUT):
        return [event async for event in events]


async def test_run_workflow_streams_the_run_and_ends_with_its_output(
    gateway: tuple[str, dict[str, str], str],
) -> None:
    url, auth, workflow_id = gateway
    async with httpx.AsyncClient(timeout=TIMEOUT, headers=auth) as http:
        client = await create_client(url, ClientConfig(streaming=True, httpx_client=http))
        try:
            part = json_format.ParseDict({"data": {"workflowId": workflow_id}}, Part())
            message = Message(message_id=uuid.uuid4().hex, role=Role.ROLE_USER, parts=[part])
            request = SendMessageRequest(message=message)
            request.metadata.update({"skillId": "run-workflow"})
            events = await collect(client.send_message(request))
        finally:
            await client.close()
        statuses = [e.status_update for e in events if e.WhichOneof("payload") == "status_update"]
        assert statuses[-1].status.state == TaskState.TASK_STATE_COMPLETED
        said = [p.text for s in statuses for p in s.status.message.parts]
        assert any("step 0 (first) started" in t for t in said), said
        assert any("step 1 completed" in t for t in said), said
        artifacts = [
            e.artifact_update.artifact for e in events if e.WhichOneof("payload") == "artifact_update"
        ]
        assert [a.name for a in artifacts] == ["step 1: second"]
        assert "hello" in " ".join(p.text for p in artifacts[0].parts)
        # The steps were gateway tasks of the caller, visible in the tasks API.
        listed = (await http.get(f"{url}/api/v1/tasks")).json()["data"]
        assert len(listed) >= 3  # the run-workflow task and its two steps
