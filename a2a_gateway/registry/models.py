"""Registered agents and discovery queries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

STATUSES = ("online", "offline", "degraded")


# The trust formula's score for an agent with no evidence yet (docs/trust.md): what a new agent is
# discovered and ranked with until its first routed call ends.
NEW_AGENT_TRUST = 42.5


@dataclass(slots=True)
class SkillSpec:
    """One skill an agent offers (seed 002 shape)."""

    id: str
    name: str
    description: str = ""
    tags: list[str] = field(default_factory=list)
    input_schema: dict[str, Any] = field(default_factory=dict)
    output_schema: dict[str, Any] = field(default_factory=dict)
    price: int | None = None  # credits per call; None: the agent's price_per_task


@dataclass(slots=True)
class Agent:
    """A registered agent; trust, status, heartbeat and owner are server-owned."""

    id: str
    owner_id: str
    name: str
    description: str
    endpoint: str
    skills: list[SkillSpec]
    tags: list[str]
    category: str | None
    metadata: dict[str, Any]
    price_per_task: int
    protocol_version: str
    created_at: datetime
    updated_at: datetime
    reported_status: str = "online"
    last_heartbeat: datetime | None = None
    trust_score: float = NEW_AGENT_TRUST
    card_url: str | None = None
    streaming: bool = True  # its card offers streaming (a relay then streams upstream when useful)
    call_failing: bool = False  # its recent routed calls or health probes fail
    latency_ms: float | None = None  # smoothed time to its first answer on routed calls and probes
    probed_at: datetime | None = None
    probe_ok: bool | None = None

    def price_of(self, skill_id: str | None) -> int:
        """Credits one call of ``skill_id`` costs: the skill's own price, else the agent's per-task price."""
        for skill in self.skills:
            if skill.id == skill_id and skill.price is not None:
                return skill.price
        return self.price_per_task

    def all_tags(self) -> set[str]:
        """Agent tags and skill tags together: what skillTags discovery matches."""
        return {t.lower() for t in self.tags} | {t.lower() for s in self.skills for t in s.tags}

    def status(self, now: datetime, offline_after_seconds: float) -> str:
        """Offline without a recent heartbeat; degraded when it says so or its recent calls fail."""
        if self.last_heartbeat is None or (now - self.last_heartbeat).total_seconds() > offline_after_seconds:
            return "offline"
        if self.call_failing and self.reported_status != "offline":
            return "degraded"
        return self.reported_status


@dataclass(slots=True)
class DiscoveryQuery:
    """Filters and page of GET /api/v1/discover."""

    skill_tags: list[str] = field(default_factory=list)
    category: str | None = None
    min_trust_score: float | None = None
    status: str | None = None
    text: str | None = None
    limit: int = 20
    offset: int = 0


@dataclass(slots=True)
class DiscoveryPage:
    """Matching agents in rank order, and how many match in all."""

    agents: list[Agent]
    total: int
