"""The REST tasks API of seed 002 (/api/v1/tasks, /api/dashboard/tasks) over the same gateway tasks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import Field
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from a2a_gateway.api.errors import rest_body
from a2a_gateway.api.health import Drain
from a2a_gateway.api.http import raw_header
from a2a_gateway.api.principal import Authenticator
from a2a_gateway.api.rest.bodies import RestBody, data, page, parse
from a2a_gateway.api.rest.browser_session import dashboard_principal
from a2a_gateway.api.rest.idempotency import Idempotency
from a2a_gateway.api.rest.views import STATUS_NAMES, parts_view, routing_view, task_view
from a2a_gateway.api.task_reads import list_readable, read_task
from a2a_gateway.auth.assertions import caller_of
from a2a_gateway.auth.models import Principal
from a2a_gateway.errors import GatewayError, InvalidParams, Unavailable
from a2a_gateway.protocol import v1
from a2a_gateway.protocol.ids import new_id
from a2a_gateway.routing.deadlines import Deadlines
from a2a_gateway.routing.metadata import AGENT_KEY
from a2a_gateway.routing.ports import CallLog
from a2a_gateway.tasks.broker import Subscription
from a2a_gateway.tasks.service import TaskService

MAX_TIMEOUT = 86_400


class NewTask(RestBody):
    """POST /api/v1/tasks body."""

    assigned_agent_id: str = Field(min_length=1, max_length=64)
    title: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=20_000)
    input: Any = None
    timeout_seconds: int | None = Field(default=None, ge=1, le=MAX_TIMEOUT)


class PartBody(RestBody):
    """A seed-style part: ``{"type": "text", "data": "..."}`` or ``{"type": "data", "data": {...}}``."""

    type: str = "text"
    data: Any = None


class ReplyMessage(RestBody):
    """The message of a reply."""

    role: str = "user"
    parts: list[PartBody] = Field(min_length=1, max_length=100)


class ReplyBody(RestBody):
    """POST /api/v1/tasks/{id}/reply body."""

    message: ReplyMessage


class DashboardTask(RestBody):
    """POST /api/dashboard/tasks body."""

    agent_id: str = Field(min_length=1, max_length=64)
    message: str = Field(min_length=1, max_length=20_000)


def _message(parts: list[v1.Part], task_id: str | None = None) -> v1.Message:
    return v1.Message(message_id=new_id(), role=v1.Role.USER, parts=parts, task_id=task_id)


def reply_parts(body: ReplyBody) -> list[v1.Part]:
    """A reply body's parts as A2A parts (a task's reply and a workflow step's reply alike)."""
    if body.message.role != "user":
        raise InvalidParams(
            "Replies are user messages", violations=[{"field": "message.role", "description": "user"}]
        )
    parts = []
    for part in body.message.parts:
        if part.type == "text" and isinstance(part.data, str):
            parts.append(v1.Part(text=part.data))
        elif part.type == "data" and part.data is not None:
            parts.append(v1.Part(data=part.data, media_type="application/json"))
        else:
            raise InvalidParams("Parts are {type: text, data: string} or {type: data, data: JSON}")
    return parts


