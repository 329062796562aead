"""What the trust score is computed from (task evidence, ratings) and what it reports."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from a2a_gateway.protocol import v1

PAID_CREDIT_WEIGHT = 1.0  # a task paid with purchased credits
PROMO_CREDIT_WEIGHT = 0.25  # a task paid with promotional credits, or a free one (price 0)

BADGES = ((90.0, "Verified Elite"), (70.0, "Trusted"), (50.0, "Established"))  # NEXUS's thresholds
NEW_BADGE = "New"


class Outcome(StrEnum):
    """How a finished task counts for its agent."""

    SUCCESS = "success"
    AGENT_FAILURE = "agent_failure"  # the agent's fault: an upstream error, a timeout, an agent `failed`
    NEUTRAL = "neutral"  # counts neither way: a caller's cancel, an agent's `rejected`, a gateway refusal


def outcome_for(state: v1.TaskState, *, agent_at_fault: bool) -> Outcome:
    """How a task that ended in ``state`` counts; ``agent_at_fault`` says whether a failure was the agent's.

    A failure is the agent's when it answered an error (5xx, invalid JSON-RPC), timed out or itself ended
    the task failed; it is not when the gateway failed the task (a restart, a shutdown, a set-up error).
    A cancel is the caller's and a `rejected` is the agent declining, so neither counts.
    """
    if not state.terminal:
        raise ValueError(f"{state} is not a terminal state")
    if state is v1.TaskState.COMPLETED:
        return Outcome.SUCCESS
    if state is v1.TaskState.FAILED and agent_at_fault:
        return Outcome.AGENT_FAILURE
    return Outcome.NEUTRAL


def credit_weight_for(*, price: int, paid_with_purchased_credits: bool) -> float:
    """The reference's k: full weight only for a priced task paid from purchased credits."""
    return PAID_CREDIT_WEIGHT if price > 0 and paid_with_purchased_credits else PROMO_CREDIT_WEIGHT


@dataclass(frozen=True, slots=True)
class TaskEvidence:
    """One finished task of an agent, as the trust score sees it (one per task id)."""

    agent_id: str
    task_id: str
    requester: str  # the user who called (and paid)
    agent_owner: str  # the user who owns the agent; requester == agent_owner is self-dealing
    outcome: Outcome
    at: datetime  # when the task ended
    latency_ms: float | None = None  # first byte of the agent's terminal reply - time forwarded (successes)
    credit_weight: float = PAID_CREDIT_WEIGHT

    def __post_init__(self) -> None:
        if not 0.0 < self.credit_weight <= 1.0 or math.isnan(self.credit_weight):
            raise ValueError("credit_weight must be in (0, 1]")
        if self.latency_ms is not None and not (math.isfinite(self.latency_ms) and self.latency_ms >= 0):
            raise ValueError("latency_ms must be a finite number >= 0")
        if self.at.tzinfo is None:
            raise ValueError("at must be timezone-aware")

    @property
    def self_dealing(self) -> bool:
        """The agent's own owner called it: ignored by every component."""
        return self.requester == self.agent_owner


@dataclass(frozen=True, slots=True)
class Rating:
    """A requester's rating of one completed task (one per task)."""

    agent_id: str
    task_id: str
    requester: str
    agent_owner: str
    rating: int  # 1..5
    comment: str
    at: datetime
    credibility: float  # the rater's weight in [0, 1] when they rated (see score.credibility)

    def __post_init__(self) -> None:
        if isinstance(self.rating, bool) or not isinstance(self.rating, int) or not 1 <= self.rating <= 5:
            raise ValueError("rating must be an integer from 1 to 5")
        if not 0.0 <= self.credibility <= 1.0:
            raise ValueError("credibility must be in [0, 1]")
        if self.at.tzinfo is None:
            raise ValueError("at must be timezone-aware")

    @property
    def self_dealing(self) -> bool:
        """The agent's own owner rated it: never counted."""
        return self.requester == self.agent_owner


