"""The kit's client of the gateway's JWKS and introspection routes: what it sends, and every way it fails."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from a2a_gateway.auth.gateway_identity import IntrospectionUnavailable
from a2a_gateway.auth.jwks_keys import JwksUnavailable
from a2a_gateway.outbound.gateway_identity_client import MAX_JWKS_BYTES, HttpIntrospector, HttpJwksSource

GATEWAY = "https://gw.example/"
AGENT_KEY = "nxk_" + "k" * 43
USER_KEY = "nex_" + "u" * 43


def client(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def test_the_jwks_is_fetched_from_the_well_known_path() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"keys": []})

    async with client(handler) as c:
        assert await HttpJwksSource(c, GATEWAY).fetch() == {"keys": []}
    assert str(seen[0].url) == "https://gw.example/.well-known/jwks.json"
    assert seen[0].headers["accept-encoding"] == "identity"


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(503, json={"keys": []}),
        httpx.Response(200, content=b"not json"),
        httpx.Response(200, json=["keys"]),
        httpx.Response(200, content=b'{"keys": [' + b" " * MAX_JWKS_BYTES + b"]}"),
        httpx.Response(200, content=gzip.compress(b'{"keys": []}'), headers={"content-encoding": "gzip"}),
    ],
)
async def test_a_bad_jwks_answer_is_unavailable(response: httpx.Response) -> None:
    async with client(lambda request: response) as c:
        with pytest.raises(JwksUnavailable):
            await HttpJwksSource(c, GATEWAY).fetch()


async def test_an_unreachable_gateway_is_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with client(handler) as c:
        with pytest.raises(JwksUnavailable):
            await HttpJwksSource(c, GATEWAY).fetch()
        with pytest.raises(IntrospectionUnavailable) as caught:
            await HttpIntrospector(c, GATEWAY, lambda: AGENT_KEY).introspect(USER_KEY)
        assert USER_KEY not in str(caught.value) and AGENT_KEY not in str(caught.value)


async def test_introspection_sends_the_token_with_the_agents_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"data": {"active": False}})

    async with client(handler) as c:
        assert await HttpIntrospector(c, GATEWAY, lambda: AGENT_KEY).introspect(USER_KEY) == {"active": False}
    request = seen[0]
    assert request.method == "POST" and str(request.url) == "https://gw.example/api/v1/auth/introspect"
    assert request.headers["x-api-key"] == AGENT_KEY
    assert json.loads(request.content) == {"token": USER_KEY}


@pytest.mark.parametrize(
    "status, body",
    [(403, {"error": {"code": "FORBIDDEN"}}), (401, {}), (200, {"active": True}), (200, {"data": "x"})],
)
async def test_a_refused_or_malformed_introspection_is_unavailable(status: int, body: Any) -> None:
    async with client(lambda request: httpx.Response(status, json=body)) as c:
        with pytest.raises(IntrospectionUnavailable):
            await HttpIntrospector(c, GATEWAY, lambda: AGENT_KEY).introspect(USER_KEY)


async def test_without_an_agent_key_nothing_is_sent() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json={"data": {"active": False}})

    async with client(handler) as c:
        with pytest.raises(IntrospectionUnavailable):
            await HttpIntrospector(c, GATEWAY, lambda: None).introspect(USER_KEY)
    assert calls == []