class TaskApi:
    """The REST task routes; every task is a gateway task routed to ``assignedAgentId``."""

    def __init__(
        self,
        authn: Authenticator,
        service: TaskService,
        calls: CallLog | None = None,
        deadlines: Deadlines | None = None,
        idempotency_layer: Idempotency | None = None,
    ) -> None:
        self._authn = authn
        # Stored answers of POST /api/v1/tasks under an Idempotency-Key (None: the header is ignored).
        self.idempotency = idempotency_layer
        self._service = service
        self._calls = calls
        self._deadlines = deadlines or Deadlines(service)

    def routes(self) -> list[BaseRoute]:
        """The route table of this resource."""
        return [
            Route("/api/v1/tasks", self.create, methods=["POST"]),
            Route("/api/v1/tasks", self.list_tasks, methods=["GET"]),
            Route("/api/v1/tasks/{task_id}", self.get_one, methods=["GET"]),
            Route("/api/v1/tasks/{task_id}/cancel", self.cancel, methods=["POST"]),
            Route("/api/v1/tasks/{task_id}/reply", self.reply, methods=["POST"]),
            Route("/api/v1/tasks/{task_id}/stream", self.stream, methods=["GET"]),
            Route("/api/dashboard/tasks", self.dashboard_create, methods=["POST"]),
        ]

    async def _caller(self, request: Request, scope: str, *, routed: bool = False) -> Principal:
        # ``routed``: a read that a per-agent key answers with the tasks routed to its agent.
        principal = await self._authn.resolve(request, required=True)
        principal.require(scope, routed_tasks=routed)
        return principal

    async def _start(
        self, principal: Principal, agent_id: str, parts: list[v1.Part], limit_s: int | None
    ) -> v1.Task:
        request = v1.SendMessageRequest(
            message=_message(parts),
            configuration=v1.SendMessageConfiguration(return_immediately=True),
            metadata={AGENT_KEY: agent_id},
        )
        result = await self._service.send(principal.id, request, streaming=False, caller=caller_of(principal))
        assert result.task is not None
        task = result.task
        if limit_s is not None:
            self._deadlines.set(principal.id, task.id, limit_s)
        return task

    async def create(self, request: Request) -> Response:
        """POST /api/v1/tasks: 202, forwarded asynchronously."""
        principal = await self._caller(request, "tasks:write")
        await self._authn.limiter.check(
            "tasks:create", principal, request.client.host if request.client else None
        )
        if self.idempotency is None:
            return await self._create(request, principal)
        # A retry with the same key and body gets the first answer: the task is created (and paid) once.
        return await self.idempotency.run(request, principal.id, lambda: self._create(request, principal))

    async def _create(self, request: Request, principal: Principal) -> Response:
        body = await parse(request, NewTask)
        parts = [
            v1.Part(text="\n\n".join(t for t in (body.title, body.description) if t) or "(no description)")
        ]
        if body.input is not None:
            parts.append(v1.Part(data=body.input, media_type="application/json"))
        task = await self._start(principal, body.assigned_agent_id, parts, body.timeout_seconds)
        # The title travels in the message text; it is echoed here, not stored as its own field.
        return data({**task_view(task), "title": body.title}, 202)

    async def get_one(self, request: Request) -> Response:
        """GET /api/v1/tasks/{id}: messages, artifacts, status, and the routing record."""
        principal = await self._caller(request, "tasks:read", routed=True)
        view = task_view(await read_task(self._service, principal, request.path_params["task_id"], None))
        call = await self._calls.get(view["id"]) if self._calls is not None else None
        view["routing"] = routing_view(call) if call is not None else None
        return data(view)

    async def list_tasks(self, request: Request) -> Response:
        """GET /api/v1/tasks: the caller's tasks, newest first (``limit``, ``status``, ``cursor``)."""
        principal = await self._caller(request, "tasks:read", routed=True)
        params = request.query_params
        limit = params.get("limit", "50")
        if not limit.isdigit() or not 1 <= int(limit) <= 100:
            raise InvalidParams(
                "limit must be 1 to 100", violations=[{"field": "limit", "description": "1 to 100"}]
            )
        wanted = params.get("status")
        state = next((s for s, name in STATUS_NAMES.items() if name == wanted), None)
        if wanted and state is None:
            raise InvalidParams(
                f"Unknown status {wanted[:30]!r}", violations=[{"field": "status", "description": "unknown"}]
            )
        query = v1.ListTasksRequest(
            page_size=int(limit), page_token=params.get("cursor"), status=state, include_artifacts=True
        )
        found = await list_readable(self._service, principal, query)
        meta = {"total": found.total_size, "nextCursor": found.next_page_token or None}
        return page([task_view(t) for t in found.tasks], meta)

    async def cancel(self, request: Request) -> Response:
        """POST /api/v1/tasks/{id}/cancel (cancels upstream too)."""
        principal = await self._caller(request, "tasks:write")
        return data(task_view(await self._service.cancel(principal.id, request.path_params["task_id"])))

    async def reply(self, request: Request) -> Response:
        """POST /api/v1/tasks/{id}/reply: a follow-up message to a task waiting for input."""
        principal = await self._caller(request, "tasks:write")
        body = await parse(request, ReplyBody)
        message = _message(reply_parts(body), request.path_params["task_id"])
        result = await self._service.send(
            principal.id, v1.SendMessageRequest(message=message), streaming=False, caller=caller_of(principal)
        )
        assert result.task is not None
        return data(task_view(result.task))

    async def stream(self, request: Request) -> Response:
        """GET /api/v1/tasks/{id}/stream: SSE status, message and artifact events, then complete; or, when
        the stream is cut short (the gateway drains, the reader fell behind), a last ``error`` event
        saying where to reconnect. Every event has an ``id``; a client reconnecting with
        ``Last-Event-ID`` (or ``?lastEventId=``) gets what it missed (see ``_events``)."""
        principal = await self._caller(request, "tasks:read")
        task_id = request.path_params["task_id"]
        resume = _resume_point(request)
        task = await self._service.get(principal.id, task_id, None)
        if task.status.state.terminal:
            return EventSourceResponse(_finished(task), sep="\n")
        after, skip = (resume[0], resume[1]) if resume is not None else (None, -1)
        subscribed = await self._service.subscribe_resumable(principal.id, task_id, after)
        opened = _Opened(
            snapshot=subscribed.snapshot,
            sub=subscribed.sub,
            current=subscribed.current,
            resumed=subscribed.resumed,
            skip=skip if subscribed.resumed else -1,
            after=after if subscribed.resumed and after is not None else 0,
        )
        return EventSourceResponse(_events(opened, Drain.of(request)), ping=15, sep="\n")

    async def dashboard_create(self, request: Request) -> Response:
        """POST /api/dashboard/tasks: session cookie + CSRF, 20/min."""
        principal = await dashboard_principal(request, self._authn.auth)
        client = request.client.host if request.client else None
        await self._authn.limiter.check("dashboard:tasks", principal, client)
        body = await parse(request, DashboardTask)
        task = await self._start(principal, body.agent_id, [v1.Part(text=body.message)], None)
        return data({"taskId": task.id}, 202)


