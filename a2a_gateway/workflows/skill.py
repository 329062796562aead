"""The gateway's own ``run-workflow`` skill: a workflow run as one A2A task.

A data part ``{"workflowId": "...", "inputs": {"<step>": {...}}}`` starts a run of one of the caller's
workflows; each run event becomes a status update of the task (its kind and data in the status
metadata), the run's final outputs become the task's artifacts, and the task ends as the run does.
Canceling the task cancels the run.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import Any

from a2a_gateway.agent import AgentEvent, ArtifactChunk, Skill, SkillContext, Status, skill
from a2a_gateway.auth.models import ANONYMOUS_ID
from a2a_gateway.errors import GatewayError
from a2a_gateway.protocol import v1
from a2a_gateway.workflows.models import EventKind, RunEvent
from a2a_gateway.workflows.service import WorkflowService

SKILL_ID = "run-workflow"
DESCRIPTION = (
    "Runs one of your saved workflows. Send a data part {workflowId, inputs?: {<step index>: {...}}}; "
    "the task streams the run's step events as status updates and ends with the outputs of its final "
    "steps as artifacts. Canceling the task cancels the run."
)
_ENDS = {
    EventKind.RUN_COMPLETED: v1.TaskState.COMPLETED,
    EventKind.RUN_FAILED: v1.TaskState.FAILED,
    EventKind.RUN_CANCELED: v1.TaskState.CANCELED,
}


def describe(event: RunEvent) -> str:
    """One line a person can read for a run event."""
    d = event.data
    step = d.get("step")
    match event.kind:
        case EventKind.STEP_STARTED:
            return f"step {step} ({d.get('name')}) started, attempt {d.get('attempt')}"
        case EventKind.STEP_RETRY:
            return f"step {step} failed ({d.get('error')}); retrying in {d.get('waitMs')} ms"
        case EventKind.STEP_INPUT_REQUIRED:
            return f"step {step} asks: {d.get('question')}"
        case EventKind.STEP_COMPLETED:
            return f"step {step} completed"
        case EventKind.STEP_FAILED:
            return f"step {step} failed: {d.get('error')}"
        case EventKind.STEP_SKIPPED:
            return f"step {step} skipped: {d.get('reason')}"
        case EventKind.RUN_COMPLETED:
            return "the run completed"
        case EventKind.RUN_FAILED:
            return f"the run failed: {d.get('error')}"
        case _:
            return "the run was canceled"


def run_workflow_skill(workflows: WorkflowService) -> Skill:
    """The skill, bound to a workflow service."""

    @skill(
        SKILL_ID,
        "Run a workflow",
        DESCRIPTION,
        tags=["workflow", "orchestration"],
        examples=['{"workflowId": "3f0c..."}'],
    )
    async def run_workflow(ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
        request = _request(ctx.data)
        if isinstance(request, str):
            yield Status(v1.TaskState.REJECTED, f"Cannot run: {request}")
            return
        owner = ctx.owner
        if not owner or owner == ANONYMOUS_ID:
            yield Status(v1.TaskState.REJECTED, "Authenticate to run your workflows")
            return
        workflow_id, inputs = request
        try:
            caller = ctx.caller
            run = await workflows.execute(
                owner, workflow_id, inputs, key_id=caller.key_id, spend_cap=caller.spend_cap
            )
        except GatewayError as exc:
            yield Status(v1.TaskState.REJECTED, f"Cannot run: {exc.message}", metadata=exc.metadata or None)
            return
        ended = False
        try:
            yield Status(v1.TaskState.WORKING, f"run {run.id} started", metadata={"workflowRunId": run.id})
            async for event in await workflows.events(owner, run.id):
                meta: dict[str, Any] = {"workflowRunId": run.id, "runEvent": event.kind.value, **event.data}
                final = _ENDS.get(event.kind)
                if final is None:
                    yield Status(v1.TaskState.WORKING, describe(event), metadata=meta)
                    continue
                ended = True
                for output in event.data.get("outputs", ()):
                    yield ArtifactChunk(
                        parts=_parts(output.get("artifacts", [])),
                        name=f"step {output.get('step')}: {output.get('name')}",
                        artifact_id=f"step-{output.get('step')}",
                    )
                yield Status(final, describe(event), metadata=meta)
                return
        finally:
            if not ended:  # the task was canceled (or the gateway stops): the run stops with it
                with contextlib.suppress(GatewayError):
                    await workflows.cancel(owner, run.id)

    return run_workflow


def _request(data: Any) -> tuple[str, Any] | str:
    if not isinstance(data, dict):
        return "send a data part {workflowId, inputs?}"
    workflow_id = data.get("workflowId")
    if not isinstance(workflow_id, str) or not workflow_id or len(workflow_id) > 200:
        return "workflowId must be a workflow's id"
    return workflow_id, data.get("inputs")


def _parts(artifacts: list[dict[str, Any]]) -> list[v1.Part]:
    parts: list[v1.Part] = []
    for artifact in artifacts:
        for raw in artifact.get("parts", ()):
            with contextlib.suppress(ValueError):
                parts.append(v1.Part.model_validate(raw))
    return parts or [v1.Part(text="(no output)")]