@dataclass(frozen=True, slots=True)
class TrustParams:
    """The formula's parameters (reference §3.3); reported with every score so it can be explained."""

    half_life_days: float = 30.0
    per_requester_cap: float = 5.0  # K: no requester counts for more than K tasks' worth
    prior_successes: float = 2.0  # Beta(2, 2): a new agent's reliability is 0.5
    prior_failures: float = 2.0
    speed_prior_weight: float = 5.0
    speed_prior: float = 0.5
    quality_prior_weight: float = 5.0
    quality_prior: float = 0.5
    tenure_scale_days: float = 90.0
    reference_latency_ms: float = 300_000.0  # L
    window_days: float = 180.0
    weight_reliability: float = 0.40
    weight_speed: float = 0.20
    weight_quality: float = 0.25
    weight_tenure: float = 0.15
    wilson_z: float = 1.96

    def __post_init__(self) -> None:
        positive = (
            self.half_life_days,
            self.per_requester_cap,
            self.prior_successes,
            self.prior_failures,
            self.speed_prior_weight,
            self.quality_prior_weight,
            self.tenure_scale_days,
            self.reference_latency_ms,
            self.window_days,
            self.wilson_z,
        )
        if not all(v > 0 for v in positive):
            raise ValueError("trust parameters must be positive")
        weights = (self.weight_reliability, self.weight_speed, self.weight_quality, self.weight_tenure)
        if any(w < 0 for w in weights) or not math.isclose(sum(weights), 1.0):
            raise ValueError("component weights must be >= 0 and sum to 1")
        if not (0 <= self.speed_prior <= 1 and 0 <= self.quality_prior <= 1):
            raise ValueError("component priors must be in [0, 1]")

    def to_dict(self) -> dict[str, Any]:
        """The ``params`` of the trust payload."""
        return {
            "halfLifeDays": self.half_life_days,
            "perRequesterCap": self.per_requester_cap,
            "priors": {
                "reliability": {"successes": self.prior_successes, "failures": self.prior_failures},
                "speed": {"mean": self.speed_prior, "weight": self.speed_prior_weight},
                "quality": {"mean": self.quality_prior, "weight": self.quality_prior_weight},
            },
            "tenureScaleDays": self.tenure_scale_days,
            "referenceLatencyMs": self.reference_latency_ms,
            "windowDays": self.window_days,
            "weights": {
                "reliability": self.weight_reliability,
                "speed": self.weight_speed,
                "quality": self.weight_quality,
                "tenure": self.weight_tenure,
            },
        }


@dataclass(frozen=True, slots=True)
class Components:
    """The four components, 0-100 each."""

    reliability: float
    speed: float
    quality: float
    tenure: float

    def to_dict(self) -> dict[str, float]:
        """The ``components`` of the trust payload."""
        return {
            "reliability": self.reliability,
            "speed": self.speed,
            "quality": self.quality,
            "tenure": self.tenure,
        }


@dataclass(frozen=True, slots=True)
class EvidenceSummary:
    """What the score rests on: counts of eligible events in the window, and the effective weights."""

    n_eff: float  # S + F after decay, credit weights and the per-requester cap
    successes: int
    failures: int
    distinct_requesters: int
    p50_latency_ms: float | None
    rating_votes: int  # requesters whose rating vote carries weight
    active_days: int

    def to_dict(self) -> dict[str, Any]:
        """The ``evidence`` of the trust payload."""
        return {
            "nEff": self.n_eff,
            "successes": self.successes,
            "failures": self.failures,
            "distinctRequesters": self.distinct_requesters,
            "p50LatencyMs": self.p50_latency_ms,
            "ratingVotes": self.rating_votes,
            "activeDays": self.active_days,
        }


class EventType(StrEnum):
    """Kinds of trust events (NEXUS's names where it has them)."""

    TASK_COMPLETED = "task_completed"
    TASK_FAILED = "task_failed"
    TASK_NOT_COUNTED = "task_not_counted"
    RATING_RECEIVED = "rating_received"


