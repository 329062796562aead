"""Agent Connect keys: live keys sign every request (HMAC-SHA256 within ±30 s, no replays); sandbox may."""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson

from a2a_gateway.auth.signing import signed_headers
from tests.factories import V1, drop_redis_keys, envelope, user_message


async def connect_key(client: httpx.AsyncClient, mode: str) -> dict[str, Any]:
    await client.post(
        "/api/v1/auth/register", json={"email": f"{mode}@example.com", "password": "long enough"}
    )
    login = await client.post(
        "/api/v1/auth/login", json={"email": f"{mode}@example.com", "password": "long enough"}
    )
    token = login.json()["data"]["accessToken"]
    created = await client.post(
        "/api/v1/api-keys",
        json={
            "name": "trader",
            "scopes": ["tasks:read", "tasks:write", "write:orders", "keys:read"],
            "mode": mode,
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert created.status_code == 201, created.text
    key: dict[str, Any] = created.json()["data"]
    return key


async def signed_call(
    client: httpx.AsyncClient,
    key: dict[str, Any],
    body: bytes,
    *,
    secret: str | None = None,
    now_ms: int | None = None,
    sent: bytes | None = None,
) -> httpx.Response:
    headers = signed_headers(key["key"], secret or key["secret"], "POST", "/a2a", body, now_ms=now_ms)
    return await client.post("/a2a", content=sent if sent is not None else body, headers={**V1, **headers})


def list_tasks() -> bytes:
    return orjson.dumps(envelope("ListTasks", {}))


async def test_live_key_with_valid_signature(client: httpx.AsyncClient) -> None:
    key = await connect_key(client, "live")
    assert key["key"].startswith("nx_live_") and key["secret"].startswith("nxs_") and key["mode"] == "live"
    listed = (
        await client.get(
            "/api/v1/api-keys",
            headers={
                "X-NX-Key": key["key"],
                **signed_headers(key["key"], key["secret"], "GET", "/api/v1/api-keys"),
            },
        )
    ).json()["data"]
    assert "secret" not in listed[0] and listed[0]["mode"] == "live"
    ok = await signed_call(
        client, key, orjson.dumps(envelope("SendMessage", {"message": user_message("hi")}))
    )
    assert ok.status_code == 200 and ok.json()["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"


async def test_live_key_refusals(client: httpx.AsyncClient) -> None:
    key = await connect_key(client, "live")
    body = list_tasks()
    unsigned = await client.post("/a2a", content=body, headers={**V1, "X-NX-Key": key["key"]})
    assert unsigned.status_code == 401 and "sign" in unsigned.json()["error"]["message"]
    wrong = await signed_call(client, key, body, secret="nxs_" + "A" * 43)
    assert wrong.status_code == 401 and wrong.json()["error"]["message"] == "Invalid request signature"
    old = await signed_call(client, key, body, now_ms=int(time.time() * 1000) - 31_000)
    future = await signed_call(client, key, body, now_ms=int(time.time() * 1000) + 31_000)
    assert old.status_code == future.status_code == 401
    tampered = await signed_call(client, key, body, sent=orjson.dumps(envelope("ListTasks", {"pageSize": 1})))
    assert tampered.status_code == 401
    headers = signed_headers(key["key"], key["secret"], "POST", "/a2a", body)
    first = await client.post("/a2a", content=body, headers={**V1, **headers})
    replay = await client.post("/a2a", content=body, headers={**V1, **headers})
    assert first.status_code == 200 and replay.status_code == 401
    assert replay.json()["error"]["message"] == "Replayed request"
    in_wrong_header = await client.post("/a2a", content=body, headers={**V1, "X-API-Key": key["key"]})
    assert in_wrong_header.status_code == 401


async def test_sandbox_key_may_skip_signing_but_not_sign_badly(client: httpx.AsyncClient) -> None:
    key = await connect_key(client, "sandbox")
    assert key["key"].startswith("nx_test_")
    plain = await client.post("/a2a", content=list_tasks(), headers={**V1, "X-NX-Key": key["key"]})
    assert plain.status_code == 200
    bad = await signed_call(client, key, list_tasks(), secret="nxs_wrong")
    assert bad.status_code == 401


async def test_user_key_in_x_nx_key_is_refused(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/auth/register", json={"email": "u@example.com", "password": "long enough"})
    token = (
        await client.post("/api/v1/auth/login", json={"email": "u@example.com", "password": "long enough"})
    ).json()
    key = (
        await client.post(
            "/api/v1/api-keys",
            json={"name": "k", "scopes": ["*"]},
            headers={"Authorization": f"Bearer {token['data']['accessToken']}"},
        )
    ).json()["data"]
    response = await client.post("/a2a", content=list_tasks(), headers={**V1, "X-NX-Key": key["key"]})
    assert response.status_code == 401


async def test_connect_keys_have_their_own_budget(tmp_path: Any) -> None:
    from asgi_lifespan import LifespanManager

    from a2a_gateway.app import create_gateway_app
    from agents_examples.echo import ECHO_AGENT
    from tests.conftest import make_settings

    app = create_gateway_app(
        make_settings(tmp_path, rate_limits={"connect": "2/minute"}), local_skills=ECHO_AGENT.skills
    )
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        key = await connect_key(c, "sandbox")
        statuses = [
            (await c.post("/a2a", content=list_tasks(), headers={**V1, "X-NX-Key": key["key"]})).status_code
            for _ in range(3)
        ]
        assert statuses == [200, 200, 429]


async def test_replay_to_another_instance_is_refused_through_redis(tmp_path: Any) -> None:
    import os
    import uuid

    import pytest
    from asgi_lifespan import LifespanManager

    from a2a_gateway.app import create_gateway_app
    from agents_examples.echo import ECHO_AGENT
    from tests.conftest import make_settings

    redis_url = os.environ.get("A2A_GATEWAY_TEST_REDIS_URL")
    if not redis_url:
        pytest.skip("A2A_GATEWAY_TEST_REDIS_URL is not set; shared nonce-cache test skipped")
    prefix = f"a2a-test-{uuid.uuid4().hex[:12]}:"
    # Two gateway processes in front of one database, sharing Redis.
    shared = make_settings(tmp_path, redis_url=redis_url, redis_prefix=prefix)
    first, second = (
        create_gateway_app(shared, local_skills=ECHO_AGENT.skills),
        create_gateway_app(shared, local_skills=ECHO_AGENT.skills),
    )
    async with LifespanManager(first), LifespanManager(second):
        a = httpx.AsyncClient(transport=httpx.ASGITransport(app=first), base_url="http://t")
        b = httpx.AsyncClient(transport=httpx.ASGITransport(app=second), base_url="http://t")
        async with a, b:
            key = await connect_key(a, "live")
            headers = {**V1, **signed_headers(key["key"], key["secret"], "POST", "/a2a", list_tasks())}
            assert (await a.post("/a2a", content=list_tasks(), headers=headers)).status_code == 200
            replay = await b.post("/a2a", content=list_tasks(), headers=headers)
            assert replay.status_code == 401 and replay.json()["error"]["message"] == "Replayed request"
    await drop_redis_keys(redis_url, prefix)
