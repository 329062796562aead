"""The REST workflows API: saving workflows (/api/v1/workflows), running them and following, answering
and canceling their runs (/api/v1/workflow-runs).

Everything is the caller's own: another user's workflow or run is 404. Reads need ``workflows:read``,
writes ``workflows:write``; a per-agent key may do neither (decision 0013). The run stream is SSE with
the run's event numbers as ids, so a client that reconnects with ``Last-Event-ID`` gets only what it
missed, and it ends after the run's final event (or, when the gateway drains, after an ``error`` event
saying to reconnect with ``Last-Event-ID``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from a2a_gateway.api.errors import rest_body
from a2a_gateway.api.health import Drain
from a2a_gateway.api.http import raw_header
from a2a_gateway.api.principal import Authenticator
from a2a_gateway.api.rest.bodies import RestBody, data, page, parse, query_int
from a2a_gateway.api.rest.idempotency import Idempotency
from a2a_gateway.api.rest.task_routes import ReplyBody, reply_parts
from a2a_gateway.auth.models import Principal
from a2a_gateway.errors import InvalidParams, NotFound, Unavailable
from a2a_gateway.protocol.base import format_timestamp
from a2a_gateway.workflows.dag import Dag
from a2a_gateway.workflows.models import Run, RunEvent, StepRun, StepSpec, Workflow
from a2a_gateway.workflows.service import MAX_PAGE, WorkflowService

READ = "workflows:read"
WRITE = "workflows:write"
EXECUTE_BUDGET = "workflows:execute"  # the rate limit budget of starting runs
KEEP_ALIVE_S = 15
MAX_EVENT_ID = 10**12


class NewWorkflow(RestBody):
    """POST /api/v1/workflows body: checked field by field by the workflow service, whose errors name
    the step and field at fault (``steps[1].dependsOn``)."""

    name: Any = None
    description: Any = None
    steps: Any = None


class ExecuteBody(RestBody):
    """POST /api/v1/workflows/{id}/execute body (optional): per-step input overrides by step index."""

    inputs: Any = None


def _time(value: Any) -> str | None:
    return format_timestamp(value) if value is not None else None


def step_spec_view(index: int, step: StepSpec) -> dict[str, Any]:
    """One step of a workflow, in the body's field names, with its price when the workflow was saved."""
    return {
        "index": index,
        "name": step.name,
        "agentId": step.agent_id,
        "skillId": step.skill_id,
        "input": step.input,
        "dependsOn": list(step.depends_on),
        "timeout": step.timeout_s,
        "retryPolicy": {"maxRetries": step.retry.max_retries, "backoffMs": step.retry.backoff_ms},
        "price": step.price,
    }


def workflow_view(workflow: Workflow) -> dict[str, Any]:
    """A saved workflow; ``budget`` is what one run costs at the prices it was saved with."""
    return {
        "id": workflow.id,
        "name": workflow.name,
        "description": workflow.description,
        "steps": [step_spec_view(i, s) for i, s in enumerate(workflow.steps)],
        "budget": workflow.budget,
        "createdAt": format_timestamp(workflow.created_at),
    }


def run_summary(run: Run) -> dict[str, Any]:
    """A run without its steps (the recent runs of a workflow)."""
    return {
        "id": run.id,
        "workflowId": run.workflow_id,
        "status": run.status.value,
        "budget": run.budget,
        "createdAt": format_timestamp(run.created_at),
        "endedAt": _time(run.ended_at),
        "error": run.error,
        "lastEventId": run.seq,
    }


def step_run_view(step: StepRun, workflow: Workflow | None) -> dict[str, Any]:
    """One step of a run: where it stands, its attempts' tasks, its question or its output."""
    return {
        "index": step.index,
        "name": workflow.steps[step.index].name if workflow is not None else None,
        "status": step.status.value,
        "attempt": step.attempt,
        "taskId": step.task_id,
        "taskIds": list(step.task_ids),
        "startedAt": _time(step.started_at),
        "endedAt": _time(step.ended_at),
        "retryAt": _time(step.retry_at),
        "error": step.error,
        "question": step.question,
        "output": step.output,
    }


