"""Calling other agents through the gateway: A2A 1.0 JSON-RPC at its ``/a2a``, read defensively.

The example trading agents reach each other only through the gateway: each call names the target in
``metadata {agentId, skillId}`` and is authenticated by a gateway credential of the caller's (the owner's
``nex_`` key, ``Authorization: Bearer``), so the gateway routes it, records it and charges the caller.

- :meth:`GatewayClient.rpc` is one JSON-RPC call; :meth:`~GatewayClient.send` a blocking
  ``SendMessage`` with one data part, answering the task it ended in; :meth:`~GatewayClient.stream` a
  ``SendStreamingMessage`` over SSE, each event as a :class:`StreamUpdate`, the gateway's task canceled
  when the consumer stops before it ended; :meth:`~GatewayClient.discover` finds an agent by its skills;
  :meth:`~GatewayClient.me` is the caller's user id.
- The task helpers (:func:`task_state`, :func:`status_text`, :func:`refusal`, :func:`data_parts`,
  :func:`last_data`) read the parts of an A2A task a caller needs.

Answers are untrusted: bodies are read up to :data:`MAX_ANSWER_BYTES`, stream lines and events up to
:data:`MAX_EVENT_BYTES`, and anything that is not the expected shape raises the client's ``unavailable``
error (:class:`GatewayUnavailable`, or the subclass a caller names, such as the engine's
``ExchangeUnavailable``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

log = logging.getLogger(__name__)

MAX_ANSWER_BYTES: Final = 4 << 20
MAX_EVENT_BYTES: Final = 1 << 20
STREAM_IDLE_SECONDS: Final = 60.0  # the gateway sends a keep-alive comment every 15 s
CANCEL_TIMEOUT_SECONDS: Final = 5.0
RETRYABLE_RPC: Final = frozenset({-32051, -32052})  # upstream unreachable, gateway unavailable
TERMINAL_STATES: Final = frozenset(
    {"TASK_STATE_COMPLETED", "TASK_STATE_CANCELED", "TASK_STATE_REJECTED", "TASK_STATE_FAILED"}
)
_CODE: Final = re.compile(r"[A-Z][A-Z0-9_]*")
_HEADERS: Final = {"A2A-Version": "1.0", "Content-Type": "application/json", "Accept-Encoding": "identity"}


class GatewayUnavailable(Exception):
    """A call through the gateway gave nothing usable: a transport error or timeout, a gateway JSON-RPC
    error (``rpc_code``), an answer of the wrong shape or size, a stream that dropped. ``retryable``
    says whether the same call may work again (the gateway or the agent was unreachable)."""

    def __init__(self, message: str, *, rpc_code: int | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.rpc_code = rpc_code
        self.retryable = retryable


# ---------------------------------------------------------------------------------- reading tasks


def mapping(value: object) -> Mapping[str, Any]:
    """``value`` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def task_state(task: Mapping[str, Any]) -> str:
    """The task's state (``TASK_STATE_COMPLETED``, …), "" when it has none."""
    state = mapping(task.get("status")).get("state")
    return state if isinstance(state, str) else ""


def status_text(task: Mapping[str, Any]) -> str:
    """The text of the task's status message ("" without one)."""
    parts = mapping(mapping(task.get("status")).get("message")).get("parts")
    if not isinstance(parts, list):
        return ""
    return "".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))


def refusal(text: str) -> tuple[str, str]:
    """``"CODE: message"`` as (code, message); text without a code is all message, code ``REJECTED``."""
    code, sep, message = text.partition(": ")
    if sep and _CODE.fullmatch(code):
        return code, message
    return "REJECTED", text


def data_parts(artifact: object) -> list[dict[str, Any]]:
    """The data parts of an artifact."""
    parts = mapping(artifact).get("parts")
    if not isinstance(parts, list):
        return []
    return [p["data"] for p in parts if isinstance(p, dict) and isinstance(p.get("data"), dict)]


def last_data(task: Mapping[str, Any]) -> dict[str, Any] | None:
    """The first data part of the task's last artifact that has one; None when none has."""
    artifacts = task.get("artifacts")
    if isinstance(artifacts, list):
        for artifact in reversed(artifacts):
            found = data_parts(artifact)
            if found:
                return found[0]
    return None


def task_id_of(result: Mapping[str, Any]) -> str | None:
    """The task id a JSON-RPC result (a task, a status or an artifact update) names."""
    task = result.get("task")
    if isinstance(task, dict) and isinstance(task.get("id"), str):
        return str(task["id"])
    for kind in ("statusUpdate", "artifactUpdate"):
        found = mapping(result.get(kind)).get("taskId")
        if isinstance(found, str):
            return found
    return None


