"""Relaying one gateway task to a registered agent: a run that mirrors the upstream task.

A relay is an ordinary kit skill, so the gateway task gets persistence, streaming, push and cancel from
the task service. Every upstream event is passed on as it arrives (through the Mirror, which turns task
snapshots into what they hold beyond what was relayed); a follow-up reaches the relay through ``asend``
and is forwarded with the upstream task id; a cancel, or a pause that is abandoned, cancels upstream too.
Each run keeps the task's routed-call record (upstream ids, timings, outcome) up to date. Every upstream
HTTP request carries a caller assertion of its own, signed for the agent, the task and its caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Protocol

from a2a_gateway.agent import AgentEvent, InputRequired, Reply, SkillContext, Status
from a2a_gateway.agent.caller import ANONYMOUS, Caller
from a2a_gateway.agent.skill import message_text
from a2a_gateway.errors import (
    GatewayError,
    InvalidAgentResponse,
    Unavailable,
    UnsupportedOperation,
    UpstreamUnavailable,
)
from a2a_gateway.protocol import v1
from a2a_gateway.protocol.base import utc_now
from a2a_gateway.routing.calls import AGENT_ERROR, REPLIED, UNREACHABLE, UNSIGNED, RoutedCall
from a2a_gateway.routing.metadata import AGENT_KEY
from a2a_gateway.routing.mirror import Mirror
from a2a_gateway.routing.models import Upstream
from a2a_gateway.routing.ports import AssertionIssuer, StreamingRefused, UpstreamClient

log = logging.getLogger(__name__)
CLOSED_EARLY = "The agent closed its stream before the task finished"
POLL_START_SECONDS = 0.5
POLL_MAX_SECONDS = 10.0
_RUNNING = (v1.TaskState.SUBMITTED, v1.TaskState.WORKING)


class RelayHooks(Protocol):
    """What a run reports to: record writes, health evidence, and whether the gateway is stopping."""

    stopping: bool

    async def lookup(self, agent_id: str) -> Upstream:
        """Where and how to call the agent; InvalidParams when it is not registered."""
        ...

    def record(self, call: RoutedCall) -> None:
        """Queue the record's current state for writing."""
        ...

    def settle(self, call: RoutedCall) -> None:
        """The call ended: count it as evidence of the agent's health and latency."""
        ...