def run_view(run: Run, workflow: Workflow | None = None) -> dict[str, Any]:
    """A run with its steps (named when the workflow is at hand) and the inputs it was started with."""
    return {
        **run_summary(run),
        "inputs": run.inputs,
        "steps": [step_run_view(s, workflow) for s in run.steps],
    }


def workflow_detail(workflow: Workflow, runs: list[Run]) -> dict[str, Any]:
    """A workflow with its recent runs (newest first), its DAG as Mermaid text (styled by the latest
    run's step statuses, if it has run) and its critical path by step timeouts."""
    dag = Dag(workflow.steps)
    latest = runs[0] if runs else None
    statuses = {s.index: s.status for s in latest.steps} if latest is not None else None
    return {
        **workflow_view(workflow),
        "runs": [run_summary(r) for r in runs],
        "mermaid": dag.mermaid(statuses),
        "criticalPath": dag.critical_path(),
    }


def event_data(event: RunEvent) -> dict[str, Any]:
    """What an SSE ``data:`` line carries: the event's data and when it happened."""
    return {**event.data, "at": format_timestamp(event.at)}


class WorkflowApi:
    """The REST workflow routes over the workflow service."""

    def __init__(
        self, authn: Authenticator, workflows: WorkflowService, idempotency: Idempotency | None = None
    ) -> None:
        self._authn = authn
        self._workflows = workflows
        # Stored answers of execute under an Idempotency-Key (None: the header is ignored).
        self.idempotency = idempotency

    def routes(self) -> list[BaseRoute]:
        """The route table of this resource."""
        return [
            Route("/api/v1/workflows", self.create, methods=["POST"]),
            Route("/api/v1/workflows", self.list_workflows, methods=["GET"]),
            Route("/api/v1/workflows/{workflow_id}", self.get_one, methods=["GET"]),
            Route("/api/v1/workflows/{workflow_id}/execute", self.execute, methods=["POST"]),
            Route("/api/v1/workflow-runs/{run_id}", self.get_run, methods=["GET"]),
            Route("/api/v1/workflow-runs/{run_id}/cancel", self.cancel, methods=["POST"]),
            Route("/api/v1/workflow-runs/{run_id}/steps/{index}/reply", self.reply, methods=["POST"]),
            Route("/api/v1/workflow-runs/{run_id}/stream", self.stream, methods=["GET"]),
        ]

    async def _caller(self, request: Request, scope: str) -> Principal:
        principal = await self._authn.resolve(request, required=True)
        principal.require(scope)  # a per-agent key is refused whatever its scopes
        return principal

    async def create(self, request: Request) -> Response:
        """POST /api/v1/workflows: 201 with the workflow; 400 naming the field, 402 if a run is
        beyond the caller's credits now."""
        principal = await self._caller(request, WRITE)
        body = await parse(request, NewWorkflow)
        raw = {"name": body.name, "description": body.description, "steps": body.steps}
        workflow = await self._workflows.create(principal.id, raw)
        return data(workflow_view(workflow), 201)

    async def list_workflows(self, request: Request) -> Response:
        """GET /api/v1/workflows: the caller's workflows, newest first (``limit``, ``offset``)."""
        principal = await self._caller(request, READ)
        limit = query_int(request, "limit", 50, 1, MAX_PAGE)
        offset = query_int(request, "offset", 0, 0, 1_000_000)
        found = await self._workflows.list_workflows(principal.id, limit, offset)
        return page([workflow_view(w) for w in found], {"limit": limit, "offset": offset})

    async def get_one(self, request: Request) -> Response:
        """GET /api/v1/workflows/{id}: the workflow, its recent runs, Mermaid text, critical path."""
        principal = await self._caller(request, READ)
        workflow, runs = await self._workflows.get(principal.id, request.path_params["workflow_id"])
        return data(workflow_detail(workflow, runs))

    async def execute(self, request: Request) -> Response:
        """POST /api/v1/workflows/{id}/execute: 202 with the run, which goes on in the background."""
        principal = await self._caller(request, WRITE)
        client = request.client.host if request.client else None
        await self._authn.limiter.check(EXECUTE_BUDGET, principal, client)
        if self.idempotency is None:
            return await self._execute(request, principal)
        # A retry with the same key and body gets the first answer: the run is started once.
        return await self.idempotency.run(request, principal.id, lambda: self._execute(request, principal))

    async def _execute(self, request: Request, principal: Principal) -> Response:
        body = await parse(request, ExecuteBody)
        run = await self._workflows.execute(
            principal.id,
            request.path_params["workflow_id"],
            body.inputs,
            key_id=principal.key_id,
            spend_cap=principal.daily_spend_cap,
        )
        return data(run_view(run), 202)

    async def get_run(self, request: Request) -> Response:
        """GET /api/v1/workflow-runs/{runId}: the run with every step's state."""
        principal = await self._caller(request, READ)
        run, workflow = await self._workflows.run_and_workflow(principal.id, request.path_params["run_id"])
        return data(run_view(run, workflow))

    async def cancel(self, request: Request) -> Response:
        """POST /api/v1/workflow-runs/{runId}/cancel: running steps stopped, the rest skipped; 409 once
        the run has ended."""
        principal = await self._caller(request, WRITE)
        run, workflow = await self._workflows.run_and_workflow(principal.id, request.path_params["run_id"])
        canceled = await self._workflows.cancel(principal.id, run.id)
        return data(run_view(canceled, workflow))

    async def reply(self, request: Request) -> Response:
        """POST /api/v1/workflow-runs/{runId}/steps/{index}/reply: answer a step's question (the body of
        POST /api/v1/tasks/{id}/reply); 409 when the step is not waiting for input."""
        principal = await self._caller(request, WRITE)
        run_id, raw_index = request.path_params["run_id"], request.path_params["index"]
        if not raw_index.isdigit() or len(raw_index) > 3:
            raise NotFound(f"The run has no step {raw_index[:10]}")
        parts = reply_parts(await parse(request, ReplyBody))
        run, workflow = await self._workflows.run_and_workflow(principal.id, run_id)
        answered = await self._workflows.reply(principal.id, run.id, int(raw_index), parts)
        return data(run_view(answered, workflow))

    async def stream(self, request: Request) -> Response:
        """GET /api/v1/workflow-runs/{runId}/stream: SSE ``event: <kind>``, ``id: <seq>``, ``data: <json>``
        from after ``Last-Event-ID`` (or ``?lastEventId=``), ending after the run's final event, or with an
        ``error`` event (reconnect with ``Last-Event-ID``) when the gateway drains."""
        principal = await self._caller(request, READ)
        after = _last_event_id(request)
        run_id = request.path_params["run_id"]
        events = await self._workflows.events(principal.id, run_id, after)
        return EventSourceResponse(
            _sse(events, run_id, after, Drain.of(request)), ping=KEEP_ALIVE_S, sep="\n"
        )


