"""Drives a skill handler's events into task transitions, persistence, fan-out and push."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from a2a_gateway.agent import AgentEvent, ArtifactChunk, InputRequired, Reply, Status
from a2a_gateway.agent.events import text_parts
from a2a_gateway.errors import ContentTypeNotSupported, GatewayError, InvalidParams, UnsupportedOperation
from a2a_gateway.protocol import v1
from a2a_gateway.protocol.ids import new_id
from a2a_gateway.tasks import state
from a2a_gateway.tasks.broker import Delivery, TaskEventBroker
from a2a_gateway.tasks.limits import TaskLimits, keep_window, part_bytes
from a2a_gateway.tasks.live import Crash, Handler, LiveTask, Unstarted
from a2a_gateway.tasks.ports import PushNotifier, TaskEventBus, TaskRepository

log = logging.getLogger(__name__)

SKILL_FAILED = "The skill failed with an internal error."
# Refusals that judge the request itself: the task is rejected rather than failed.
_REJECTIONS = (InvalidParams, ContentTypeNotSupported, UnsupportedOperation)


class _Stopped:
    """The first event ended the task already (a refusal, or a direct reply)."""


_STOPPED = _Stopped()


class TaskRunner:
    """Turns handler events into task state; one instance serves every task of a service."""

    def __init__(
        self,
        repo: TaskRepository,
        broker: TaskEventBroker,
        notifier: PushNotifier | None,
        clock: Callable[[], datetime],
        forget: Callable[[LiveTask], None],
        *,
        limits: TaskLimits | None = None,
        bus: TaskEventBus | None = None,
    ) -> None:
        self._repo = repo
        self._broker = broker
        self._bus = bus
        self._notifier = notifier
        self._clock = clock
        self._forget = forget
        self._limits = limits or TaskLimits()

    async def drive(
        self,
        live: LiveTask,
        gen: Handler,
        first: AgentEvent | Crash | Unstarted | None,
        resume: v1.Message | None,
    ) -> None:
        """Run a handler from its first event (or resume it with a follow-up) until it stops."""
        try:
            if resume is not None:
                await self.status(live, v1.TaskState.WORKING)
                event: AgentEvent | Crash | None = await gen.asend(resume)
            else:
                if isinstance(first, Unstarted):
                    fetched = await self._first(live, gen)
                    if isinstance(fetched, _Stopped):
                        return
                    first = fetched
                if isinstance(first, Status) and first.state is v1.TaskState.SUBMITTED:
                    # "Accepted": the task exists and stays submitted until the skill says more (a relay
                    # passes on an upstream task that has not started yet).
                    first = await gen.__anext__()
                if not isinstance(first, Status):
                    await self.status(live, v1.TaskState.WORKING)
                event = first
            while True:
                if isinstance(event, Crash):
                    raise RuntimeError("skill raised before its first event")
                if event is None or await self._apply(live, gen, event):
                    break
                event = await gen.__anext__()
            if event is None:
                await self.status(live, v1.TaskState.COMPLETED)
        except StopAsyncIteration:
            if not live.state.terminal:
                await self.status(live, v1.TaskState.COMPLETED)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("skill failed", extra={"taskId": live.task.id})
            if not live.state.terminal:
                await self.status(live, v1.TaskState.FAILED, SKILL_FAILED)
            await _close(gen)

    async def _first(self, live: LiveTask, gen: Handler) -> AgentEvent | _Stopped | None:
        """The first event of a task that was handed back before it: a refusal (what a blocking send
        answers as an error) ends the task rejected or failed, a direct reply ends it completed."""
        try:
            first = await gen.__anext__()
        except StopAsyncIteration:
            return None
        except GatewayError as refused:
            log.info(
                "skill refused a task handed back at once: %s", refused.reason, extra={"taskId": live.task.id}
            )
            wanted = v1.TaskState.REJECTED if isinstance(refused, _REJECTIONS) else v1.TaskState.FAILED
            await self.status(live, wanted, refused.message)
            return _STOPPED
        if not isinstance(first, Reply):
            return first
        await _close(gen)
        message = state.agent_message(live.task, first.parts, first.metadata)
        state.set_status(live.task, v1.TaskState.COMPLETED, self._clock(), message)
        await self.emit(live, state.status_event, terminal=True)
        return _STOPPED

    async def _apply(self, live: LiveTask, gen: Handler, event: AgentEvent) -> bool:
        """Apply one event; True when the handler's run stops here (terminal or paused)."""
        if isinstance(event, ArtifactChunk):
            too_large = self._artifact_over(live, event)
            if too_large is not None:
                return await self._fail_over_limit(live, gen, too_large)
            await self._artifact(live, event)
            return False
        if isinstance(event, InputRequired):
            wanted = v1.TaskState.AUTH_REQUIRED if event.auth else v1.TaskState.INPUT_REQUIRED
            return await self._pause(live, gen, wanted, event.parts or text_parts(event.text))
        if isinstance(event, Status):
            if event.state.interrupted:
                return await self._pause(live, gen, event.state, text_parts(event.text or "Input required"))
            if event.state in (v1.TaskState.SUBMITTED, v1.TaskState.UNSPECIFIED):
                raise ValueError(f"a skill may not move a task to {event.state}")
            if event.text and not event.state.terminal:
                too_large = self._message_over(live, text_parts(event.text))
                if too_large is not None:
                    return await self._fail_over_limit(live, gen, too_large)
            await self.status(live, event.state, event.text, event.metadata)
            if event.state.terminal:
                await _close(gen)
                return True
            return False
        if isinstance(event, Reply):
            raise ValueError("a direct reply is only allowed as a skill's first event")
        raise TypeError(f"unknown event {type(event).__name__}")

    async def _pause(self, live: LiveTask, gen: Handler, wanted: v1.TaskState, parts: list[v1.Part]) -> bool:
        too_large = self._message_over(live, parts)
        if too_large is not None:
            return await self._fail_over_limit(live, gen, too_large)
        live.generator = gen
        live.stored_bytes += part_bytes(parts)
        state.set_status(live.task, wanted, self._clock(), state.agent_message(live.task, parts))
        await self.emit(live, state.status_event, interrupted=True)
        return True

    # --- limits (tasks/limits.py) -----------------------------------------------------------------

    def _artifact_over(self, live: LiveTask, chunk: ArtifactChunk) -> str | None:
        """Why storing this chunk would take the task past its limits (a subscription never is)."""
        if live.subscription:
            return None
        limits = self._limits
        artifacts = live.task.artifacts or []
        known = chunk.artifact_id is not None and any(a.artifact_id == chunk.artifact_id for a in artifacts)
        extends_last = chunk.append and chunk.artifact_id is None and bool(artifacts)
        if not known and not extends_last and len(artifacts) >= limits.max_artifacts:
            return f"The task exceeded its limit of {limits.max_artifacts} artifacts"
        if live.stored_bytes + part_bytes(chunk.parts) > limits.max_bytes:
            return f"The task exceeded its limit of {limits.max_bytes} stored bytes"
        return None

    def _message_over(self, live: LiveTask, parts: list[v1.Part]) -> str | None:
        """Why one more agent message would take the task past its limits."""
        if live.subscription:
            return None
        limits = self._limits
        if len(live.task.history or ()) >= limits.max_history:
            return f"The task exceeded its limit of {limits.max_history} history messages"
        if live.stored_bytes + part_bytes(parts) > limits.max_bytes:
            return f"The task exceeded its limit of {limits.max_bytes} stored bytes"
        return None

    async def _fail_over_limit(self, live: LiveTask, gen: Handler, reason: str) -> bool:
        """Fail the task with the limit it reached and stop its skill (a relay cancels upstream)."""
        log.warning("task stopped at a size limit: %s", reason, extra={"taskId": live.task.id})
        await self.status(live, v1.TaskState.FAILED, reason)
        await _close(gen)
        return True

    async def _artifact(self, live: LiveTask, chunk: ArtifactChunk) -> None:
        artifacts = live.task.artifacts or []
        artifact_id = chunk.artifact_id
        if artifact_id is None:
            artifact_id = artifacts[-1].artifact_id if chunk.append and artifacts else new_id()
        artifact = v1.Artifact(
            artifact_id=artifact_id,
            name=chunk.name,
            description=chunk.description,
            parts=chunk.parts,
            metadata=chunk.metadata,
        )
        replaced = (
            None if chunk.append else next((a for a in artifacts if a.artifact_id == artifact_id), None)
        )
        state.put_artifact(live.task, artifact, chunk.append)
        dropped: list[str] = []
        if live.subscription:
            dropped = keep_window(self._limits, live.task)
            live.dropped_artifacts += len(dropped)
        else:
            live.stored_bytes += part_bytes(chunk.parts) - (part_bytes(replaced.parts) if replaced else 0)

        def event(task: v1.Task) -> v1.StreamResponse:
            return state.artifact_event(task, artifact, chunk.append, chunk.last_chunk)

        await self.emit(live, event, artifact_id=artifact_id, dropped=dropped)

    async def status(
        self,
        live: LiveTask,
        wanted: v1.TaskState,
        text: str | None = None,
        metadata: dict[str, object] | None = None,
    ) -> None:
        """Move the task to a state (with an optional agent message) and publish it."""
        message = state.agent_message(live.task, text_parts(text)) if text else None
        # A subscription's history stops growing at its window: the latest status message is kept.
        record = not (live.subscription and len(live.task.history or ()) >= self._limits.window)
        if message is not None and record:
            live.stored_bytes += part_bytes(message.parts)
        state.set_status(live.task, wanted, self._clock(), message, record=record)

        def event(task: v1.Task) -> v1.StreamResponse:
            return state.status_event(task, metadata)

        await self.emit(live, event, terminal=wanted.terminal)

    async def emit(
        self,
        live: LiveTask,
        event: Callable[[v1.Task], v1.StreamResponse],
        *,
        terminal: bool = False,
        interrupted: bool = False,
        artifact_id: str | None = None,
        dropped: list[str] | None = None,
    ) -> None:
        """Persist, then fan out: a stopping state is durable before anyone hears of it.

        ``event`` builds the stream event; it is only called when a subscriber or webhook listens.
        """
        live.seq += 1
        written = self._repo.submit(live.changes(artifact_id, dropped))
        if terminal or interrupted:
            try:
                await asyncio.shield(written)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("task write failed", extra={"taskId": live.task.id})
        # With other processes about, any of them may have subscribers: every event goes on the bus.
        if self._bus is not None or live.push_configs or self._broker.has_subscribers(live.task.id):
            built = event(live.task)
            delivery = Delivery(built, terminal=terminal, interrupted=interrupted, seq=live.seq)
            if self._bus is not None:
                # The bus hands it to this process's subscribers once it is on the bus: no client sees
                # an event that a process taking the task over would not know of.
                self._bus.publish(live.task.id, delivery)
            else:
                self._broker.publish(live.task.id, delivery)
            if self._notifier is not None:
                for config in live.push_configs:
                    self._notifier.enqueue(config, built)
        if terminal or interrupted:
            live.settle()
        if terminal:
            self._forget(live)


async def _close(gen: Handler) -> None:
    try:
        await gen.aclose()
    except Exception:
        log.exception("skill failed while closing")
