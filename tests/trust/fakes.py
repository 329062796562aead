"""An in-memory TrustStore and RaterStandings for the trust tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from a2a_gateway.trust.models import RaterStanding, Rating, TaskEvidence, TrustEvent, TrustScore


@dataclass
class FakeTrustStore:
    """Evidence and ratings keyed by task id (one each), and the last score saved per agent."""

    evidence: dict[str, TaskEvidence] = field(default_factory=dict)
    ratings: dict[str, Rating] = field(default_factory=dict)
    scores: dict[str, TrustScore] = field(default_factory=dict)
    saves: int = 0

    async def add_evidence(self, evidence: TaskEvidence) -> bool:
        if evidence.task_id in self.evidence:
            return False
        self.evidence[evidence.task_id] = evidence
        return True

    async def add_rating(self, rating: Rating) -> bool:
        if rating.task_id in self.ratings:
            return False
        self.ratings[rating.task_id] = rating
        return True

    async def evidence_since(self, agent_id: str, since: datetime) -> list[TaskEvidence]:
        return [e for e in self.evidence.values() if e.agent_id == agent_id and e.at >= since]

    async def ratings_since(self, agent_id: str, since: datetime) -> list[Rating]:
        return [r for r in self.ratings.values() if r.agent_id == agent_id and r.at >= since]

    async def events(self, agent_id: str, limit: int, offset: int) -> list[TrustEvent]:
        found = [TrustEvent.of_evidence(e) for e in self.evidence.values() if e.agent_id == agent_id]
        found += [TrustEvent.of_rating(r) for r in self.ratings.values() if r.agent_id == agent_id]
        found.sort(key=lambda e: (e.at, e.id), reverse=True)
        return found[offset : offset + limit]

    async def save_score(self, agent_id: str, score: TrustScore) -> None:
        self.scores[agent_id] = score
        self.saves += 1


@dataclass
class FakeRaterStandings:
    """Standings by user id; an unknown user has spent nothing and has no account date."""

    known: dict[str, RaterStanding] = field(default_factory=dict)

    async def standing(self, user_id: str) -> RaterStanding:
        return self.known.get(user_id, RaterStanding(paid_spend_credits=0, account_created_at=None))
