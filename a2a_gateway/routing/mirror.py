"""What a relay has passed on of an upstream task, so any upstream event becomes the kit events that bring
the gateway task level with it: a task snapshot turns into the artifacts, chunks, messages and status it
holds beyond what was relayed, and nothing is relayed twice.

Only what de-duplication needs is kept: per artifact the number of parts relayed and the last chunk's
parts, per message its id. Memory stays bounded for streams that never end (subscriptions).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from a2a_gateway.agent import AgentEvent, ArtifactChunk, InputRequired, Status
from a2a_gateway.agent.skill import message_text
from a2a_gateway.protocol import v1

MAX_TRACKED = 1000  # artifacts and message ids remembered; the oldest are forgotten first


@dataclass(slots=True)
class _Relayed:
    """One artifact as relayed: how many parts, and the parts of the last chunk (its tail)."""

    count: int
    tail: list[v1.Part]


@dataclass(slots=True)
class Mirror:
    """The relay's view of the upstream task."""

    artifacts: OrderedDict[str, _Relayed] = field(default_factory=OrderedDict)
    messages: OrderedDict[str, None] = field(default_factory=OrderedDict)
    last_status: tuple[v1.TaskState, str | None] | None = None  # state and message id last passed on

    def seen(self, message: v1.Message) -> bool:
        """Whether this upstream message was already relayed (and remember it from now on)."""
        if message.message_id in self.messages:
            return True
        self.messages[message.message_id] = None
        if len(self.messages) > MAX_TRACKED:
            self.messages.popitem(last=False)
        return False

    def chunk(self, update: v1.TaskArtifactUpdateEvent) -> ArtifactChunk:
        """An upstream artifact update as a kit chunk."""
        art = update.artifact
        append = bool(update.append) and art.artifact_id in self.artifacts
        self._remember(art.artifact_id, art.parts, append)
        return ArtifactChunk(
            parts=art.parts, name=art.name, artifact_id=art.artifact_id, description=art.description,
            append=bool(update.append), last_chunk=update.last_chunk, metadata=art.metadata,
        )  # fmt: skip

    def status(self, status: v1.TaskStatus, *, snapshot: bool) -> list[AgentEvent]:
        """An upstream status as kit events; a snapshot's status already passed on gives nothing."""
        message = status.message
        fresh_message = message is not None and not self.seen(message)
        key = (status.state, message.message_id if message is not None else None)
        if snapshot and key == self.last_status:
            return []
        self.last_status = key
        text = message_text(message) if message is not None and fresh_message else None
        if status.state.terminal:
            return [Status(status.state, text)]
        if status.state.interrupted:
            said = message_text(message) if message is not None else ""
            parts = list(message.parts) if message is not None else []
            auth = status.state is v1.TaskState.AUTH_REQUIRED
            return [InputRequired(said or "Input required", parts=parts, auth=auth)]
        if status.state is v1.TaskState.SUBMITTED:
            return [Status(v1.TaskState.SUBMITTED, text)]  # relayed only as a task's first event
        return [Status(v1.TaskState.WORKING, text)]

    def snapshot(self, task: v1.Task, *, quiet_history: bool = False) -> list[AgentEvent]:
        """What a task snapshot holds beyond what was relayed: agent messages, artifacts, the status.

        ``quiet_history`` marks the snapshot's messages as relayed without passing them on (a resumed
        task already holds them).
        """
        events: list[AgentEvent] = []
        status_id = task.status.message.message_id if task.status.message is not None else None
        for message in task.history or []:
            if message.role is not v1.Role.AGENT or message.message_id == status_id:
                continue
            if not self.seen(message) and not quiet_history:
                events.append(Status(v1.TaskState.WORKING, message_text(message) or None))
        if quiet_history and task.status.message is not None:
            self.seen(task.status.message)
        for art in task.artifacts or []:
            known = self.artifacts.get(art.artifact_id)
            if known is not None and self._extends(known, art.parts):
                if len(art.parts) > known.count:
                    new = art.parts[known.count :]
                    self._remember(art.artifact_id, new, append=True)
                    events.append(self._chunk_of(art, new, append=True))
                continue
            self._remember(art.artifact_id, art.parts, append=False)
            events.append(self._chunk_of(art, art.parts, append=False))
        return events + self.status(task.status, snapshot=True)

    @staticmethod
    def _extends(known: _Relayed, parts: list[v1.Part]) -> bool:
        size = len(known.tail)
        return len(parts) >= known.count and parts[known.count - size : known.count] == known.tail

    @staticmethod
    def _chunk_of(art: v1.Artifact, parts: list[v1.Part], *, append: bool) -> ArtifactChunk:
        return ArtifactChunk(
            parts=list(parts), name=art.name, artifact_id=art.artifact_id, description=art.description,
            append=append, metadata=art.metadata,
        )  # fmt: skip

    def _remember(self, artifact_id: str, parts: list[v1.Part], append: bool) -> None:
        known = self.artifacts.get(artifact_id)
        count = (known.count if known is not None and append else 0) + len(parts)
        self.artifacts[artifact_id] = _Relayed(count, list(parts))
        self.artifacts.move_to_end(artifact_id)
        if len(self.artifacts) > MAX_TRACKED:
            self.artifacts.popitem(last=False)
