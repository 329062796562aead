"""What a skill handler yields: status changes, artifacts, a direct reply, or a request for input."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from a2a_gateway.protocol import v1


def text_parts(text: str) -> list[v1.Part]:
    """One text part."""
    return [v1.Part(text=text)]


@dataclass(slots=True)
class Status:
    """Move the task to ``state``, optionally with an agent message explaining why."""

    state: v1.TaskState
    text: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass(slots=True)
class ArtifactChunk:
    """An artifact, or one chunk of it when ``append``/``last_chunk`` are used."""

    parts: list[v1.Part]
    name: str | None = None
    artifact_id: str | None = None
    description: str | None = None
    append: bool = False
    last_chunk: bool | None = None
    metadata: dict[str, Any] | None = None

    @classmethod
    def of_text(cls, text: str, **kwargs: Any) -> ArtifactChunk:
        """An artifact holding one text part."""
        return cls(parts=text_parts(text), **kwargs)

    @classmethod
    def of_data(cls, data: Any, **kwargs: Any) -> ArtifactChunk:
        """An artifact holding one JSON data part."""
        return cls(parts=[v1.Part(data=data, media_type="application/json")], **kwargs)


@dataclass(slots=True)
class Reply:
    """A direct message instead of a task; allowed only as a handler's first and only event."""

    parts: list[v1.Part]
    metadata: dict[str, Any] | None = None

    @classmethod
    def of_text(cls, text: str) -> Reply:
        """A reply holding one text part."""
        return cls(parts=text_parts(text))


@dataclass(slots=True)
class InputRequired:
    """Pause in ``input-required``; the generator receives the client's follow-up message."""

    text: str
    parts: list[v1.Part] = field(default_factory=list)
    auth: bool = False


AgentEvent = Status | ArtifactChunk | Reply | InputRequired