MAX_SEQ_DIGITS = 12


def _resume_point(request: Request) -> tuple[int | None, int] | None:
    """Where a reconnecting client stands: ``(after, skip)``, to resume after the task's event ``after``
    skipping the first ``skip + 1`` SSE events of the next one (-1: none); None for a first connection.

    An id is ``N`` (the snapshot, as of the task's event N) or ``N.k`` (the k-th SSE event made from
    the task's event N). Event numbers are the task's own, the same on every gateway process. An id of
    the earlier ``E-N`` form (before numbers were stored) starts from the snapshot (``after`` None).
    The header wins over the query.
    """
    raw = raw_header(request, b"last-event-id")
    name = "Last-Event-ID"
    if raw is None:
        raw, name = request.query_params.get("lastEventId"), "lastEventId"
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    legacy, dash, rest = text.partition("-")
    if dash and len(legacy) == LEGACY_EPOCH_LENGTH and all(c in HEX for c in legacy) and _is_id(rest):
        return None, -1
    if not _is_id(text):
        raise InvalidParams(
            f"{name} must be an event id of this stream (N or N.k)",
            violations=[{"field": name, "description": "an id this stream sent"}],
        )
    seq, _, part = text.partition(".")
    if part:
        return int(seq) - 1, int(part)
    return int(seq), -1


LEGACY_EPOCH_LENGTH = 8
HEX = frozenset("0123456789abcdef")


def _is_id(text: str) -> bool:
    seq, dot, part = text.partition(".")
    good_part = not dot or (part.isdigit() and len(part) <= 2)
    return seq.isdigit() and len(seq) <= MAX_SEQ_DIGITS and good_part


@dataclass(frozen=True, slots=True)
class _Opened:
    """A subscribed stream: the snapshot as of the task's event ``current``, and whether ``sub`` resumes
    a client's earlier stream (skipping the first ``skip + 1`` SSE events of its first event)."""

    snapshot: v1.Task
    sub: Subscription
    current: int
    resumed: bool
    skip: int
    after: int = 0  # a resumed stream: the client has the events up to this one (their state only)


