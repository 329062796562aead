"""The ranking policy: which of the agents offering a skill serves the next call."""

from __future__ import annotations

import math
from collections.abc import Sequence

from a2a_gateway.registry.models import Agent


def offers(agent: Agent, skill_id: str | None) -> bool:
    """Whether the agent has the skill (any agent does when no skill is named)."""
    return skill_id is None or any(s.id == skill_id for s in agent.skills)


def best(candidates: Sequence[Agent]) -> Agent | None:
    """Highest trust, then lowest recent latency (agents not yet measured come after measured ones).

    Candidates arrive ranked by trust then freshest heartbeat, and ``min`` keeps the first of equals, so
    the heartbeat decides last.
    """
    if not candidates:
        return None
    return min(
        candidates, key=lambda a: (-a.trust_score, a.latency_ms if a.latency_ms is not None else math.inf)
    )