@dataclass(slots=True)
class RelayRun:
    """One gateway task's relay: the upstream agent, the upstream task ids, and the call record.

    ``caller`` is who the call is made for; None takes the task's (``ctx.caller``) when the run starts.
    """

    a2a: UpstreamClient
    call: RoutedCall
    hooks: RelayHooks
    assertions: AssertionIssuer
    caller: Caller | None = None
    url: str = ""
    version: str = ""
    streams: bool = True
    started: bool = False
    sent_at: float | None = None
    mirror: Mirror = field(default_factory=Mirror)

    @property
    def upstream_task(self) -> str | None:
        """The upstream task id, once the agent has said it."""
        return self.call.upstream_task_id

    def _begin(self, ctx: SkillContext, resume: bool) -> None:
        self.started = resume
        if resume:
            # What the gateway task holds already counts as relayed: only what is new upstream follows.
            self.mirror.prime(ctx.artifacts)
        else:
            # Queued now, it commits with the task's first write: the routed agent's own key sees the
            # task (and REST shows its routing) from the start, not once the agent has answered.
            self.hooks.record(self.call)

    async def run(
        self, ctx: SkillContext, resume: bool = False
    ) -> AsyncGenerator[AgentEvent, v1.Message | None]:
        """Send the message upstream (or, resuming, catch up with the upstream task) and mirror it."""
        if self.caller is None:
            self.caller = ctx.caller
        upstream = await self.hooks.lookup(self.call.agent_id)
        self.url, self.version, self.streams = upstream.url, upstream.version, upstream.streams
        metadata = {k: v for k, v in ctx.metadata.items() if k != AGENT_KEY} or None
        message = ctx.message.model_copy(update={"task_id": None, "context_id": None})
        self._begin(ctx, resume)
        try:
            while True:
                pause: InputRequired | None = None
                source = self._catch_up() if resume else self._send(ctx, message, metadata)
                async with contextlib.aclosing(source) as events:
                    async for event in events:
                        for mapped in self._map(event, quiet_history=resume):
                            if isinstance(mapped, InputRequired):
                                pause = mapped
                                break
                            if _accepted(mapped) and self.started:
                                continue  # "accepted" only makes sense as the first event
                            last = _ends(mapped)
                            if last:
                                self._end(REPLIED if isinstance(mapped, Reply) else _outcome(mapped))
                            self.started = True
                            yield mapped
                            if last:
                                return
                        resume = False
                        if pause is not None:
                            break
                resume = False
                if pause is None:
                    pause = self.mirror.still_paused()  # asked again, in a snapshot like the last one
                if pause is None:
                    self._end("closed_early", CLOSED_EARLY)
                    yield Status(v1.TaskState.FAILED, CLOSED_EARLY)
                    return
                self.started = True
                reply = yield pause
                if reply is None:
                    return
                self.mirror.replied()
                message = reply.model_copy(
                    update={"task_id": self.upstream_task, "context_id": self.call.upstream_context_id}
                )
        except GatewayError as error:
            outcome = (
                "invalid_response" if isinstance(error, InvalidAgentResponse)
                else UNREACHABLE if isinstance(error, UpstreamUnavailable)
                else UNSIGNED if isinstance(error, _Unsigned)
                else AGENT_ERROR
            )  # fmt: skip
            self._end(outcome, error.message)
            if not self.started:
                raise  # before any event: the caller gets the error itself (-32006, -32051, ...)
            yield Status(v1.TaskState.FAILED, error.message)
        finally:
            await self._wind_up()

    async def _wind_up(self) -> None:
        """A run that stops without an outcome was abandoned: cancel upstream, unless the gateway is
        stopping, in which case the record stays open for the next start to resume."""
        if self.call.outcome is None and not self.hooks.stopping:
            # Recorded first: a second cancel arriving during the upstream cancel must not leave the
            # record open (the next start would try to resume a cancelled task).
            self._end("canceled")
            self.hooks.settle(self.call)
            if self.upstream_task is not None:
                await asyncio.shield(self._cancel_upstream(self.upstream_task))
            return
        if self.call.outcome is not None:
            self.hooks.settle(self.call)

    async def _assertion(self) -> str:
        """A fresh caller assertion for the next upstream request (never logged: it is a credential)."""
        caller = self.caller or ANONYMOUS
        try:
            return await self.assertions.issue(
                self.call.agent_id,
                caller,
                task=self.call.task_id,
                skill=self.call.skill_id,
                price=caller.price,  # what the admission held for the call (None: a free call)
            )
        except GatewayError:
            raise
        except Exception:
            log.exception("signing a caller assertion failed", extra={"taskId": self.call.task_id})
            raise _Unsigned() from None

    async def _cancel_upstream(self, task_id: str) -> None:
        try:
            assertion: str | None = await self._assertion()
        except GatewayError:
            assertion = None  # best effort still: an agent that does not require the gateway hears it
        await self.a2a.cancel(self.url, self.version, task_id, assertion=assertion)

    def _send(
        self, ctx: SkillContext, message: v1.Message, metadata: dict[str, object] | None
    ) -> AsyncGenerator[v1.StreamResponse, None]:
        request = v1.SendMessageRequest(message=message, metadata=metadata)
        return self._stream(request) if ctx.streaming and self.streams else self._once(request)

    async def _stream(self, request: v1.SendMessageRequest) -> AsyncGenerator[v1.StreamResponse, None]:
        """A streaming upstream call; an agent that turns streaming down gets the blocking call instead."""
        assertion = await self._assertion()
        self.sent_at = time.perf_counter()  # the agent's latency starts once the call is signed
        try:
            upstream = self.a2a.stream(self.url, self.version, request, assertion=assertion)
            async with contextlib.aclosing(upstream) as events:
                async for event in events:
                    yield event
            return
        except StreamingRefused:
            self.streams = False  # refused before its stream opened: nothing was relayed yet
        async for event in self._once(request):
            yield event

    def _end(self, outcome: str, error: str | None = None) -> None:
        if self.call.outcome is None:
            self.call.outcome = outcome
            self.call.error = error[:500] if error else None
            self.call.finished_at = utc_now()
            self.hooks.record(self.call)

    async def _once(self, request: v1.SendMessageRequest) -> AsyncGenerator[v1.StreamResponse, None]:
        """A caller that does not follow the task gets a blocking upstream call: one answer."""
        assertion = await self._assertion()
        self.sent_at = time.perf_counter()
        yield await self.a2a.send(self.url, self.version, request, assertion=assertion)

    async def _read(self, task_id: str) -> v1.Task:
        return await self.a2a.get_task(self.url, self.version, task_id, assertion=await self._assertion())

    async def _catch_up(self) -> AsyncGenerator[v1.StreamResponse, None]:
        """After a restart: the upstream task as it is now, then what follows, with nothing lost between.

        A 1.0 subscription starts with the task's snapshot, which is the starting point. A 0.3 agent's
        resubscription replays what it likes: the task is read once the subscription has produced its
        first event, and that event is dropped if the snapshot already holds it. An agent that does not
        offer resubscription is polled.
        """
        task_id = self.upstream_task
        if task_id is None:
            raise UpstreamUnavailable("The upstream task of this call is unknown")
        task: v1.Task | None = None
        if self.version.startswith("0.3"):
            # 0.3 agents may not replay a paused or finished task at all: read it first.
            task = await self._read(task_id)
            yield v1.StreamResponse(task=task)
            if task.status.state not in _RUNNING:
                return
        try:
            assertion = await self._assertion()
            upstream = self.a2a.subscribe(self.url, self.version, task_id, assertion=assertion)
            async with contextlib.aclosing(upstream) as events:
                first = True
                async for event in events:
                    if first and event.task is None:
                        # Not a snapshot: read the task now that the subscription is open.
                        task = await self._read(task_id)
                        yield v1.StreamResponse(task=task)
                        if _held_by(task, event):
                            first = False
                            continue
                    first = False
                    yield event
            return
        except (InvalidAgentResponse, UnsupportedOperation):
            pass  # the agent does not offer resubscription, or the task is over: read and poll it
        task = await self._read(task_id)
        yield v1.StreamResponse(task=task)
        delay = POLL_START_SECONDS
        while task.status.state in _RUNNING:
            await asyncio.sleep(delay)
            delay = min(delay * 2, POLL_MAX_SECONDS)
            task = await self._read(task_id)
            yield v1.StreamResponse(task=task)

    def _learn(self, task_id: str, context_id: str | None) -> None:
        """Note the upstream ids; the first time, the record is written so a restart can resume."""
        call = self.call
        if self.sent_at is not None and call.first_response_ms is None:
            call.first_response_ms = round((time.perf_counter() - self.sent_at) * 1000, 3)
        if call.upstream_task_id != task_id:
            call.upstream_task_id = task_id
            call.upstream_context_id = context_id or call.upstream_context_id
            self.hooks.record(call)

    def _map(self, event: v1.StreamResponse, *, quiet_history: bool = False) -> list[AgentEvent]:
        """One upstream event as the kit events that mirror it (none when it holds nothing new)."""
        mirror = self.mirror
        if event.message is not None:
            if self.upstream_task is None and not self.started:
                if self.sent_at is not None:
                    self.call.first_response_ms = round((time.perf_counter() - self.sent_at) * 1000, 3)
                return [Reply(parts=event.message.parts, metadata=event.message.metadata)]
            if mirror.seen(event.message):
                return []
            return [Status(v1.TaskState.WORKING, message_text(event.message) or None)]
        if event.task is not None:
            self._learn(event.task.id, event.task.context_id)
            mapped = mirror.snapshot(event.task, quiet_history=quiet_history)
        elif event.artifact_update is not None:
            update = event.artifact_update
            self._learn(update.task_id, update.context_id)
            mapped = [mirror.chunk(update)]
        elif event.status_update is not None:
            self._learn(event.status_update.task_id, event.status_update.context_id)
            mapped = mirror.status(event.status_update.status, snapshot=False)
        else:
            return []
        return mapped


