"""A2A client for upstream agents: send, stream, get, subscribe and cancel, in either protocol version.

Each call carries the caller assertion it is given in the ``A2A-Caller-Assertion`` header. The assertion is
a bearer credential while it lasts: it is never logged, and no error message names it.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncGenerator, Iterator
from typing import Any

import httpx
import orjson
from pydantic import BaseModel, ValidationError

from a2a_gateway.agent.caller import ASSERTION_HEADER
from a2a_gateway.errors import (
    ContentTypeNotSupported,
    GatewayError,
    InvalidAgentResponse,
    InvalidParams,
    OutboundRefused,
    TaskNotCancelable,
    TaskNotFound,
    UnsupportedOperation,
    UpstreamUnavailable,
)
from a2a_gateway.outbound.lean_http import BodyTooLarge, LeanHttpError, UnaryHttp
from a2a_gateway.outbound.upstream_read import MAX_BODY_BYTES, MAX_LINE_BYTES, read_body, sse_data, too_large
from a2a_gateway.protocol import translate as t
from a2a_gateway.protocol import v0_3, v1
from a2a_gateway.protocol.ids import new_id
from a2a_gateway.routing.ports import StreamingRefused

log = logging.getLogger(__name__)
STREAM_IDLE_SECONDS = 300.0
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_.\-]+")


def _envelope(method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": new_id(), "method": method, "params": params}


# An agent's A2A error that concerns the caller's request reaches the caller as that same error.
_PASSED_ON: dict[int, type[GatewayError]] = {
    -32001: TaskNotFound,
    -32002: TaskNotCancelable,
    -32004: UnsupportedOperation,
    -32005: ContentTypeNotSupported,
    -32602: InvalidParams,
}


class _SendReply(BaseModel):
    """A JSON-RPC answer to a 1.0 SendMessage, parsed in one step from its bytes."""

    result: v1.SendMessageResponse | None = None


def _result_of(reply: Any) -> Any:
    if not isinstance(reply, dict) or "result" not in reply:
        raise _upstream_error(reply)
    return reply["result"]


def _error_code(body: Any) -> Any:
    return (
        body["error"].get("code") if isinstance(body, dict) and isinstance(body.get("error"), dict) else None
    )


def _upstream_error(body: Any) -> GatewayError:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code, message = body["error"].get("code"), str(body["error"].get("message", ""))[:200]
        passed_on = _PASSED_ON.get(code) if isinstance(code, int) else None
        if passed_on is not None:
            return passed_on(f"The agent answered: {message}")
        return InvalidAgentResponse(f"The agent answered with error {code}: {message}")
    return InvalidAgentResponse("The agent's answer is not a JSON-RPC response")


class A2AClient:
    """Speaks to an upstream agent's JSON-RPC endpoint through the shared (SSRF-guarded) client.

    Every answer is read with limits: a body of at most ``max_body_bytes``, stream lines and events of
    at most ``max_line_bytes`` (the lean client keeps its own body limit). Past one, the call fails with
    InvalidAgentResponse and the connection is dropped, so an agent cannot make the gateway buffer more.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        timeout: float = 30.0,
        lean: UnaryHttp | None = None,
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_line_bytes: int = MAX_LINE_BYTES,
    ) -> None:
        self._client = client
        self._timeout = timeout
        # Unary calls (the hot path) go through the lean client when there is one; streams use httpx.
        self._lean = lean
        self._max_body = max_body_bytes
        self._max_line = max_line_bytes

    def _call(
        self,
        version: str,
        method: tuple[str, str],
        request: v1.SendMessageRequest | str,
        stream: bool,
        assertion: str | None,
    ) -> tuple[bytes, dict[str, str], httpx.Timeout]:
        """Body, headers and timeout of a call in the agent's protocol version (0.3 name, 1.0 name).

        ``request`` is a send's request, or the id of the task a get or subscribe is about.
        """
        legacy = version.startswith("0.3")
        if isinstance(request, str):
            params: dict[str, Any] = {"id": request}
        else:
            params = t.send_message_request_to_v0_3(request).wire() if legacy else request.wire()
        # Read raw and bounded: a compressed answer could inflate past every limit.
        headers = {"Content-Type": "application/json", "Accept-Encoding": "identity"}
        if not legacy:
            headers["A2A-Version"] = "1.0"
        if stream:
            headers["Accept"] = "text/event-stream"
        _assert(headers, assertion)
        body = orjson.dumps(_envelope(method[0] if legacy else method[1], params))
        # Between events (or before the answer) an agent may think for a while, but not forever.
        return body, headers, httpx.Timeout(self._timeout, read=STREAM_IDLE_SECONDS)

    def stream(
        self, url: str, version: str, request: v1.SendMessageRequest, *, assertion: str | None = None
    ) -> AsyncGenerator[v1.StreamResponse, None]:
        """Send a message and yield the upstream events, translated to 1.0."""
        return self._events(url, version, ("message/stream", "SendStreamingMessage"), request, assertion)

    def subscribe(
        self, url: str, version: str, task_id: str, *, assertion: str | None = None
    ) -> AsyncGenerator[v1.StreamResponse, None]:
        """Re-attach to a running upstream task and yield what follows (its snapshot first, in 1.0)."""
        return self._events(url, version, ("tasks/resubscribe", "SubscribeToTask"), task_id, assertion)

    async def _events(
        self,
        url: str,
        version: str,
        method: tuple[str, str],
        request: v1.SendMessageRequest | str,
        assertion: str | None,
    ) -> AsyncGenerator[v1.StreamResponse, None]:
        body, headers, timeout = self._call(version, method, request, True, assertion)
        with _upstream_errors():
            async with self._client.stream(
                "POST", url, content=body, headers=headers, timeout=timeout
            ) as response:
                if response.status_code != 200:
                    raise UpstreamUnavailable(f"The agent answered HTTP {response.status_code}")
                if not response.headers.get("content-type", "").startswith("text/event-stream"):
                    body = _json(await read_body(response, self._max_body))
                    error = _upstream_error(body)
                    if _error_code(body) in (-32004, -32601):  # unsupported, or no such method
                        raise StreamingRefused(error.message)
                    raise error
                async for data in sse_data(response, self._max_line):
                    yield _event(data, version.startswith("0.3"))

    async def send(
        self, url: str, version: str, request: v1.SendMessageRequest, *, assertion: str | None = None
    ) -> v1.StreamResponse:
        """A blocking send: the upstream's final (or paused) task, or its direct message, as one event."""
        content = await self._exchange(
            url, self._call(version, ("message/send", "SendMessage"), request, False, assertion)
        )
        if not version.startswith("0.3"):
            # Straight from the bytes (the common case); anything else takes the general path below.
            with contextlib.suppress(ValidationError):
                fast = _SendReply.model_validate_json(content)
                if fast.result is not None:
                    return v1.StreamResponse(task=fast.result.task, message=fast.result.message)
        answer = _result_of(_json(content))
        try:
            if version.startswith("0.3"):
                result = v0_3.parse_send_message_result(answer)
                if isinstance(result, v0_3.Task):
                    return v1.StreamResponse(task=t.task_to_v1(result))
                return v1.StreamResponse(message=t.message_to_v1(result))
            parsed = v1.SendMessageResponse.model_validate(answer)
            return v1.StreamResponse(task=parsed.task, message=parsed.message)
        except (ValidationError, ValueError):
            raise InvalidAgentResponse("The agent's answer is not a valid A2A result") from None

    async def get_task(
        self, url: str, version: str, task_id: str, *, assertion: str | None = None
    ) -> v1.Task:
        """The upstream task as the agent has it now."""
        call = self._call(version, ("tasks/get", "GetTask"), task_id, False, assertion)
        result = await self._result(url, call)
        try:
            if version.startswith("0.3"):
                return t.task_to_v1(v0_3.Task.model_validate(result))
            return v1.Task.model_validate(result)
        except (ValidationError, ValueError):
            raise InvalidAgentResponse("The agent's answer is not a valid A2A task") from None

    async def _result(self, url: str, call: tuple[bytes, dict[str, str], httpx.Timeout]) -> Any:
        """The ``result`` of a unary call; transport failures and JSON-RPC errors as gateway errors."""
        return _result_of(_json(await self._exchange(url, call)))

    async def _exchange(self, url: str, call: tuple[bytes, dict[str, str], httpx.Timeout]) -> bytes:
        """The body of a unary call's 200 answer; transport failures as gateway errors."""
        body, headers, timeout = call
        with _upstream_errors():
            if self._lean is not None:
                answer = await self._lean.post(url, body, headers)
                status, content = answer.status, answer.body
            else:
                async with self._client.stream(
                    "POST", url, content=body, headers=headers, timeout=timeout
                ) as response:
                    status = response.status_code
                    # The body of a failed call is never read, so it costs nothing whatever its size.
                    content = await read_body(response, self._max_body) if status == 200 else b""
        if status != 200:
            raise UpstreamUnavailable(f"The agent answered HTTP {status}")
        return content

    async def ping(self, url: str, version: str, *, assertion: str | None = None) -> None:
        """A cheap real call (GetTask of a task that cannot exist): any well-formed JSON-RPC answer,
        result or error, shows the agent is serving A2A. Raises the gateway's upstream errors otherwise.

        ``assertion`` (for no caller and no task) lets an agent that requires the gateway answer it."""
        probe = "health-probe-" + new_id()
        body, headers, _ = self._call(version, ("tasks/get", "GetTask"), probe, False, assertion)
        with _upstream_errors():
            async with self._client.stream(
                "POST", url, content=body, headers=headers, timeout=self._timeout
            ) as response:
                status = response.status_code
                content = await read_body(response, self._max_body) if status == 200 else b""
        if status != 200:
            raise UpstreamUnavailable(f"The agent answered HTTP {status}")
        reply = _json(content)
        if not isinstance(reply, dict) or not ("result" in reply or isinstance(reply.get("error"), dict)):
            raise InvalidAgentResponse("The agent's answer is not a JSON-RPC response")

    async def aclose(self) -> None:
        """Close the lean client's idle connections (the shared httpx client is closed by its owner)."""
        if self._lean is not None:
            await self._lean.aclose()

    async def cancel(self, url: str, version: str, task_id: str, *, assertion: str | None = None) -> None:
        """Best-effort cancel of an upstream task (failures are logged, not raised)."""
        legacy = version.startswith("0.3")
        body = _envelope("tasks/cancel" if legacy else "CancelTask", {"id": task_id})
        headers = {"Content-Type": "application/json", "Accept-Encoding": "identity"}
        if not legacy:
            headers["A2A-Version"] = "1.0"
        _assert(headers, assertion)
        try:
            # The answer is not needed: the response is closed without reading its body.
            async with self._client.stream(
                "POST", url, content=orjson.dumps(body), headers=headers, timeout=self._timeout
            ):
                pass
        except (httpx.HTTPError, OutboundRefused):
            log.warning("upstream cancel failed", extra={"upstreamTaskId": task_id})


