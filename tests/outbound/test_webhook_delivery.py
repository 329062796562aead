"""Webhook delivery against a real uvicorn receiver on loopback, through the SSRF-guarded client."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from a2a_gateway.outbound.ssrf import GuardedTransport, SsrfGuard
from a2a_gateway.outbound.webhook_delivery import WebhookDelivery
from a2a_gateway.protocol import v1


@dataclass
class Receiver:
    """A webhook receiver that records every request and answers scripted statuses per hook name."""

    base: str = ""
    plans: dict[str, list[int]] = field(default_factory=dict)
    received: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)

    async def hook(self, request: Request) -> Response:
        name = request.path_params["name"]
        self.received.append((name, dict(request.headers), orjson.loads(await request.body())))
        plan = self.plans.get(name)
        return Response(status_code=plan.pop(0) if plan else 200)

    def seqs(self, name: str) -> list[int]:
        return [body["statusUpdate"]["metadata"]["seq"] for n, _, body in self.received if n == name]


# One receiver server for the module: uvicorn's 0.1 s shutdown tick per test would dominate the run time.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served_receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = Starlette(routes=[Route("/hook/{name}", rec.hook, methods=["POST"])])
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    rec.base = f"http://127.0.0.1:{port}"
    yield rec
    server.should_exit = True
    await serving


@pytest_asyncio.fixture(loop_scope="module")
async def receiver(served_receiver: Receiver) -> Receiver:
    served_receiver.plans.clear()
    served_receiver.received.clear()
    return served_receiver


@pytest_asyncio.fixture(loop_scope="module")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=GuardedTransport(SsrfGuard(["127.0.0.1"]))) as c:
        yield c


class Sleeps:
    """Injected sleep: records delays, returns at once unless a gate is closed."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await self.gate.wait()


def event(seq: int, task_id: str = "t1") -> v1.StreamResponse:
    status = v1.TaskStatus(state=v1.TaskState.WORKING)
    update = v1.TaskStatusUpdateEvent(task_id=task_id, context_id="c1", status=status, metadata={"seq": seq})
    return v1.StreamResponse(status_update=update)


def hook(receiver: Receiver, name: str, **extra: Any) -> v1.TaskPushNotificationConfig:
    return v1.TaskPushNotificationConfig(
        id=f"cfg-{name}", task_id="t1", url=f"{receiver.base}/hook/{name}", **extra
    )


async def started(client: httpx.AsyncClient, sleeps: Sleeps, **settings: Any) -> WebhookDelivery:
    delivery = WebhookDelivery(client, sleep=sleeps, **settings)
    await delivery.start()
    return delivery


