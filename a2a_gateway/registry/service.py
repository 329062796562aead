"""The registry service: owner-checked registration, edits, heartbeats and discovery."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from a2a_gateway.auth.models import Principal
from a2a_gateway.errors import InvalidParams, NotFound, OutboundRefused
from a2a_gateway.protocol import v1
from a2a_gateway.protocol.base import utc_now
from a2a_gateway.protocol.ids import new_id
from a2a_gateway.registry.health import CallHealth
from a2a_gateway.registry.models import STATUSES, Agent, DiscoveryPage, DiscoveryQuery, SkillSpec
from a2a_gateway.registry.ports import AgentRepository, CardSource, EndpointCheck
from a2a_gateway.registry.spec import (
    MAX_METADATA_BYTES,
    AgentPatch,
    AgentRegistration,
    SkillBody,
    metadata_fits,
)


def _skills(bodies: list[SkillBody]) -> list[SkillSpec]:
    return [
        SkillSpec(
            id=b.id,
            name=b.name,
            description=b.description,
            tags=list(b.tags),
            input_schema=b.input_schema,
            output_schema=b.output_schema,
            price=b.price,
        )
        for b in bodies
    ]


def _preferred_interface(card: v1.AgentCard) -> v1.AgentInterface:
    """The card's JSON-RPC interface, 1.0 preferred over 0.3; InvalidParams when it has none."""
    rpc = [i for i in card.supported_interfaces if i.protocol_binding.upper() == "JSONRPC"]
    for version in ("1", "0.3"):
        for interface in rpc:
            if interface.protocol_version.startswith(version):
                return interface.model_copy(update={"protocol_version": "1.0" if version == "1" else "0.3"})
    raise InvalidParams(
        "The agent card lists no JSON-RPC interface for A2A 1.0 or 0.3",
        violations=[{"field": "cardUrl", "description": "no usable interface"}],
    )


def _unusable_card(invalid: ValidationError) -> InvalidParams:
    """Why a card cannot be registered, naming fields but never echoing the card's values."""
    reasons = [
        f"{'.'.join(str(p) for p in err['loc']) or 'card'}: {err['msg']}"
        for err in invalid.errors(include_url=False, include_input=False, include_context=False)
    ][:10]
    return InvalidParams(
        f"Agent card could not be imported: {'; '.join(reasons)[:500]}",
        violations=[{"field": "cardUrl", "description": r[:200]} for r in reasons],
    )


