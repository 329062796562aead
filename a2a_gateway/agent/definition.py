"""An agent as the kit sees it: identity for the card and its skills."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from a2a_gateway.agent.media import overlap
from a2a_gateway.agent.skill import Skill
from a2a_gateway.errors import ContentTypeNotSupported, InvalidParams
from a2a_gateway.protocol import v1

SKILL_KEY = "skillId"


@dataclass(slots=True)
class AgentDefinition:
    """Name, description, version and skills of an agent built with the kit."""

    name: str
    description: str
    skills: list[Skill]
    version: str = "1.0.0"
    provider: v1.AgentProvider | None = None
    documentation_url: str | None = None
    default_input_modes: list[str] = field(default_factory=lambda: ["text/plain", "application/json"])
    default_output_modes: list[str] = field(default_factory=lambda: ["text/plain", "application/json"])

    def __post_init__(self) -> None:
        if not self.skills:
            raise ValueError("an agent needs at least one skill")
        ids = [s.id for s in self.skills]
        if len(set(ids)) != len(ids):
            raise ValueError("skill ids must be unique")

    async def resolve(self, message: v1.Message, metadata: dict[str, Any] | None) -> Skill:
        """The skill for a message; agents that route (the gateway) may look things up here."""
        return self.select(message, metadata)

    def select(self, message: v1.Message, metadata: dict[str, Any] | None) -> Skill:
        """The skill a message asks for (``skillId`` in request or message metadata), else the first."""
        wanted = (metadata or {}).get(SKILL_KEY) or (message.metadata or {}).get(SKILL_KEY)
        if wanted is None:
            return self.skills[0]
        for candidate in self.skills:
            if candidate.id == wanted:
                return candidate
        raise InvalidParams(
            f"Unknown skill {str(wanted)[:64]!r}; known skills: {', '.join(s.id for s in self.skills)}",
            violations=[{"field": "metadata.skillId", "description": "no such skill"}],
        )

    def check_modes(self, chosen: Skill, message: v1.Message, accepted_output: list[str] | None) -> None:
        """Refuse parts the skill cannot read and output modes it cannot produce (-32005)."""
        if not chosen.checks_media_types:
            return
        inputs = chosen.input_modes or self.default_input_modes
        for part in message.parts:
            if part.media_type and not overlap(inputs, [part.media_type]):
                raise ContentTypeNotSupported(
                    f"Skill {chosen.id} does not accept {part.media_type[:100]}; "
                    f"it accepts {', '.join(inputs)}",
                    metadata={"skillId": chosen.id},
                )
        outputs = chosen.output_modes or self.default_output_modes
        if accepted_output and not overlap(outputs, accepted_output):
            raise ContentTypeNotSupported(
                f"Skill {chosen.id} produces {', '.join(outputs)}, none of the accepted output modes",
                metadata={"skillId": chosen.id},
            )
