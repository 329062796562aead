"""How large a task may grow: artifacts, history and stored bytes, and the rolling window of a
subscription (a task meant never to end, whose events are relayed live but only the latest are kept)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from a2a_gateway.protocol import v1


@dataclass(frozen=True, slots=True)
class TaskLimits:
    """Past any of these a task fails (a subscription keeps its window instead)."""

    max_artifacts: int = 1000
    max_history: int = 1000
    max_bytes: int = 16 * 1024 * 1024
    window: int = 100

    def __post_init__(self) -> None:
        if min(self.max_artifacts, self.max_history, self.max_bytes, self.window) < 1:
            raise ValueError("task limits must be positive")


def part_bytes(parts: Iterable[v1.Part]) -> int:
    """About how many bytes the parts take once stored (text, data as JSON, raw bytes, URLs)."""
    size = 0
    for part in parts:
        if part.text is not None:
            size += len(part.text)
        elif part.data is not None:
            size += len(orjson.dumps(part.data))
        elif part.raw is not None:
            size += len(part.raw)
        elif part.url is not None:
            size += len(part.url)
    return size


def keep_window(limits: TaskLimits, task: v1.Task) -> list[str]:
    """Trim a subscription to its window: the oldest artifacts go (their ids are returned), and an
    artifact that keeps growing keeps only its latest parts."""
    artifacts = task.artifacts
    if artifacts is None:
        return []
    dropped: list[str] = []
    if len(artifacts) > limits.window:
        cut = len(artifacts) - limits.window
        dropped = [a.artifact_id for a in artifacts[:cut]]
        del artifacts[:cut]
    for artifact in artifacts:
        if len(artifact.parts) > limits.window:
            del artifact.parts[: len(artifact.parts) - limits.window]
    return dropped


def stored_size(task: v1.Task) -> int:
    """About how many bytes a stored task's artifacts and history take."""
    artifacts = sum(part_bytes(a.parts) for a in task.artifacts or ())
    return artifacts + sum(part_bytes(m.parts) for m in task.history or ())
