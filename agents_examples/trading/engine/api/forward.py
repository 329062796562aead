"""Nexgent's ``/auth`` and ``/api-keys`` routes, answered by the gateway: the engine has no accounts.

The network has one account system, the gateway's, so the engine forwards these calls to the gateway's
same paths under ``/api/v1`` and translates the answers into the seed's style: the gateway's
``{"data": ...}`` becomes the bare data, its ``{"error": {"code", "message"}}`` becomes
``{"error": message, "code": code}`` (field violations as ``errors``), with the gateway's status and
its ``Retry-After`` and ``X-RateLimit-*`` headers. The request body and the ``Authorization`` and
``X-API-Key`` headers are passed through untouched; cookies are not (the engine is not the gateway's
origin). Bodies are never logged, in either direction.

A gateway that cannot be reached, times out, redirects, answers more than :data:`MAX_ANSWER_BYTES`
or answers something that is not JSON is 502 ``GATEWAY_UNAVAILABLE``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

import httpx
import orjson
from starlette.responses import Response

from agents_examples.trading.engine.api.responses import error_response, json_response

log = logging.getLogger(__name__)

MAX_ANSWER_BYTES: Final = 1 << 20
PASSED_REQUEST_HEADERS: Final = ("authorization", "x-api-key", "content-type", "idempotency-key")
PASSED_ANSWER_HEADERS: Final = (
    "retry-after",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
)
UNAVAILABLE: Final = "GATEWAY_UNAVAILABLE"


class _TooLarge(Exception):
    pass


def unavailable(message: str = "The gateway could not be reached") -> Response:
    """502: the gateway did not give a usable answer."""
    return error_response(502, UNAVAILABLE, message)


class GatewayForwarder:
    """Forwards one call to the gateway at ``gateway_url`` through ``client`` (its owner closes it)."""

    def __init__(self, client: httpx.AsyncClient, gateway_url: str) -> None:
        self._client = client
        self._base = gateway_url.rstrip("/") + "/api/v1"

    async def forward(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes = b"",
        query: str = "",
    ) -> Response:
        """``method`` ``/api/v1{path}`` at the gateway with the caller's credential headers and ``body``;
        the gateway's answer in the seed's style."""
        url = self._base + path + (f"?{query}" if query else "")
        sent = {name: headers[name] for name in PASSED_REQUEST_HEADERS if name in headers}
        sent["accept"] = "application/json"
        if body and "content-type" not in sent:
            sent["content-type"] = "application/json"
        try:
            async with self._client.stream(method, url, headers=sent, content=body or None) as answer:
                raw = await _read(answer)
                status = answer.status_code
                passed = {n: answer.headers[n] for n in PASSED_ANSWER_HEADERS if n in answer.headers}
        except httpx.HTTPError as exc:
            log.warning("gateway %s %s not reached: %s", method, path, type(exc).__name__)
            return unavailable()
        except _TooLarge:
            log.warning("gateway %s %s answered more than %d bytes", method, path, MAX_ANSWER_BYTES)
            return unavailable("The gateway's answer is too large")
        return translate(status, raw, passed)


async def _read(answer: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in answer.aiter_bytes():
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def translate(status: int, raw: bytes, headers: Mapping[str, str] | None = None) -> Response:
    """A gateway answer (status, body bytes) in the seed's style."""
    if 300 <= status < 400 or status < 200:
        return unavailable(f"The gateway answered HTTP {status}")
    if status == 204 or not raw.strip():
        return Response(status_code=status, headers=dict(headers or {}))
    try:
        doc: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return unavailable("The gateway's answer is not JSON")
    if status < 400:
        data = doc["data"] if isinstance(doc, dict) and "data" in doc else doc
        return json_response(data, status, headers)
    error = doc.get("error") if isinstance(doc, dict) else None
    if not isinstance(error, dict):
        return error_response(status, "GATEWAY_ERROR", _refused(status), headers)
    code = error.get("code")
    message = error.get("message")
    details: dict[str, Any] = {}
    if isinstance(error.get("details"), list):
        details["errors"] = error["details"]
    return error_response(
        status,
        code if isinstance(code, str) and code else "GATEWAY_ERROR",
        message if isinstance(message, str) else _refused(status),
        headers,
        **details,
    )


def _refused(status: int) -> str:
    return f"The gateway refused the call (HTTP {status})"