class RegistryService:
    """Agents belong to their owner: others may read and discover them, only the owner may change them."""

    def __init__(
        self,
        repo: AgentRepository,
        endpoints: EndpointCheck,
        cards: CardSource,
        *,
        offline_after_seconds: float = 120.0,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._repo = repo
        self._endpoints = endpoints
        self._cards = cards
        self.offline_after_seconds = offline_after_seconds
        self._clock = clock
        self.health = CallHealth(monotonic)  # ``monotonic`` paces latency writes (injected in tests)
        self._health_writes = asyncio.Lock()

    def now(self) -> datetime:
        """The registry's clock (injected in tests)."""
        return self._clock()

    async def register(self, owner: Principal, spec: AgentRegistration) -> Agent:
        """Register an agent for its owner; the endpoint must pass the SSRF guard."""
        await self._check_endpoint(spec.endpoint)
        now = self._clock()
        agent = Agent(
            id=new_id(),
            owner_id=owner.id,
            name=spec.name,
            description=spec.description or "",
            endpoint=spec.endpoint,
            skills=_skills(spec.skills),
            tags=list(spec.tags or []),
            category=spec.category,
            metadata=dict(spec.metadata or {}),
            price_per_task=spec.price_per_task or 0,
            protocol_version="1.0",
            created_at=now,
            updated_at=now,
        )
        await self._repo.add(agent)
        return agent

    async def import_card(self, owner: Principal, card_url: str, extra: AgentPatch) -> Agent:
        """Register an agent from its published card: name, skills, protocol version and interface URL."""
        card = await self._cards.fetch(card_url)
        interface = _preferred_interface(card)
        try:
            spec = AgentRegistration(
                name=(extra.name or card.name)[:100],
                description=extra.description or card.description[:2000],
                endpoint=interface.url,
                skills=[
                    SkillBody(
                        id=s.id[:100], name=s.name[:200], description=s.description[:2000], tags=s.tags[:20]
                    )
                    for s in card.skills[:100]
                ]
                or [SkillBody(id="default", name=card.name[:200])],
                tags=extra.tags,
                category=extra.category,
                metadata=extra.metadata,
                price_per_task=extra.price_per_task,
            )
        except ValidationError as invalid:
            # A valid A2A card can still be one the registry cannot hold (no name, repeated or empty
            # skill ids, a URL that is not http(s)): the caller's card is at fault, not the gateway.
            raise _unusable_card(invalid) from None
        agent = await self.register(owner, spec)
        agent.protocol_version = interface.protocol_version
        agent.card_url = card_url
        agent.streaming = bool(card.capabilities.streaming)
        await self._repo.save(agent)
        return agent

    async def get(self, agent_id: str) -> Agent:
        """Any agent, for reading."""
        agent = await self._repo.get(agent_id)
        if agent is None:
            raise NotFound(f"Agent {agent_id[:64]} not found")
        return agent

    async def owned(self, owner: Principal, agent_id: str) -> Agent:
        """An agent of this owner; someone else's is NotFound, so ids cannot be probed.

        A per-agent key owns nothing beyond its own agent: its owner's other agents are NotFound too.
        """
        agent = await self._repo.get(agent_id) if owner.may_address(agent_id) else None
        if agent is None or agent.owner_id != owner.id:
            raise NotFound(f"Agent {agent_id[:64]} not found")
        return agent

    async def mine(self, owner: Principal) -> list[Agent]:
        """The caller's agents."""
        return await self._repo.for_owner(owner.id)

    async def update(self, owner: Principal, agent_id: str, patch: AgentPatch) -> Agent:
        """Change the writable fields of one's own agent."""
        agent = await self.owned(owner, agent_id)
        changes: dict[str, Any] = patch.model_dump(exclude_unset=True, exclude_none=True)
        if "endpoint" in changes:
            await self._check_endpoint(changes["endpoint"])
            agent.endpoint = changes["endpoint"]
        if patch.skills is not None:
            agent.skills = _skills(patch.skills)
        for name in ("name", "description", "tags", "category", "metadata", "price_per_task"):
            if name in changes:
                setattr(agent, name, changes[name])
        agent.updated_at = self._clock()
        await self._repo.save(agent)
        return agent

    async def replace(self, owner: Principal, agent_id: str, spec: AgentRegistration) -> Agent:
        """Replace the writable record of one's own agent (PUT): what ``spec`` leaves out is reset."""
        agent = await self.owned(owner, agent_id)
        await self._check_endpoint(spec.endpoint)
        agent.name = spec.name
        agent.description = spec.description or ""
        agent.endpoint = spec.endpoint
        agent.skills = _skills(spec.skills)
        agent.tags = list(spec.tags or [])
        agent.category = spec.category
        agent.metadata = dict(spec.metadata or {})
        agent.price_per_task = spec.price_per_task or 0
        # What a card import had set is reset too: the record is now what this body says, as a
        # registration by body would make it.
        agent.protocol_version, agent.card_url, agent.streaming = "1.0", None, True
        agent.updated_at = self._clock()
        await self._repo.save(agent)
        return agent

    async def delete(self, owner: Principal, agent_id: str) -> None:
        """Remove one's own agent."""
        await self.owned(owner, agent_id)
        await self._repo.delete(agent_id)
        self.health.forget(agent_id)

    async def heartbeat(
        self, caller: Principal, agent_id: str, status: str | None, metadata: dict[str, Any] | None
    ) -> Agent:
        """Record that an agent is alive: by its owner, or by a key issued for this very agent.

        Which callers may beat (the agent's own key, or ``agents:write``) is the principal's rule, checked
        by the route; here the agent must be the caller's, and merged metadata stays within PATCH's limit.
        """
        agent = await self.owned(caller, agent_id)
        if status is not None and status not in STATUSES:
            raise InvalidParams(
                f"status must be one of {', '.join(STATUSES)}",
                violations=[{"field": "status", "description": "online, offline or degraded"}],
            )
        merged = {**agent.metadata, **metadata} if metadata else agent.metadata
        if not metadata_fits(merged):
            # Otherwise repeated beats grow the record (served in every discovery answer) without bound.
            raise InvalidParams(
                f"metadata would exceed {MAX_METADATA_BYTES} bytes of JSON once merged",
                violations=[{"field": "metadata", "description": f"{MAX_METADATA_BYTES} bytes merged"}],
            )
        agent.reported_status = status or "online"
        # Heartbeat metadata merges into the agent's own metadata; server-owned fields live elsewhere.
        agent.metadata = merged
        agent.last_heartbeat = self._clock()
        await self._repo.save_heartbeat(agent)  # not save(): a concurrent PATCH must not be undone
        return agent

    async def discover(self, query: DiscoveryQuery) -> DiscoveryPage:
        """Agents matching the filters, ranked by trust then recency."""
        return await self._repo.discover(query, self._clock(), self.offline_after_seconds)

    async def all(self) -> list[Agent]:
        """Every registered agent."""
        return await self._repo.all()

    async def record_outcome(self, agent_id: str, ok: bool, latency_ms: float | None) -> None:
        """Evidence from a routed call: enough failures in a row make the agent degraded."""
        if self.health.observe(agent_id, ok, latency_ms) is None:
            return
        # Writes are taken in turn, each storing the verdict current when its turn comes: the store
        # always ends with the latest one, however the writes of concurrent calls interleave.
        async with self._health_writes:
            latest = self.health.verdict(agent_id)
            if latest is not None:
                await self._repo.set_health(agent_id, latest)

    async def record_probe(self, agent_id: str, ok: bool, latency_ms: float | None) -> None:
        """The result of an active health check: counted like a routed call, then stored.

        The verdict (and its latency) is written first: a reader who sees the probe's result sees what
        it measured as well, never a fresh ``probe_ok`` beside a latency still missing.
        """
        await self.record_outcome(agent_id, ok, latency_ms)
        await self._repo.set_probe(agent_id, ok, self._clock())

    async def _check_endpoint(self, url: str) -> None:
        try:
            await self._endpoints.check(url)
        except OutboundRefused as refused:
            raise InvalidParams(
                f"endpoint refused: {refused.message}",
                violations=[{"field": "endpoint", "description": refused.message}],
            ) from None
