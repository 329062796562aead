"""Pure task transitions, and the stream events that describe them.

Measured: pydantic's validating constructors (Rust) are 2-3x faster than ``model_construct`` (Python)
for these small models, so this hot-path module uses plain constructors.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from a2a_gateway.protocol import v1
from a2a_gateway.protocol.ids import new_id


def new_task(task_id: str, context_id: str, message: v1.Message, now: datetime) -> v1.Task:
    """A submitted task whose history starts with the triggering message."""
    return v1.Task(
        id=task_id,
        context_id=context_id,
        status=v1.TaskStatus(state=v1.TaskState.SUBMITTED, timestamp=now),
        artifacts=[],
        history=[message],
    )


def agent_message(task: v1.Task, parts: list[v1.Part], metadata: dict[str, Any] | None = None) -> v1.Message:
    """A message from the agent within a task."""
    return v1.Message(
        message_id=new_id(),
        context_id=task.context_id,
        task_id=task.id,
        role=v1.Role.AGENT,
        parts=parts,
        metadata=metadata,
    )


def set_status(
    task: v1.Task,
    state: v1.TaskState,
    now: datetime,
    message: v1.Message | None = None,
    *,
    record: bool = True,
) -> None:
    """Move a task to ``state``; an explanatory message also joins the history (unless ``record`` is
    False: a subscription whose history is full keeps only its latest status message)."""
    task.status = v1.TaskStatus(state=state, message=message, timestamp=now)
    if message is not None and record:
        assert task.history is not None
        task.history.append(message)


def status_event(task: v1.Task, metadata: dict[str, Any] | None = None) -> v1.StreamResponse:
    """The statusUpdate announcing the task's current status."""
    event = v1.TaskStatusUpdateEvent(
        task_id=task.id, context_id=task.context_id or "", status=task.status, metadata=metadata
    )
    return v1.StreamResponse(status_update=event)


def add_message(task: v1.Task, message: v1.Message) -> None:
    """Append a client message to the history."""
    assert task.history is not None
    task.history.append(message)


def put_artifact(task: v1.Task, artifact: v1.Artifact, append: bool) -> None:
    """Add an artifact, replace one with the same id, or append a chunk's parts to it."""
    assert task.artifacts is not None
    existing = next((a for a in task.artifacts if a.artifact_id == artifact.artifact_id), None)
    if existing is not None and append:
        existing.parts.extend(artifact.parts)
        if artifact.metadata:
            existing.metadata = {**(existing.metadata or {}), **artifact.metadata}
        return
    stored = artifact.model_copy(update={"parts": list(artifact.parts)})
    if existing is None:
        task.artifacts.append(stored)
    else:
        task.artifacts[task.artifacts.index(existing)] = stored


def artifact_event(
    task: v1.Task, artifact: v1.Artifact, append: bool, last_chunk: bool | None
) -> v1.StreamResponse:
    """The artifactUpdate announcing an artifact or one chunk of it."""
    event = v1.TaskArtifactUpdateEvent(
        task_id=task.id,
        context_id=task.context_id or "",
        artifact=artifact,
        append=append or None,
        last_chunk=last_chunk,
    )
    return v1.StreamResponse(artifact_update=event)


def snapshot(task: v1.Task, history_length: int | None, include_artifacts: bool = True) -> v1.Task:
    """A copy of a task for a reader: history trimmed to the newest ``history_length`` messages."""
    history = list(task.history or [])
    if history_length is not None:
        history = history[len(history) - history_length :] if history_length else []
    artifacts = list(task.artifacts or []) if include_artifacts else []
    return v1.Task(
        id=task.id,
        context_id=task.context_id,
        status=task.status,
        artifacts=artifacts or None,
        history=history or None,
        metadata=task.metadata,
    )


def readable(value: v1.TaskState) -> str:
    """A state name readable in either protocol version ("input_required", not the enum string)."""
    return value.name.lower()
