"""Stopping a real server ends open streams cleanly and leaves paused tasks paused, answerable after."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from a2a_gateway.app import create_gateway_app
from agents_examples.echo import ECHO_AGENT
from tests.conftest import make_settings
from tests.factories import rpc, send_text, user_message
from tests.streaming_helpers import stream_call


async def test_shutdown_closes_streams_and_keeps_paused_tasks(
    tmp_path: Path, live_server: Callable[..., Any]
) -> None:
    settings = make_settings(tmp_path / "gw")
    server = await live_server(create_gateway_app(settings, local_skills=ECHO_AGENT.skills))
    async with httpx.AsyncClient(base_url=server.url) as http:
        paused = await send_text(http, skill="ask")
        async with stream_call(http, "SubscribeToTask", {"id": paused["id"]}) as reader:
            first = await reader.next()
            assert (
                first is not None and first.result["task"]["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
            )
            stopping = asyncio.create_task(server.stop())
            async with asyncio.timeout(15):
                last = await reader.next()  # the stream ends with a clean chunked close: no hang, no reset
                assert last is not None and last.event == "error"
                assert last.body["error"]["code"] == -32052
                assert await reader.next() is None
            await stopping
    again = create_gateway_app(settings, local_skills=ECHO_AGENT.skills)
    async with (
        LifespanManager(again),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=again), base_url="http://t") as client,
    ):
        task = (await rpc(client, "GetTask", {"id": paused["id"]}))["result"]
        assert task["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
        follow_up = {"message": user_message("Lin", taskId=paused["id"])}
        done = (await rpc(client, "SendMessage", follow_up))["result"]["task"]
        assert done["status"]["state"] == "TASK_STATE_COMPLETED"
        assert done["artifacts"][0]["parts"] == [{"text": "Hello, Lin!"}]
