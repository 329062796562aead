"""The gateway's agent: its own skills, plus relays to registered agents chosen from the message."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from a2a_gateway.agent import AgentDefinition, Skill
from a2a_gateway.protocol import v1
from a2a_gateway.routing.metadata import AGENT_KEY, SKILL_KEY, TAGS_KEY, merged, tag_list
from a2a_gateway.routing.service import Router


@dataclass(slots=True, kw_only=True)
class RoutingAgent(AgentDefinition):
    """An agent definition whose skill resolution routes: by ``agentId``, or by a skill or tags that no
    local skill serves."""

    router: Router

    async def resolve(self, message: v1.Message, metadata: dict[str, Any] | None) -> Skill:
        """A relay when the message names an agent, or a skill or tags no local skill serves; else local."""
        wanted = merged(message.metadata, metadata)
        agent_id = wanted.get(AGENT_KEY)
        skill_id = wanted.get(SKILL_KEY)
        named = skill_id if isinstance(skill_id, str) else None
        if agent_id:
            return await self.router.skill_for(str(agent_id), named)
        # Tags that name nothing (" , ", a list of numbers) are no tags: they route nowhere, rather than
        # to whichever agent happens to be online.
        tags = tag_list(wanted.get(TAGS_KEY))
        local = {s.id for s in self.skills}
        if (named is not None and named not in local) or (skill_id is None and tags):
            return await self.router.skill_for(await self.router.best_for(named, tags), named)
        return self.select(message, metadata)

    @classmethod
    def around(cls, agent: AgentDefinition, router: Router) -> RoutingAgent:
        """The same agent, with routing."""
        return cls(**{f.name: getattr(agent, f.name) for f in fields(AgentDefinition)}, router=router)
