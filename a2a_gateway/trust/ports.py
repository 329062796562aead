"""Ports of the trust service: where evidence, ratings and scores are kept, and who raters are."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from a2a_gateway.trust.models import RaterStanding, Rating, TaskEvidence, TrustEvent, TrustScore


class TrustStore(Protocol):
    """Durable store of task evidence and ratings, one of each per task at most."""

    async def add_evidence(self, evidence: TaskEvidence) -> bool:
        """Store a task's evidence; False (and nothing written) when that task already has evidence.

        Must be atomic per task id (a unique key), since a task's end may be reported twice."""
        ...

    async def add_rating(self, rating: Rating) -> bool:
        """Store a task's rating; False (and nothing written) when that task is already rated.

        Must be atomic per task id (a unique key), so two concurrent ratings store one."""
        ...

    async def evidence_since(self, agent_id: str, since: datetime) -> list[TaskEvidence]:
        """An agent's evidence with ``at >= since``, in any order."""
        ...

    async def ratings_since(self, agent_id: str, since: datetime) -> list[Rating]:
        """An agent's ratings with ``at >= since``, in any order."""
        ...

    async def events(self, agent_id: str, limit: int, offset: int) -> list[TrustEvent]:
        """An agent's evidence and ratings as events, newest first (ties by event id)."""
        ...

    async def save_score(self, agent_id: str, score: TrustScore) -> None:
        """Keep the latest score on the agent (discovery filters and ranks on it)."""
        ...


class RaterStandings(Protocol):
    """Where a rater's paid spend and account age come from (the ledger and the user store)."""

    async def standing(self, user_id: str) -> RaterStanding:
        """The user's purchased credits spent and account creation time (zero and None if unknown)."""
        ...
