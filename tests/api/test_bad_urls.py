"""URLs a caller hands the gateway (card URLs, agent endpoints, webhooks): unparsable ones are a 400 naming
the field, and refusals of the SSRF guard never tell the caller what a host name resolves to."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from a2a_gateway.app import create_gateway_app
from agents_examples.echo import ECHO_AGENT
from tests.conftest import make_settings
from tests.factories import rpc, send_text, user_message

UNPARSABLE = [
    "\u0000",
    "http://[::1",
    "http://[::1]:99999/",
    "http://exa\u0000mple.com/",
    "http://[not-an-ip]/",
    "http://example.com:port/",
    " ",
]
PUBLIC = "93.184.216.34"


class Dns:
    """A fake resolver whose table a test may change; unknown names do not resolve."""

    def __init__(self) -> None:
        self.table = {"internal.test": ["10.1.2.3"], "loop.test": ["127.0.0.1"], "public.test": [PUBLIC]}

    async def __call__(self, host: str, port: int) -> list[str]:
        if host not in self.table:
            raise OSError("name does not resolve")
        return self.table[host]


@pytest.fixture
def dns() -> Dns:
    return Dns()


@pytest.fixture
def sent() -> list[httpx.Request]:
    """Every outbound request the gateway made (each is answered 204)."""
    return []


@pytest.fixture
async def gateway(tmp_path: Path, dns: Dns, sent: list[httpx.Request]) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway with no allowlist and a fake DNS; outbound requests are recorded, never sent."""

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(204)

    app = create_gateway_app(
        make_settings(tmp_path, outbound_allowlist=[], push_max_attempts=1),
        local_skills=ECHO_AGENT.skills,
        outbound_transport=httpx.MockTransport(record),
        resolver=dns,
    )
    credentials = {"email": "u@example.com", "password": "long enough"}
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client,
    ):
        await client.post("/api/v1/auth/register", json=credentials)
        login = await client.post("/api/v1/auth/login", json=credentials)
        client.headers["Authorization"] = f"Bearer {login.json()['data']['accessToken']}"
        yield client


def fields_of(response: httpx.Response) -> list[str]:
    return [d["field"] for d in response.json()["error"].get("details", [])]


async def agents(client: httpx.AsyncClient) -> list[Any]:
    found: list[Any] = (await client.get("/api/v1/agents")).json()["data"]
    return found


@pytest.mark.parametrize("url", UNPARSABLE)
async def test_unparsable_card_url_is_a_400_naming_the_field(gateway: httpx.AsyncClient, url: str) -> None:
    response = await gateway.post("/api/v1/agents", json={"cardUrl": url})
    assert response.status_code == 400, response.text
    assert "cardUrl" in fields_of(response)
    assert await agents(gateway) == []


@pytest.mark.parametrize("url", UNPARSABLE)
async def test_unparsable_endpoint_is_a_400_naming_the_field(gateway: httpx.AsyncClient, url: str) -> None:
    body = {"name": "A", "endpoint": url, "skills": [{"id": "s", "name": "S"}]}
    response = await gateway.post("/api/v1/agents", json=body)
    assert response.status_code == 400, response.text
    assert "endpoint" in fields_of(response)
    assert await agents(gateway) == []


@pytest.mark.parametrize("url", UNPARSABLE)
async def test_unparsable_webhook_url_is_invalid_params(gateway: httpx.AsyncClient, url: str) -> None:
    config = {"taskPushNotificationConfig": {"url": url}}
    body = await rpc(gateway, "SendMessage", {"message": user_message(), "configuration": config})
    assert body["error"]["code"] == -32602, body
    assert (await rpc(gateway, "ListTasks", {}))["result"]["totalSize"] == 0
    task = await send_text(gateway)
    created = await rpc(gateway, "CreateTaskPushNotificationConfig", {"taskId": task["id"], "url": url})
    assert created["error"]["code"] == -32602, created


REFUSED = [
    ("http://internal.test", "10.1.2.3"),
    ("http://loop.test:8000", "127.0.0.1"),
    ("http://nowhere.test", "does not resolve"),
]