_EVENT_FOR_OUTCOME = {
    Outcome.SUCCESS: EventType.TASK_COMPLETED,
    Outcome.AGENT_FAILURE: EventType.TASK_FAILED,
    Outcome.NEUTRAL: EventType.TASK_NOT_COUNTED,
}


@dataclass(frozen=True, slots=True)
class TrustEvent:
    """One entry of an agent's trust history; names no requester (who uses an agent is not public)."""

    id: str
    agent_id: str
    type: EventType
    task_id: str
    at: datetime
    counted: bool  # False for self-dealing and neutral tasks, and for the owner's own ratings
    latency_ms: float | None = None
    rating: int | None = None
    comment: str | None = None

    @classmethod
    def of_evidence(cls, evidence: TaskEvidence) -> TrustEvent:
        """The event a finished task adds."""
        return cls(
            id=f"task:{evidence.task_id}",
            agent_id=evidence.agent_id,
            type=_EVENT_FOR_OUTCOME[evidence.outcome],
            task_id=evidence.task_id,
            at=evidence.at,
            counted=evidence.outcome is not Outcome.NEUTRAL and not evidence.self_dealing,
            latency_ms=evidence.latency_ms,
        )

    @classmethod
    def of_rating(cls, rating: Rating) -> TrustEvent:
        """The event a rating adds."""
        return cls(
            id=f"rating:{rating.task_id}",
            agent_id=rating.agent_id,
            type=EventType.RATING_RECEIVED,
            task_id=rating.task_id,
            at=rating.at,
            counted=not rating.self_dealing,
            rating=rating.rating,
            comment=rating.comment,
        )

    def to_dict(self) -> dict[str, Any]:
        """The event as the trust API shows it."""
        body: dict[str, Any] = {
            "id": self.id,
            "agentId": self.agent_id,
            "eventType": self.type.value,
            "taskId": self.task_id,
            "createdAt": self.at.isoformat(),
            "counted": self.counted,
        }
        if self.latency_ms is not None:
            body["latencyMs"] = self.latency_ms
        if self.rating is not None:
            body["rating"] = self.rating
            body["comment"] = self.comment or ""
        return body


def badge_for(trust_score: float) -> str:
    """NEXUS's badge for a score: >=90 Verified Elite, >=70 Trusted, >=50 Established, else New."""
    for threshold, name in BADGES:
        if trust_score >= threshold:
            return name
    return NEW_BADGE


@dataclass(frozen=True, slots=True)
class TrustScore:
    """An agent's score at one instant, with everything needed to explain it."""

    trust_score: float  # 0-100, two decimals
    components: Components
    evidence: EvidenceSummary
    params: TrustParams
    badge: str
    rank_key: float  # the same blend with reliability's Wilson lower bound: for ordering and filtering
    computed_at: datetime
    agent_id: str = ""
    recent_events: tuple[TrustEvent, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """The trust payload of GET /api/v1/trust/:agentId (the seed's fields, then the explanation)."""
        return {
            "agentId": self.agent_id,
            "trustScore": self.trust_score,
            "components": self.components.to_dict(),
            "recentEvents": [e.to_dict() for e in self.recent_events],
            "evidence": self.evidence.to_dict(),
            "params": self.params.to_dict(),
            "badge": self.badge,
            "rankKey": self.rank_key,
            "computedAt": self.computed_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class RatedTask:
    """What the service needs to know about a task someone wants to rate (from the task store)."""

    task_id: str
    agent_id: str
    requester: str
    agent_owner: str
    state: v1.TaskState


@dataclass(frozen=True, slots=True)
class RaterStanding:
    """What a rater's credibility rests on: purchased credits spent (promotional grants excluded) and
    when their account was created."""

    paid_spend_credits: int
    account_created_at: datetime | None