async def until(condition: Any, timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_headers_and_body_arrive(receiver: Receiver, client: httpx.AsyncClient) -> None:
    delivery = await started(client, Sleeps())
    auth = v1.AuthenticationInfo(scheme="Bearer", credentials="secret-for-this-task")
    delivery.enqueue(hook(receiver, "a", token="opaque-token", authentication=auth), event(1))
    await delivery.close()
    [(_, headers, body)] = receiver.received
    assert headers["content-type"] == "application/a2a+json"
    assert headers["authorization"] == "Bearer secret-for-this-task"
    assert headers["x-a2a-notification-token"] == "opaque-token"
    assert body == event(1).wire()
    assert (delivery.delivered, delivery.failed, delivery.retried) == (1, 0, 0)


async def test_scheme_without_credentials_sends_no_authorization(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    delivery = await started(client, Sleeps())
    delivery.enqueue(hook(receiver, "a", authentication=v1.AuthenticationInfo(scheme="Bearer")), event(1))
    await delivery.close()
    [(_, headers, _)] = receiver.received
    assert "authorization" not in headers
    assert "x-a2a-notification-token" not in headers


async def test_server_error_is_retried_until_delivered(receiver: Receiver, client: httpx.AsyncClient) -> None:
    sleeps = Sleeps()
    receiver.plans["a"] = [500, 503]
    delivery = await started(client, sleeps, base_backoff=0.5)
    delivery.enqueue(hook(receiver, "a"), event(1))
    await delivery.close()
    assert receiver.seqs("a") == [1, 1, 1]
    assert (delivery.delivered, delivery.failed, delivery.retried) == (1, 0, 2)
    assert 0.5 <= sleeps.delays[0] <= 0.55
    assert 1.0 <= sleeps.delays[1] <= 1.1


async def test_events_to_one_destination_stay_in_order_under_retries(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    receiver.plans["a"] = [500, 200, 200, 429, 408, 200]
    delivery = await started(client, Sleeps())
    for seq in range(5):
        delivery.enqueue(hook(receiver, "a"), event(seq))
    await delivery.close()
    assert receiver.seqs("a") == [0, 0, 1, 2, 2, 2, 3, 4]
    assert (delivery.delivered, delivery.retried) == (5, 3)


async def test_a_retrying_destination_does_not_hold_up_another(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    sleeps = Sleeps()
    sleeps.gate.clear()
    receiver.plans["slow"] = [500]
    delivery = await started(client, sleeps)
    delivery.enqueue(hook(receiver, "slow"), event(1))
    delivery.enqueue(hook(receiver, "fast"), event(2))
    await until(lambda: receiver.seqs("fast") == [2] and sleeps.delays)
    assert receiver.seqs("slow") == [1]
    sleeps.gate.set()
    await delivery.close()
    assert receiver.seqs("slow") == [1, 1]


@pytest.mark.parametrize("status", [400, 401, 404, 410])
async def test_client_error_gives_up_without_retry(
    receiver: Receiver, client: httpx.AsyncClient, status: int
) -> None:
    sleeps = Sleeps()
    receiver.plans["a"] = [status]
    delivery = await started(client, sleeps)
    delivery.enqueue(hook(receiver, "a"), event(1))
    await delivery.close()
    assert receiver.seqs("a") == [1]
    assert (delivery.delivered, delivery.failed, delivery.retried) == (0, 1, 0)
    assert sleeps.delays == []


async def test_gives_up_after_max_attempts(receiver: Receiver, client: httpx.AsyncClient) -> None:
    receiver.plans["a"] = [500] * 10
    delivery = await started(client, Sleeps(), max_attempts=3)
    delivery.enqueue(hook(receiver, "a"), event(1))
    delivery.enqueue(hook(receiver, "a"), event(2))
    await delivery.close()
    assert receiver.seqs("a") == [1, 1, 1, 2, 2, 2]
    assert (delivery.delivered, delivery.failed, delivery.retried) == (0, 2, 4)


async def test_ssrf_refusal_sends_nothing(receiver: Receiver) -> None:
    sleeps = Sleeps()
    async with httpx.AsyncClient(transport=GuardedTransport(SsrfGuard([]))) as unguarded_loopback:
        delivery = await started(unguarded_loopback, sleeps)
        delivery.enqueue(hook(receiver, "a"), event(1))
        await delivery.close()
    assert receiver.received == []
    assert (delivery.delivered, delivery.failed, delivery.retried) == (0, 1, 0)


async def test_connect_errors_and_timeouts_are_retried() -> None:
    answers: list[Exception | int] = [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), 204]

    def handler(request: httpx.Request) -> httpx.Response:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer)

    transport = GuardedTransport(SsrfGuard(["hooks.test"]), httpx.MockTransport(handler))
    async with httpx.AsyncClient(transport=transport) as c:
        delivery = await started(c, Sleeps())
        delivery.enqueue(v1.TaskPushNotificationConfig(url="https://hooks.test/x"), event(1))
        await delivery.close()
    assert (delivery.delivered, delivery.retried) == (1, 2)


async def test_full_queue_drops_oldest(receiver: Receiver, client: httpx.AsyncClient) -> None:
    delivery = await started(client, Sleeps(), queue_limit=2)
    # enqueue never yields, so all four land before the worker takes the first one.
    for seq in range(4):
        delivery.enqueue(hook(receiver, "a"), event(seq))
    await delivery.close()
    assert receiver.seqs("a") == [2, 3]
    assert (delivery.delivered, delivery.dropped) == (2, 2)


async def test_enqueue_when_not_running_drops_without_raising(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    delivery = WebhookDelivery(client)
    delivery.enqueue(hook(receiver, "a"), event(1))
    assert delivery.dropped == 1


async def test_close_cancels_what_does_not_drain_in_time(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    sleeps = Sleeps()
    sleeps.gate.clear()
    receiver.plans["a"] = [500]
    delivery = await started(client, sleeps)
    delivery.enqueue(hook(receiver, "a"), event(1))
    delivery.enqueue(hook(receiver, "a"), event(2))
    await until(lambda: bool(sleeps.delays))
    await delivery.close(drain_timeout=0.05)
    assert receiver.seqs("a") == [1]
    assert delivery.dropped == 2


async def test_secrets_never_reach_the_log(
    receiver: Receiver, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="a2a_gateway.outbound")
    receiver.plans["a"] = [500, 403]
    delivery = await started(client, Sleeps())
    url = f"{receiver.base.replace('://', '://user:pw-secret@')}/hook/a?key=query-secret"
    auth = v1.AuthenticationInfo(scheme="Bearer", credentials="cred-secret")
    config = v1.TaskPushNotificationConfig(
        id="c", task_id="t1", url=url, token="token-secret", authentication=auth
    )
    delivery.enqueue(config, event(1))
    await delivery.close()
    assert delivery.failed == 1
    assert "127.0.0.1" in caplog.text
    assert "secret" not in caplog.text
