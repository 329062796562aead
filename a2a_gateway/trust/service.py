"""The trust service: records finished tasks, takes ratings from the people entitled to give them, and
computes scores on read (so decay applies without a job)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta

from a2a_gateway.errors import Conflict, Forbidden, InvalidParams, NotFound
from a2a_gateway.protocol import v1
from a2a_gateway.protocol.base import utc_now
from a2a_gateway.trust.models import RatedTask, Rating, TaskEvidence, TrustEvent, TrustParams, TrustScore
from a2a_gateway.trust.ports import RaterStandings, TrustStore
from a2a_gateway.trust.score import DEFAULT_PARAMS, credibility, score

MAX_COMMENT_CHARS = 1000
MAX_HISTORY_PAGE = 100


def _rating_value(rating: object) -> int:
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise InvalidParams(
            "rating must be an integer from 1 to 5",
            violations=[{"field": "rating", "description": "an integer from 1 to 5"}],
        )
    return rating


def _comment_value(comment: object) -> str:
    if comment is None:
        return ""
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT_CHARS:
        raise InvalidParams(
            f"comment must be text of at most {MAX_COMMENT_CHARS} characters",
            violations=[{"field": "comment", "description": f"at most {MAX_COMMENT_CHARS} characters"}],
        )
    return comment


class TrustService:
    """Scores agents from what the gateway saw them do and what their paying requesters said."""

    def __init__(
        self,
        store: TrustStore,
        raters: RaterStandings,
        *,
        params: TrustParams = DEFAULT_PARAMS,
        clock: Callable[[], datetime] = utc_now,
        recent_events: int = 10,
    ) -> None:
        self._store = store
        self._raters = raters
        self._params = params
        self._clock = clock
        self._recent = recent_events

    async def _compute(self, agent_id: str) -> TrustScore:
        now = self._clock()
        since = now - timedelta(days=self._params.window_days)
        evidence = await self._store.evidence_since(agent_id, since)
        ratings = await self._store.ratings_since(agent_id, since)
        return dataclasses.replace(score(evidence, ratings, now, self._params), agent_id=agent_id)

    async def refresh(self, agent_id: str) -> TrustScore:
        """Recompute an agent's score now and store it (after an event, or from a periodic decay job)."""
        current = await self._compute(agent_id)
        await self._store.save_score(agent_id, current)
        return current

    async def add_task(self, evidence: TaskEvidence) -> bool:
        """Store a finished task's evidence without rescoring (a ScoreRefresher rescores later); False
        when the task was reported already."""
        return await self._store.add_evidence(evidence)

    async def record_task(self, evidence: TaskEvidence) -> TrustScore:
        """Record a finished task and store the agent's new score; a task reported again changes nothing."""
        if not await self._store.add_evidence(evidence):
            return await self._compute(evidence.agent_id)
        return await self.refresh(evidence.agent_id)

    async def rate(
        self,
        agent_id: str,
        task_id: str,
        rater: str,
        *,
        rating: object,
        comment: object,
        task_info: RatedTask | None,
    ) -> TrustEvent:
        """Store ``rater``'s rating of a task of ``agent_id``: only its requester, who does not own the
        agent, once, for a completed task. ``task_info`` is the task as stored (None if there is none)."""
        value = _rating_value(rating)
        text = _comment_value(comment)
        if task_info is None or task_info.task_id != task_id or task_info.agent_id != agent_id:
            raise NotFound("Task not found")
        if rater != task_info.requester:
            raise Forbidden("Only the task's requester may rate it")
        if rater == task_info.agent_owner:
            raise Forbidden("An agent's owner cannot rate their own agent")
        if task_info.state is not v1.TaskState.COMPLETED:
            raise Conflict(
                "Only a completed task can be rated", metadata={"taskState": task_info.state.value}
            )
        now = self._clock()
        standing = await self._raters.standing(rater)
        created = standing.account_created_at
        age_days = 0.0 if created is None else (now - created).total_seconds() / 86_400
        given = Rating(
            agent_id=agent_id,
            task_id=task_id,
            requester=rater,
            agent_owner=task_info.agent_owner,
            rating=value,
            comment=text,
            at=now,
            credibility=credibility(standing.paid_spend_credits, age_days),
        )
        if not await self._store.add_rating(given):
            raise Conflict("This task has already been rated")
        await self.refresh(agent_id)
        return TrustEvent.of_rating(given)

    async def get(self, agent_id: str) -> TrustScore:
        """The agent's score now, with its most recent events (an agent never seen scores the prior)."""
        current = await self._compute(agent_id)
        recent = await self._store.events(agent_id, self._recent, 0)
        return dataclasses.replace(current, recent_events=tuple(recent))

    async def history(self, agent_id: str, limit: int = 50, offset: int = 0) -> list[TrustEvent]:
        """A page of the agent's trust events, newest first."""
        violations = []
        if not 1 <= limit <= MAX_HISTORY_PAGE:
            violations.append({"field": "limit", "description": f"from 1 to {MAX_HISTORY_PAGE}"})
        if offset < 0:
            violations.append({"field": "offset", "description": "0 or more"})
        if violations:
            raise InvalidParams("Invalid page of trust events", violations=violations)
        return await self._store.events(agent_id, limit, offset)