class _Unsigned(Unavailable):
    """The gateway could not sign a caller assertion (its key store failed): nothing was sent."""

    default_message = "The gateway could not sign its call to the agent; try again"


def _accepted(event: AgentEvent) -> bool:
    """Whether the event only says the upstream accepted the task (it has not started yet)."""
    return isinstance(event, Status) and event.state is v1.TaskState.SUBMITTED


def _ends(event: AgentEvent) -> bool:
    """Whether the event ends the gateway task (a terminal status, or a direct reply)."""
    return isinstance(event, Reply) or (isinstance(event, Status) and event.state.terminal)


def _held_by(task: v1.Task, event: v1.StreamResponse) -> bool:
    """Whether a snapshot taken after ``event`` was sent already holds it (so relaying it would repeat it)."""
    if event.status_update is not None:
        return event.status_update.status == task.status
    update = event.artifact_update
    if update is None:
        return False
    art = next((a for a in task.artifacts or [] if a.artifact_id == update.artifact.artifact_id), None)
    if art is None:
        return False
    parts = update.artifact.parts
    return art.parts == parts if not update.append else art.parts[-len(parts) :] == parts


def _outcome(event: AgentEvent | None) -> str:
    """The record's outcome for the terminal status a run ends with."""
    if isinstance(event, Status):
        return event.state.name.lower()
    return "completed"
