"""Routing a gateway task to a registered agent: a relay skill that mirrors the upstream task.

The relay is an ordinary kit skill, so the gateway task gets persistence, streaming, push and cancel from
the task service. Upstream events become kit events; a follow-up reaches the relay through ``asend`` and
is forwarded with the upstream task id; a cancel, or a pause that is abandoned, cancels upstream too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, fields
from typing import Any

from a2a_gateway.agent import (
    AgentDefinition,
    AgentEvent,
    ArtifactChunk,
    InputRequired,
    Reply,
    Skill,
    SkillContext,
    Status,
)
from a2a_gateway.agent.skill import message_text
from a2a_gateway.errors import GatewayError, InvalidParams, NotFound
from a2a_gateway.outbound.a2a_client import A2AClient
from a2a_gateway.protocol import v1
from a2a_gateway.registry.models import DiscoveryQuery
from a2a_gateway.registry.service import RegistryService

AGENT_KEY = "agentId"
SKILL_KEY = "skillId"
TAGS_KEY = "skillTags"
RELAY_PREFIX = "relay:"
CLOSED_EARLY = "The agent closed its stream before the task finished"


LOOKUP_TTL_SECONDS = 5.0


class Router:
    """Builds relay skills for registered agents."""

    def __init__(self, registry: RegistryService, a2a: A2AClient) -> None:
        self._registry = registry
        self._a2a = a2a
        # Agents' endpoints change rarely; a short cache saves a database read on every routed call.
        self._lookups: dict[str, tuple[float, tuple[str, str]]] = {}

    async def lookup(self, agent_id: str) -> tuple[str, str]:
        """The JSON-RPC URL and protocol version of a registered agent (cached for a few seconds)."""
        now = time.monotonic()
        cached = self._lookups.get(agent_id)
        if cached is not None and now - cached[0] < LOOKUP_TTL_SECONDS:
            return cached[1]
        found = await lookup(self._registry, agent_id)
        if len(self._lookups) > 10_000:
            self._lookups.clear()
        self._lookups[agent_id] = (now, found)
        return found

    async def best_for(self, skill_id: str | None, tags: list[str]) -> str:
        """The best online agent offering ``skill_id`` (or all ``tags``): highest trust, then freshest."""
        query = DiscoveryQuery(skill_tags=tags, status="online", limit=100)
        page = await self._registry.discover(query)
        for candidate in page.agents:
            if skill_id is None or any(s.id == skill_id for s in candidate.skills):
                return candidate.id
        wanted = f"skill {skill_id}" if skill_id else f"skill tags {', '.join(tags)}"
        raise InvalidParams(
            f"No online agent offers {wanted[:200]}",
            violations=[{"field": "metadata", "description": "no online agent matches"}],
        )

    def skill_for(self, agent_id: str) -> Skill:
        """A skill that forwards the task to ``agent_id``."""

        async def relay(ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
            url, version = await self.lookup(agent_id)
            # Async generators have no ``yield from``: hand events out and follow-ups in by hand.
            inner = RelayRun(self._a2a, url, version).run(ctx)
            try:
                event = await inner.__anext__()
                while True:
                    event = await inner.asend((yield event))
            except StopAsyncIteration:
                return
            finally:
                await inner.aclose()

        return Skill(
            id=RELAY_PREFIX + agent_id,
            name="relay",
            description="Forwards to a registered agent",
            handler=relay,
            task_metadata={AGENT_KEY: agent_id},
        )


@dataclass(slots=True)
class RelayRun:
    """One gateway task's relay: the upstream agent, the upstream task ids, and whether it finished."""

    a2a: A2AClient
    url: str
    version: str
    upstream_task: str | None = None
    upstream_context: str | None = None
    finished: bool = False
    started: bool = False

    async def run(self, ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
        """Send the message upstream and mirror the upstream task until it ends."""
        metadata = {k: v for k, v in ctx.metadata.items() if k != AGENT_KEY} or None
        message = ctx.message.model_copy(update={"task_id": None, "context_id": None})
        try:
            while True:
                pause: InputRequired | None = None
                request = v1.SendMessageRequest(message=message, metadata=metadata)
                source = (
                    self.a2a.stream(self.url, self.version, request) if ctx.streaming else self._once(request)
                )
                async with contextlib.aclosing(source) as events:
                    async for event in events:
                        mapped = self._map(event)
                        if isinstance(mapped, InputRequired):
                            pause = mapped
                            break
                        if mapped is not None:
                            self.started = True
                            yield mapped
                        if self.finished:
                            return
                if pause is None:
                    self.finished = True
                    yield Status(v1.TaskState.FAILED, CLOSED_EARLY)
                    return
                self.started = True
                reply = yield pause
                if reply is None:
                    return
                message = reply.model_copy(
                    update={"task_id": self.upstream_task, "context_id": self.upstream_context}
                )
        except GatewayError as error:
            if not self.started:
                raise  # before any event: the caller gets the error itself (-32006, -32051, ...)
            self.finished = True
            yield Status(v1.TaskState.FAILED, error.message)
        finally:
            if not self.finished and self.upstream_task is not None:
                await asyncio.shield(self.a2a.cancel(self.url, self.version, self.upstream_task))

    async def _once(self, request: v1.SendMessageRequest) -> AsyncGenerator[v1.StreamResponse, None]:
        """A caller that does not stream gets a blocking upstream call, replayed as events."""
        result = await self.a2a.send(self.url, self.version, request)
        if result.message is not None or result.task is None:
            yield result
            return
        task = result.task
        yield v1.StreamResponse(task=task)
        for artifact in task.artifacts or []:
            update = v1.TaskArtifactUpdateEvent(
                task_id=task.id, context_id=task.context_id or "", artifact=artifact
            )
            yield v1.StreamResponse(artifact_update=update)
        status = v1.TaskStatusUpdateEvent(
            task_id=task.id, context_id=task.context_id or "", status=task.status
        )
        yield v1.StreamResponse(status_update=status)

    def _map(self, event: v1.StreamResponse) -> AgentEvent | None:
        if event.message is not None:
            if self.upstream_task is None and not self.started:
                self.finished = True
                return Reply(parts=event.message.parts, metadata=event.message.metadata)
            said = message_text(event.message)
            return Status(v1.TaskState.WORKING, said) if said else None
        if event.task is not None:
            self.upstream_task = event.task.id
            self.upstream_context = event.task.context_id
            return None
        if event.artifact_update is not None:
            update = event.artifact_update
            self.upstream_task = update.task_id
            art = update.artifact
            return ArtifactChunk(
                parts=art.parts, name=art.name, artifact_id=art.artifact_id, description=art.description,
                append=bool(update.append), last_chunk=update.last_chunk, metadata=art.metadata,
            )  # fmt: skip
        if event.status_update is not None:
            status = event.status_update.status
            self.upstream_task = event.status_update.task_id
            self.upstream_context = event.status_update.context_id
            text = message_text(status.message) if status.message is not None else None
            if status.state.terminal:
                self.finished = True
                return Status(status.state, text)
            if status.state.interrupted:
                return InputRequired(
                    text or "Input required", auth=status.state is v1.TaskState.AUTH_REQUIRED
                )
            return Status(v1.TaskState.WORKING, text) if text else None
        return None


@dataclass(slots=True)
class RoutingAgent(AgentDefinition):
    """The gateway's agent: its own skills, plus relays chosen by ``metadata.agentId``."""

    router: Any = None

    async def resolve(self, message: v1.Message, metadata: dict[str, Any] | None) -> Skill:
        """A relay when the message names an agent, or a skill or tags no local skill serves; else local."""
        merged = {**(message.metadata or {}), **(metadata or {})}
        if self.router is None:
            return self.select(message, metadata)
        wanted = merged.get(AGENT_KEY)
        if wanted:
            return self.router.skill_for(str(wanted))  # type: ignore[no-any-return]
        skill_id, tags = merged.get(SKILL_KEY), merged.get(TAGS_KEY)
        local = {s.id for s in self.skills}
        if (isinstance(skill_id, str) and skill_id not in local) or (skill_id is None and tags):
            tag_list = [
                t for t in (tags.split(",") if isinstance(tags, str) else tags or []) if isinstance(t, str)
            ]
            chosen = await self.router.best_for(skill_id if isinstance(skill_id, str) else None, tag_list)
            return self.router.skill_for(chosen)  # type: ignore[no-any-return]
        return self.select(message, metadata)

    def check_modes(self, chosen: Skill, message: v1.Message, accepted_output: list[str] | None) -> None:
        """The upstream agent judges media types of relayed tasks itself."""
        if not chosen.id.startswith(RELAY_PREFIX):
            AgentDefinition.check_modes(self, chosen, message, accepted_output)

    @classmethod
    def around(cls, agent: AgentDefinition, router: Router) -> RoutingAgent:
        """The same agent, with routing."""
        return cls(**{f.name: getattr(agent, f.name) for f in fields(agent)}, router=router)


async def lookup(registry: RegistryService, agent_id: str) -> tuple[str, str]:
    """The JSON-RPC URL and protocol version of a registered agent; InvalidParams when unknown."""
    try:
        agent = await registry.get(agent_id)
    except NotFound:
        raise InvalidParams(
            f"Unknown agent {agent_id[:64]}",
            violations=[{"field": "metadata.agentId", "description": "no such agent"}],
        ) from None
    return agent.endpoint, agent.protocol_version