def data_message(data: Mapping[str, Any]) -> dict[str, Any]:
    """A user message with ``data`` as its one data part."""
    return {
        "messageId": uuid.uuid4().hex,
        "role": "ROLE_USER",
        "parts": [{"data": dict(data), "mediaType": "application/json"}],
    }


@dataclass(frozen=True)
class StreamUpdate:
    """One event of a streamed task: the task id, its state ("" when the event carries none), the
    status text, and the data parts of the artifact it carries (if any)."""

    task_id: str | None
    state: str
    text: str
    data: list[dict[str, Any]] = field(default_factory=list)


# ---------------------------------------------------------------------------------- the client


class GatewayClient:
    """Calls through the gateway at ``gateway_url`` (see the module doc).

    ``caller_key`` gives the credential for each call (None: no Authorization header, for an open
    gateway). ``timeout`` bounds each unary call; a stream may be idle up to ``stream_idle`` seconds.
    Failures raise ``unavailable`` (a :class:`GatewayUnavailable` class)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        gateway_url: str,
        caller_key: Callable[[], str | None],
        *,
        timeout: float = 15.0,
        stream_idle: float = STREAM_IDLE_SECONDS,
        unavailable: type[GatewayUnavailable] = GatewayUnavailable,
    ) -> None:
        self._client = client
        self.base_url = gateway_url.rstrip("/")
        self._caller_key = caller_key
        self._timeout = timeout
        self._stream_idle = stream_idle
        self._error = unavailable

    def headers(self) -> dict[str, str]:
        """The headers of a JSON-RPC call: the protocol version and the caller's credential."""
        headers = dict(_HEADERS)
        key = self._caller_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    # ------------------------------------------------------------------------------ reading

    def _json(self, body: bytes) -> Any:
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise self._error("the gateway's answer is not JSON") from None

    def rpc_result(self, doc: object) -> Mapping[str, Any]:
        """A JSON-RPC answer's ``result`` object; its ``error`` raised as the client's error, with
        ``rpc_code`` and ``retryable`` (the gateway or the agent unreachable)."""
        if not isinstance(doc, dict):
            raise self._error("the gateway's answer is not a JSON-RPC response")
        error = doc.get("error")
        if isinstance(error, dict):
            code = error.get("code")
            rpc_code = code if isinstance(code, int) and not isinstance(code, bool) else None
            text = error.get("message")
            raise self._error(
                f"the gateway answered {rpc_code}: {text if isinstance(text, str) else 'an error'}"[:500],
                rpc_code=rpc_code,
                retryable=rpc_code in RETRYABLE_RPC,
            )
        result = doc.get("result")
        if not isinstance(result, dict):
            raise self._error("the gateway's answer has no result")
        return result

    async def _read(self, response: httpx.Response, limit: int = MAX_ANSWER_BYTES) -> bytes:
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > limit:
                raise self._error(f"the gateway's answer is over {limit} bytes")
        return bytes(body)

    async def _sse_data(self, response: httpx.Response, limit: int = MAX_EVENT_BYTES) -> AsyncIterator[bytes]:
        """The ``data`` of each server-sent event; a line or an event over ``limit`` bytes is refused."""
        pending = bytearray()
        data: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            pending += chunk
            while True:
                end = pending.find(b"\n")
                if end < 0:
                    if len(pending) > limit:
                        raise self._error(f"a stream line is over {limit} bytes")
                    break
                line = bytes(pending[:end]).rstrip(b"\r")
                del pending[: end + 1]
                if not line:
                    if data:
                        yield b"\n".join(data)
                    data, size = [], 0
                elif line.startswith(b"data:"):
                    value = line[5:]
                    value = value[1:] if value.startswith(b" ") else value
                    size += len(value) + 1
                    if size > limit:
                        raise self._error(f"a stream event is over {limit} bytes")
                    data.append(value)
                # comments (": ping") and the other fields (event, id, retry) carry nothing we need
        if data:
            yield b"\n".join(data)

    # ------------------------------------------------------------------------------ calls

    async def rpc(self, method: str, params: Mapping[str, Any]) -> Mapping[str, Any]:
        """One JSON-RPC call's result (errors, transport failures, odd answers: the client's error)."""
        body = json.dumps({"jsonrpc": "2.0", "id": uuid.uuid4().hex, "method": method, "params": params})
        try:
            async with self._client.stream(
                "POST", f"{self.base_url}/a2a", content=body, headers=self.headers(), timeout=self._timeout
            ) as response:
                content = await self._read(response)
                status = response.status_code
        except httpx.HTTPError as error:
            raise self._error(f"the gateway could not be reached: {error!r}", retryable=True) from None
        try:
            doc = self._json(content)
        except GatewayUnavailable:
            raise self._error(f"the gateway answered HTTP {status}", retryable=status >= 500) from None
        return self.rpc_result(doc)

    async def send(self, agent_id: str, skill: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """A blocking ``SendMessage`` of ``data`` to ``skill`` of ``agent_id``: the task it ended in."""
        params = {"message": data_message(data), "metadata": {"agentId": agent_id, "skillId": skill}}
        task = (await self.rpc("SendMessage", params)).get("task")
        if not isinstance(task, dict):
            raise self._error(f"the {skill} call did not answer a task")
        return task

    async def stream(
        self, agent_id: str, skill: str, data: Mapping[str, Any]
    ) -> AsyncGenerator[StreamUpdate, None]:
        """A ``SendStreamingMessage`` of ``data`` to ``skill`` of ``agent_id``: each event as it comes.

        Ends after the event with a terminal state. Raises the client's error (``retryable``) when the
        stream fails or drops first. Close the iterator (``contextlib.aclosing``) to stop early: the
        gateway's task is then canceled (best effort), which ends the agent's task too."""
        params = {"message": data_message(data), "metadata": {"agentId": agent_id, "skillId": skill}}
        body = json.dumps(
            {"jsonrpc": "2.0", "id": uuid.uuid4().hex, "method": "SendStreamingMessage", "params": params}
        )
        headers = {**self.headers(), "Accept": "text/event-stream"}
        timeout = httpx.Timeout(self._timeout, read=self._stream_idle)
        task_id: str | None = None
        ended = False
        try:
            async with self._client.stream(
                "POST", f"{self.base_url}/a2a", content=body, headers=headers, timeout=timeout
            ) as response:
                if not response.headers.get("content-type", "").startswith("text/event-stream"):
                    self.rpc_result(self._json(await self._read(response)))
                    raise self._error(f"{skill} answered HTTP {response.status_code}, no stream")
                async for raw in self._sse_data(response):
                    result = self.rpc_result(self._json(raw))
                    task_id = task_id or task_id_of(result)
                    snapshot = mapping(result.get("task") or result.get("statusUpdate"))
                    state = task_state(snapshot)
                    # A task failed on the way is over too; a paused one is still to be canceled.
                    ended = state in TERMINAL_STATES
                    artifact = mapping(result.get("artifactUpdate")).get("artifact")
                    yield StreamUpdate(task_id, state, status_text(snapshot), data_parts(artifact))
                    if ended:
                        return
        except httpx.HTTPError as error:
            raise self._error(f"the {skill} stream failed: {error!r}", retryable=True) from None
        finally:
            if task_id is not None and not ended:
                await self.cancel(task_id)
        raise self._error(f"the {skill} stream dropped", retryable=True)

    async def cancel(self, task_id: str) -> None:
        """Best effort: cancel the gateway's task (its cancel reaches the agent's task)."""
        try:
            async with asyncio.timeout(CANCEL_TIMEOUT_SECONDS):
                await self.rpc("CancelTask", {"id": task_id})
        except Exception as error:  # never hide why a stream ended behind a failed cancel
            log.info("could not cancel the task %s: %r", task_id, error)

    async def get_json(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """A bounded ``GET`` of one of the gateway's REST routes: its ``data`` (non-200: the error)."""
        headers = {k: v for k, v in self.headers().items() if k != "Content-Type"}
        try:
            async with self._client.stream(
                "GET", f"{self.base_url}{path}", params=params, headers=headers, timeout=self._timeout
            ) as response:
                content = await self._read(response)
                status = response.status_code
        except httpx.HTTPError as error:
            raise self._error(f"the gateway could not be reached: {error!r}", retryable=True) from None
        if status != 200:
            raise self._error(f"{path} at the gateway answered HTTP {status}", retryable=status >= 500)
        return mapping(self._json(content)).get("data")

    async def discover(self, skills: Collection[str], *, tags: str) -> str:
        """The id of the first agent the gateway's discovery lists for ``tags`` whose card has every
        skill in ``skills``."""
        agents = await self.get_json("/api/v1/discover", {"skillTags": tags, "limit": "100"})
        for agent in agents if isinstance(agents, list) else []:
            found = mapping(agent).get("skills")
            ids = {s.get("id") for s in found if isinstance(s, dict)} if isinstance(found, list) else set()
            agent_id = mapping(agent).get("id")
            if ids >= set(skills) and isinstance(agent_id, str) and agent_id:
                return agent_id
        raise self._error(f"no agent at the gateway offers {' and '.join(sorted(skills))}")

    async def me(self) -> str:
        """The gateway user id the caller's credential stands for (``GET /api/v1/auth/me``)."""
        user_id = mapping(await self.get_json("/api/v1/auth/me")).get("id")
        if not isinstance(user_id, str) or not user_id:
            raise self._error("the gateway did not say who the caller is")
        return user_id
