"""The gateway's identity routes as a kit agent reaches them: its JWKS and its introspection route.

Both go through the guarded outbound client every call of the kit uses, with a timeout and a bounded
read; whatever goes wrong (unreachable, refused, too large, not JSON) becomes the domain's "unavailable"
error, which callers see as "cannot verify" (401), never as a server error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import httpx
import orjson

from a2a_gateway.auth.gateway_identity import IntrospectionUnavailable
from a2a_gateway.auth.jwks_keys import JwksUnavailable
from a2a_gateway.errors import InvalidAgentResponse, OutboundRefused
from a2a_gateway.outbound.upstream_read import read_body

JWKS_PATH: Final = "/.well-known/jwks.json"
INTROSPECT_PATH: Final = "/api/v1/auth/introspect"
MAX_JWKS_BYTES: Final = 64 * 1024
MAX_INTROSPECTION_BYTES: Final = 16 * 1024
_IDENTITY: Final = {"Accept-Encoding": "identity", "Accept": "application/json"}


async def _json(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    limit: int,
    seconds: float,
    headers: dict[str, str],
    body: dict[str, Any] | None = None,
) -> tuple[int, Any]:
    """(status, decoded JSON or None) of one bounded call; ConnectionError when there is no answer."""
    try:
        async with client.stream(
            method, url, json=body, headers={**_IDENTITY, **headers}, timeout=seconds
        ) as response:
            raw = await read_body(response, limit)
            status = response.status_code
    except (httpx.HTTPError, OutboundRefused, InvalidAgentResponse) as exc:
        # The key never appears here: only the error's class (and the guard's or the size message).
        message = (
            exc.message if isinstance(exc, (OutboundRefused, InvalidAgentResponse)) else type(exc).__name__
        )
        raise ConnectionError(message) from None
    try:
        return status, orjson.loads(raw)
    except orjson.JSONDecodeError:
        return status, None


class HttpJwksSource:
    """Implements auth.jwks_keys.JwksSource: GET {gateway_url}/.well-known/jwks.json."""

    def __init__(self, client: httpx.AsyncClient, gateway_url: str, *, timeout: float = 5.0) -> None:
        self._client = client
        self._url = gateway_url.rstrip("/") + JWKS_PATH
        self._timeout = timeout

    async def fetch(self) -> dict[str, Any]:
        """The gateway's JWK Set; JwksUnavailable when it cannot be had."""
        try:
            status, document = await _json(
                self._client, "GET", self._url, limit=MAX_JWKS_BYTES, seconds=self._timeout, headers={}
            )
        except ConnectionError as exc:
            raise JwksUnavailable(f"GET {self._url} failed: {exc}") from None
        if status != 200 or not isinstance(document, dict):
            raise JwksUnavailable(f"GET {self._url} answered HTTP {status} without a JWK Set")
        return document


class HttpIntrospector:
    """Implements auth.gateway_identity.Introspector: POST {gateway_url}/api/v1/auth/introspect.

    The call is authenticated with this agent's ``nxk_`` key, which ``agent_key`` hands out (None while
    the agent has none yet: then nothing can be introspected).
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        gateway_url: str,
        agent_key: Callable[[], str | None],
        *,
        timeout: float = 5.0,
    ) -> None:
        self._client = client
        self._url = gateway_url.rstrip("/") + INTROSPECT_PATH
        self._agent_key = agent_key
        self._timeout = timeout

    async def introspect(self, token: str) -> dict[str, Any]:
        """The ``data`` of the gateway's answer about ``token``."""
        key = self._agent_key()
        if not key:
            raise IntrospectionUnavailable("this agent has no per-agent key yet")
        try:
            status, answer = await _json(
                self._client,
                "POST",
                self._url,
                limit=MAX_INTROSPECTION_BYTES,
                seconds=self._timeout,
                headers={"X-API-Key": key},
                body={"token": token},
            )
        except ConnectionError as exc:
            raise IntrospectionUnavailable(f"POST {self._url} failed: {exc}") from None
        data = answer.get("data") if isinstance(answer, dict) else None
        if status != 200 or not isinstance(data, dict):
            # 401/403: the gateway does not take this agent's key (revoked, or not an agent key).
            raise IntrospectionUnavailable(f"POST {self._url} answered HTTP {status}")
        return data