def _assert(headers: dict[str, str], assertion: str | None) -> None:
    """Add the caller assertion to a call's headers. It is a compact JWS (base64url and dots); anything
    else is refused, as the lean client writes header values as they are."""
    if assertion is None:
        return
    if _COMPACT_JWS.fullmatch(assertion) is None:
        raise ValueError("a caller assertion must be a compact JWS")
    headers[ASSERTION_HEADER] = assertion


@contextlib.contextmanager
def _upstream_errors() -> Iterator[None]:
    """Transport failures as the gateway's upstream error, with a message safe to show a caller."""
    try:
        yield
    except OutboundRefused:
        # The guard logged why; the caller is not told what the agent's host name resolves to.
        raise UpstreamUnavailable("The agent's endpoint is not allowed") from None
    except httpx.TimeoutException:
        raise UpstreamUnavailable("The agent did not answer in time") from None
    except BodyTooLarge as refused:
        raise too_large(refused.limit) from None
    except LeanHttpError as failed:
        if failed.args == ("timed out",):
            raise UpstreamUnavailable("The agent did not answer in time") from None
        raise UpstreamUnavailable("The agent could not be reached") from None
    except httpx.HTTPError:
        raise UpstreamUnavailable("The agent could not be reached") from None


def _json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def _event(data: bytes, legacy: bool) -> v1.StreamResponse:
    body = _json(data)
    if not isinstance(body, dict) or "result" not in body:
        raise _upstream_error(body)
    try:
        if legacy:
            return t.stream_response_to_v1(v0_3.parse_stream_event(body["result"]))
        return v1.StreamResponse.model_validate(body["result"])
    except (ValidationError, ValueError):
        raise InvalidAgentResponse("The agent streamed an event that is not valid A2A") from None
