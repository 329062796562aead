"""The agent kit: write an A2A agent as skill handlers (async generators of events)."""

from a2a_gateway.agent.caller import ASSERTION_HEADER, Caller
from a2a_gateway.agent.definition import AgentDefinition
from a2a_gateway.agent.events import AgentEvent, ArtifactChunk, InputRequired, Reply, Status
from a2a_gateway.agent.skill import Skill, SkillContext, SkillHandler, skill

__all__ = [
    "ASSERTION_HEADER",
    "AgentDefinition",
    "AgentEvent",
    "ArtifactChunk",
    "Caller",
    "InputRequired",
    "Reply",
    "Skill",
    "SkillContext",
    "SkillHandler",
    "Status",
    "skill",
]