@pytest.mark.parametrize(("url", "detail"), REFUSED)
async def test_refusals_do_not_reveal_dns_answers(
    gateway: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, url: str, detail: str
) -> None:
    caplog.set_level(logging.INFO, logger="a2a_gateway.outbound.ssrf")
    by_card = await gateway.post("/api/v1/agents", json={"cardUrl": url})
    body = {"name": "A", "endpoint": url + "/a2a", "skills": [{"id": "s", "name": "S"}]}
    by_endpoint = await gateway.post("/api/v1/agents", json=body)
    for response in (by_card, by_endpoint):
        assert response.status_code == 400, response.text
        text = response.text
        assert "endpoint not allowed" in text
        for leak in ("10.1.2.3", "127.0.0.1", "loopback", "private", "resolve"):
            assert leak not in text
    # The operator still learns why, with the host named.
    host = httpx.URL(url).host
    assert any(host in r.getMessage() and detail in r.getMessage() for r in caplog.records)


async def test_webhook_refusal_does_not_reveal_dns_answers(gateway: httpx.AsyncClient) -> None:
    task = await send_text(gateway)
    body = await rpc(
        gateway, "CreateTaskPushNotificationConfig", {"taskId": task["id"], "url": "http://internal.test/h"}
    )
    assert body["error"]["code"] == -32602
    assert "endpoint not allowed" in str(body) and "10.1.2.3" not in str(body) and "private" not in str(body)


# --- push configs: what is refused at creation, what waits for delivery (issue 8, 3.7) -------------


async def create_config(client: httpx.AsyncClient, task_id: str, url: str) -> dict[str, Any]:
    return await rpc(client, "CreateTaskPushNotificationConfig", {"taskId": task_id, "url": url})


async def paused_task(client: httpx.AsyncClient) -> str:
    params = {"message": user_message(), "metadata": {"skillId": "ask"}}
    task = (await rpc(client, "SendMessage", params))["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    task_id: str = task["id"]
    return task_id


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1/hook", "http://[::1]/hook", "http://169.254.169.254/", "http://internal.test/h"]
)
async def test_push_config_to_a_blocked_address_is_refused_at_creation(
    gateway: httpx.AsyncClient, url: str
) -> None:
    task_id = await paused_task(gateway)
    assert (await create_config(gateway, task_id, url))["error"]["code"] == -32602
    inline = {"taskPushNotificationConfig": {"url": url}}
    body = await rpc(gateway, "SendMessage", {"message": user_message(), "configuration": inline})
    assert body["error"]["code"] == -32602
    listed = await rpc(gateway, "ListTaskPushNotificationConfigs", {"taskId": task_id})
    assert listed["result"]["configs"] == []


async def test_push_config_whose_name_does_not_resolve_yet_is_checked_at_delivery(
    gateway: httpx.AsyncClient, dns: Dns, sent: list[httpx.Request]
) -> None:
    # Not resolvable now: accepted, as the name may be published later.
    later = await paused_task(gateway)
    assert "result" in await create_config(gateway, later, "http://later.test/hook")
    # Resolvable to a blocked address by the time an event is delivered: nothing is sent.
    dns.table["later.test"] = ["10.9.9.9"]
    await rpc(gateway, "SendMessage", {"message": user_message("Ada", taskId=later)})
    # Resolvable to a public address: delivered, to the vetted address, naming the host.
    dns.table["soon.test"] = []
    soon = await paused_task(gateway)
    assert "result" in await create_config(gateway, soon, "http://soon.test/hook")
    dns.table["soon.test"] = [PUBLIC]
    await rpc(gateway, "SendMessage", {"message": user_message("Bo", taskId=soon)})
    async with asyncio.timeout(10):
        while not any(r.headers["host"] == "soon.test" for r in sent):
            await asyncio.sleep(0.01)
    hooks = [r for r in sent if r.url.path == "/hook"]
    assert {r.headers["host"] for r in hooks} == {"soon.test"}
    assert {r.url.host for r in hooks} == {PUBLIC}
