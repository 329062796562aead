"""The gateway's own ``discover`` skill: registry discovery over A2A (a data part in, summaries out)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from a2a_gateway.agent import AgentEvent, ArtifactChunk, Skill, SkillContext, Status, skill
from a2a_gateway.protocol import v1
from a2a_gateway.registry.models import STATUSES, Agent, DiscoveryQuery
from a2a_gateway.registry.service import RegistryService

DESCRIPTION = (
    "Finds registered agents. Send a data part {skillTags: [..] or 'a,b', category, minTrustScore, "
    "status, q, limit (1-100), offset}, or plain text to search names and descriptions; the answer is a "
    "data artifact {agents: [...], total}."
)


def summary(agent: Agent, registry: RegistryService) -> dict[str, Any]:
    """What discovery tells about an agent (not its endpoint: agents are called through the gateway)."""
    return {
        "id": agent.id,
        "name": agent.name,
        "description": agent.description,
        "skills": [{"id": s.id, "name": s.name, "tags": s.tags} for s in agent.skills],
        "tags": agent.tags,
        "category": agent.category,
        "status": agent.status(registry.now(), registry.offline_after_seconds),
        "trustScore": agent.trust_score,
        "pricePerTask": agent.price_per_task,
        "protocolVersion": agent.protocol_version,
    }


def _query(data: Any, text: str) -> DiscoveryQuery | str:
    """A DiscoveryQuery, or the reason the request cannot be one."""
    if data is None:
        return DiscoveryQuery(text=text.strip()[:200] or None)
    if not isinstance(data, dict):
        return "the data part must be a JSON object"
    tags = data.get("skillTags", [])
    if isinstance(tags, str):
        tags = tags.split(",")
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        return "skillTags must be a list of strings or a comma-separated string"
    limit, offset, trust = data.get("limit", 20), data.get("offset", 0), data.get("minTrustScore")
    if not isinstance(limit, int) or not 1 <= limit <= 100 or not isinstance(offset, int) or offset < 0:
        return "limit must be 1 to 100 and offset at least 0"
    if trust is not None and (not isinstance(trust, int | float) or not 0 <= trust <= 100):
        return "minTrustScore must be a number from 0 to 100"
    status = data.get("status")
    if status is not None and status not in STATUSES:
        return "status must be online, offline or degraded"
    category, q = data.get("category"), data.get("q")
    return DiscoveryQuery(
        skill_tags=[t for t in tags if t.strip()],
        category=category if isinstance(category, str) else None,
        min_trust_score=float(trust) if trust is not None else None,
        status=status,
        text=q.strip()[:200] if isinstance(q, str) and q.strip() else None,
        limit=limit,
        offset=offset,
    )


def discover_skill(registry: RegistryService) -> Skill:
    """The skill, bound to a registry."""

    @skill(
        "discover",
        "Discover agents",
        DESCRIPTION,
        tags=["discovery", "registry"],
        examples=['{"skillTags": ["nlp"]}'],
    )
    async def discover(ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
        query = _query(ctx.data, ctx.text)
        if isinstance(query, str):
            yield Status(v1.TaskState.REJECTED, f"Cannot search: {query}")
            return
        page = await registry.discover(query)
        found = [summary(a, registry) for a in page.agents]
        yield ArtifactChunk.of_data({"agents": found, "total": page.total}, name="agents")

    return discover
