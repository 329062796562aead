"""What a relay has passed on of an upstream task, so any upstream event becomes the kit events that bring
the gateway task level with it: a task snapshot turns into the artifacts, chunks, messages and status it
holds beyond what was relayed, and nothing is relayed twice.

A status is compared with the last one passed on: a snapshot that repeats it gives nothing, nor does a pause
(input or auth required) that arrives again before the caller has answered it. Once the caller's reply
has gone upstream (``replied``), a snapshot may still show the pause it answered (an agent opens its
stream with the task as the reply found it), or the agent may have asked again in the same words (a bare
status, or the same message id): the two look alike. Such a snapshot gives nothing at once; if the
upstream says nothing more before its stream ends, it is asking again (``still_paused``).

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


def _key(status: v1.TaskStatus) -> tuple[v1.TaskState, str | None]:
    """What tells one status from another: its state and its message's id."""
    return status.state, status.message.message_id if status.message is not None else None


def _pause(status: v1.TaskStatus) -> InputRequired:
    message = status.message
    said = message_text(message) if message is not None else ""
    parts = list(message.parts) if message is not None else []
    auth = status.state is v1.TaskState.AUTH_REQUIRED
    return InputRequired(said or "Input required", parts=parts, auth=auth)


@dataclass(slots=True)
class Mirror:
    """The relay's view of the upstream task."""

    artifacts: OrderedDict[str, _Relayed] = field(default_factory=OrderedDict)
    messages: OrderedDict[str, None] = field(default_factory=OrderedDict)
    last_status: tuple[v1.TaskState, str | None] | None = None  # state and message id last passed on
    answered: bool = False  # the caller replied to the pause last passed on
    latest: v1.TaskStatus | None = None  # the upstream status last seen, passed on or not

    def seen(self, message: v1.Message) -> bool:
        """Whether this upstream message was already relayed (and remember it from now on)."""
        if message.message_id in self.messages:
            return True
        self.messages[message.message_id] = None
        if len(self.messages) > MAX_TRACKED:
            self.messages.popitem(last=False)
        return False

    def replied(self) -> None:
        """The caller's reply to the pause last passed on went upstream: the same pause seen again is
        the agent asking again (or, in a snapshot, perhaps the task as the reply found it)."""
        self.answered = True

    def still_paused(self) -> InputRequired | None:
        """The pause the upstream was last seen in, when it was not passed on: where its stream ends
        there, the agent answered the caller's reply by asking again."""
        latest = self.latest
        if latest is None or not latest.state.interrupted or not self.answered:
            return None
        self.last_status, self.answered = _key(latest), False
        return _pause(latest)

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
        """An upstream status as kit events. The status last passed on gives nothing when a snapshot
        repeats it, and a pause gives nothing when it arrives again before the caller has answered it."""
        message = status.message
        fresh_message = message is not None and not self.seen(message)
        key = _key(status)
        self.latest = status
        if key == self.last_status and (snapshot or (status.state.interrupted and not self.answered)):
            return []
        self.last_status, self.answered = key, False
        text = message_text(message) if message is not None and fresh_message else None
        if status.state.terminal:
            return [Status(status.state, text)]
        if status.state.interrupted:
            return [_pause(status)]
        if status.state is v1.TaskState.SUBMITTED:
            return [Status(v1.TaskState.SUBMITTED, text)]  # relayed only as a task's first event
        return [Status(v1.TaskState.WORKING, text)]

    def prime(self, artifacts: list[v1.Artifact]) -> None:
        """Count artifacts the gateway task holds already as relayed (a task taken back after a restart
        or a takeover): an upstream snapshot that extends them gives only their new parts."""
        for art in artifacts:
            self._remember(art.artifact_id, art.parts, append=False)

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