def _last_event_id(request: Request) -> int:
    """The event number a reconnecting client saw last (the header wins over the query), 0 if none."""
    raw = raw_header(request, b"last-event-id")
    name = "Last-Event-ID"
    if raw is None:
        raw, name = request.query_params.get("lastEventId"), "lastEventId"
    if raw is None or raw.strip() == "":
        return 0
    raw = raw.strip()
    if not raw.isdigit() or len(raw) > 12 or int(raw) > MAX_EVENT_ID:
        raise InvalidParams(
            f"{name} must be an event id (a non-negative integer)",
            violations=[{"field": name, "description": "a non-negative integer"}],
        )
    return int(raw)


async def _sse(
    events: AsyncIterator[RunEvent], run_id: str, after: int, drain: Drain
) -> AsyncIterator[ServerSentEvent]:
    """The run's events until its final one; when the drain starts first, an ``error`` event with where
    to reconnect and the ``Last-Event-ID`` to send."""
    last = after
    async with contextlib.aclosing(drain.until_started(events)) as live:
        async for event in live:
            last = event.seq
            yield ServerSentEvent(
                data=orjson.dumps(event_data(event)).decode(), event=event.kind.value, id=str(event.seq)
            )
            if event.kind.final:
                return
    if drain.draining:
        error = Unavailable("The gateway is draining (shutting down); reconnect with Last-Event-ID")
        body = rest_body(error)[1] | {
            "reconnect": f"/api/v1/workflow-runs/{run_id}/stream",
            "lastEventId": str(last),
        }
        yield ServerSentEvent(data=orjson.dumps(body).decode(), event="error")