def _sse(event: str, payload: Any, event_id: str | None = None) -> ServerSentEvent:
    return ServerSentEvent(data=orjson.dumps(payload).decode(), event=event, id=event_id)


async def _finished(task: v1.Task) -> AsyncIterator[ServerSentEvent]:
    yield _sse(
        "complete", {"status": STATUS_NAMES[task.status.state], "artifacts": task_view(task)["artifacts"]}
    )


async def _end_on_drain(sub: Subscription, drain: Drain) -> None:
    await drain.wait()
    sub.end(Unavailable("The gateway is draining (shutting down); reconnect to this stream"))


async def _events(opened: _Opened, drain: Drain) -> AsyncIterator[ServerSentEvent]:
    """Seed-style events: status, message, artifact, then complete at a terminal state; ``error`` with
    the URL to reconnect to when the stream ends early."""
    watcher = asyncio.create_task(_end_on_drain(opened.sub, drain))
    try:
        async with contextlib.aclosing(_seed_events(opened)) as events:
            async for event in events:
                yield event
    except GatewayError as error:
        body = rest_body(error)[1] | {"reconnect": f"/api/v1/tasks/{opened.snapshot.id}/stream"}
        yield _sse("error", body)
    finally:
        watcher.cancel()
        opened.sub.close()


async def _seed_events(opened: _Opened) -> AsyncGenerator[ServerSentEvent, None]:
    """The stream's events. A first connection starts with the snapshot's status (id ``N``, the event
    it reflects); a resumed one with the events the client missed. Each task event becomes one or two
    SSE events, ``N.0`` and ``N.1``. ``complete`` lists the task's artifacts: the snapshot's, and what
    the events after it added."""
    if not opened.resumed:
        yield _sse(
            "status",
            {"status": STATUS_NAMES[opened.snapshot.status.state]},
            str(opened.current),
        )
    artifacts: dict[str, dict[str, Any]] = {a["id"]: a for a in task_view(opened.snapshot)["artifacts"]}
    skip, first = opened.skip, True
    async for delivery in opened.sub.deliveries():
        made = _made_of(delivery.event, artifacts, counts=delivery.seq > opened.current)
        if delivery.seq <= opened.after:
            continue  # between the stored snapshot and what the client saw: it has this one
        for k, (name, payload) in enumerate(made):
            if first and k <= skip:
                continue
            yield _sse(name, payload, f"{delivery.seq}.{k}")
            if name == "complete":
                return
        first = False


def _made_of(
    event: v1.StreamResponse, artifacts: dict[str, dict[str, Any]], *, counts: bool
) -> list[tuple[str, Any]]:
    """The SSE events one task event makes; ``counts``: its artifact is new to ``artifacts`` (an event
    the snapshot already reflects is sent again to a resuming client, not added twice)."""
    if event.status_update is not None:
        status = event.status_update.status
        made: list[tuple[str, Any]] = []
        if status.message is not None:
            made.append(("message", {"role": "agent", "parts": parts_view(status.message.parts)}))
        if status.state.terminal:
            made.append(
                ("complete", {"status": STATUS_NAMES[status.state], "artifacts": list(artifacts.values())})
            )
        else:
            made.append(("status", {"status": STATUS_NAMES[status.state]}))
        return made
    if event.artifact_update is not None:
        art = event.artifact_update.artifact
        chunk: dict[str, Any] = {"id": art.artifact_id, "name": art.name, "parts": parts_view(art.parts)}
        known = artifacts.get(art.artifact_id)
        if event.artifact_update.append and known is not None:
            if counts:
                artifacts[art.artifact_id] = known | {"parts": [*known["parts"], *chunk["parts"]]}
            return [("artifact", chunk)]
        if known is not None and chunk["parts"][: len(known["parts"])] == known["parts"]:
            # The whole artifact again with more at its end (a relay re-attached after a takeover sends
            # what it has so far): a REST client appends chunks, so only what is new is sent.
            new = chunk["parts"][len(known["parts"]) :]
            artifacts[art.artifact_id] = chunk
            return [("artifact", chunk | {"parts": new})] if new else []
        if counts:
            artifacts[art.artifact_id] = chunk
        return [("artifact", chunk)]
    return []
