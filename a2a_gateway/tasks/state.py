"""Pure task transitions: each applies one change to a task and returns the event that describes it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from a2a_gateway.protocol import v1


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
        message_id=str(uuid.uuid4()),
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
    metadata: dict[str, Any] | None = None,
) -> v1.TaskStatusUpdateEvent:
    """Move a task to ``state``; an explanatory message also joins the history."""
    task.status = v1.TaskStatus(state=state, message=message, timestamp=now)
    if message is not None:
        assert task.history is not None
        task.history.append(message)
    return v1.TaskStatusUpdateEvent(
        task_id=task.id, context_id=task.context_id or "", status=task.status, metadata=metadata
    )


def add_message(task: v1.Task, message: v1.Message) -> None:
    """Append a client message to the history."""
    assert task.history is not None
    task.history.append(message)


def put_artifact(
    task: v1.Task, artifact: v1.Artifact, append: bool, last_chunk: bool | None
) -> v1.TaskArtifactUpdateEvent:
    """Add an artifact, replace one with the same id, or append a chunk's parts to it."""
    assert task.artifacts is not None
    existing = next((a for a in task.artifacts if a.artifact_id == artifact.artifact_id), None)
    if existing is None:
        task.artifacts.append(artifact.model_copy(update={"parts": list(artifact.parts)}))
    elif append:
        existing.parts.extend(artifact.parts)
        if artifact.metadata:
            existing.metadata = {**(existing.metadata or {}), **artifact.metadata}
    else:
        task.artifacts[task.artifacts.index(existing)] = artifact.model_copy(
            update={"parts": list(artifact.parts)}
        )
    return v1.TaskArtifactUpdateEvent(
        task_id=task.id,
        context_id=task.context_id or "",
        artifact=artifact,
        append=append or None,
        last_chunk=last_chunk,
    )


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
