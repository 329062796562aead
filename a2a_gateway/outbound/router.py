"""Routing gateway tasks to registered agents: choosing the agent, building relay skills, and picking
relayed tasks up again after a restart."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, fields
from typing import Any

from a2a_gateway.agent import AgentDefinition, AgentEvent, Skill, SkillContext, SkillHandler
from a2a_gateway.errors import InvalidParams, NotFound
from a2a_gateway.outbound.a2a_client import A2AClient
from a2a_gateway.outbound.relay import AGENT_KEY, RelayRun, Upstream
from a2a_gateway.protocol import v1
from a2a_gateway.protocol.base import utc_now
from a2a_gateway.registry.calls import LOST, RoutedCall
from a2a_gateway.registry.models import DiscoveryQuery
from a2a_gateway.registry.ports import CallLog
from a2a_gateway.registry.service import RegistryService
from a2a_gateway.tasks.service import TaskService

log = logging.getLogger(__name__)

SKILL_KEY = "skillId"
TAGS_KEY = "skillTags"
RELAY_PREFIX = "relay:"
LOOKUP_TTL_SECONDS = 5.0


class Router:
    """Builds relay skills for registered agents and keeps their call records and health evidence."""

    def __init__(self, registry: RegistryService, a2a: A2AClient, calls: CallLog) -> None:
        self._registry = registry
        self._a2a = a2a
        self._calls = calls
        self.stopping = False
        # Agents' endpoints change rarely; a short cache saves a database read on every routed call.
        self._lookups: dict[str, tuple[float, Upstream]] = {}
        self._background: set[asyncio.Task[None]] = set()

    async def lookup(self, agent_id: str) -> Upstream:
        """Where and how to call a registered agent (cached for a few seconds)."""
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
        """The best online agent offering ``skill_id`` (or all ``tags``): highest trust, then lowest
        recent latency (agents not yet measured come after measured ones), then freshest heartbeat."""
        query = DiscoveryQuery(skill_tags=tags, status="online", limit=100)
        page = await self._registry.discover(query)
        candidates = [a for a in page.agents if skill_id is None or any(s.id == skill_id for s in a.skills)]
        if candidates:
            # Discovery already ranks by trust then heartbeat; a stable sort keeps that among equals.
            best = min(
                candidates,
                key=lambda a: (-a.trust_score, a.latency_ms if a.latency_ms is not None else math.inf),
            )
            return best.id
        wanted = f"skill {skill_id}" if skill_id else f"skill tags {', '.join(tags)}"
        raise InvalidParams(
            f"No online agent offers {wanted[:200]}",
            violations=[{"field": "metadata", "description": "no online agent matches"}],
        )

    def skill_for(self, agent_id: str) -> Skill:
        """A skill that forwards the task to ``agent_id``."""

        def relay(ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
            skill_id = ctx.metadata.get(SKILL_KEY)
            call = RoutedCall(
                task_id=ctx.task_id,
                requester=ctx.owner,
                agent_id=agent_id,
                skill_id=str(skill_id)[:100] if skill_id else None,
                started_at=utc_now(),
            )
            return RelayRun(self._a2a, call, self).run(ctx)

        return self._skill(agent_id, relay)

    def resume_skill(self, call: RoutedCall) -> Skill:
        """A skill that re-attaches a restarted gateway's task to its upstream task."""

        def resume(ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
            return RelayRun(self._a2a, call, self).run(ctx, resume=True)

        return self._skill(call.agent_id, resume)

    def _skill(self, agent_id: str, handler: SkillHandler) -> Skill:
        return Skill(
            id=RELAY_PREFIX + agent_id,
            name="relay",
            description="Forwards to a registered agent",
            handler=handler,
            task_metadata={AGENT_KEY: agent_id},
            resumable=True,
        )

    # --- RelayHooks --------------------------------------------------------------------------------

    def record(self, call: RoutedCall) -> None:
        """Queue a call record for the next group commit."""
        self._calls.record(call)

    def settle(self, call: RoutedCall) -> None:
        """Count an ended call as health evidence (neither a cancel nor a lost call counts)."""
        if call.outcome in (None, "canceled", LOST):
            return
        ok = not call.failed
        latency = call.first_response_ms if ok else None
        job = asyncio.create_task(self._registry.record_outcome(call.agent_id, ok, latency))
        self._background.add(job)
        job.add_done_callback(self._done)

    def _done(self, job: asyncio.Task[None]) -> None:
        self._background.discard(job)
        if not job.cancelled() and job.exception() is not None:
            log.warning("storing agent health failed", exc_info=job.exception())

    # --- lifecycle -----------------------------------------------------------------------------------

    async def recover(self, service: TaskService) -> tuple[int, int]:
        """At start-up: resume every relayed task left in flight; fail the other in-flight tasks.

        Returns (resumed, failed). A call whose upstream task id was never learned cannot be found
        again, so its task fails with the others and its record says ``lost``.
        """
        resumed: list[str] = []
        for call in await self._calls.unfinished():
            adopted = False
            if call.upstream_task_id is not None:
                try:
                    await self.lookup(call.agent_id)
                    adopted = await service.adopt(call.requester, call.task_id, self.resume_skill(call))
                except InvalidParams:
                    adopted = False  # the agent was deleted meanwhile
                except Exception:
                    log.exception("could not resume a relayed task", extra={"taskId": call.task_id})
                    adopted = False
            if adopted:
                resumed.append(call.task_id)
                continue
            call.outcome, call.finished_at = LOST, utc_now()
            self._calls.record(call)
        failed = await service.recover(keep=resumed)
        return len(resumed), failed

    async def release(self) -> None:
        """After the task service has stopped: finish health writes of the last calls, close connections."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self._a2a.aclose()

    async def close(self) -> None:
        """Stop: relays still running leave their records open for the next start."""
        self.stopping = True
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)


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


async def lookup(registry: RegistryService, agent_id: str) -> Upstream:
    """Where and how to call a registered agent; InvalidParams when unknown."""
    try:
        agent = await registry.get(agent_id)
    except NotFound:
        raise InvalidParams(
            f"Unknown agent {agent_id[:64]}",
            violations=[{"field": "metadata.agentId", "description": "no such agent"}],
        ) from None
    return Upstream(agent.endpoint, agent.protocol_version, agent.streaming)
