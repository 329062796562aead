"""The reference's worked values (§3.3 table), each scenario built from evidence as stated in its test.

Expected values are worked out in the test from the closed forms of §3.3 (not by calling the code under
test), then compared with what ``score`` reports. All requesters pay with purchased credits (k = 1) and
have credibility 1, as the reference assumes. NOW is noon UTC, so ages of whole days fall on distinct days.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from a2a_gateway.trust.models import Outcome, Rating, TaskEvidence
from a2a_gateway.trust.score import blend, quality, reliability, score, speed, tenure

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
OWNER = "owner"
L_MS = 300_000.0


def decay(age_days: float) -> float:
    return float(2 ** (-age_days / 30))


def task(
    i: int, requester: str, outcome: Outcome, age_days: float, latency_ms: float | None = None
) -> TaskEvidence:
    return TaskEvidence(
        agent_id="agent",
        task_id=f"t{i}",
        requester=requester,
        agent_owner=OWNER,
        outcome=outcome,
        at=NOW - timedelta(days=age_days),
        latency_ms=latency_ms,
    )


def rating_of(evidence: TaskEvidence, stars: int) -> Rating:
    return Rating(
        agent_id="agent",
        task_id=evidence.task_id,
        requester=evidence.requester,
        agent_owner=OWNER,
        rating=stars,
        comment="",
        at=evidence.at,
        credibility=1.0,
    )


def expected(r: float, sp: float, q: float, te: float) -> float:
    return 100 * (0.40 * r + 0.20 * sp + 0.25 * q + 0.15 * te)


def test_a_brand_new_agent_scores_the_prior_42_5() -> None:
    """No evidence at all: R = Sp = Q = 0.5 (their priors), Te = 0."""
    result = score([], [], NOW)

    assert result.trust_score == 42.5
    assert result.components.to_dict() == {"reliability": 50.0, "speed": 50.0, "quality": 50.0, "tenure": 0.0}
    assert result.evidence.n_eff == 0
    assert result.evidence.p50_latency_ms is None
    assert result.badge == "New"
    assert result.rank_key == 22.5  # Wilson's bound is 0 with no trials: 100 * (0.2*0.5 + 0.25*0.5)


def test_one_requester_with_500_instant_tasks_and_500_five_star_ratings_stays_below_trusted() -> None:
    """One requester, 500 successes spread over 3 days (ages 0, 1, 2 days in turn), each answered in 1 s,
    each rated 5 stars. The reference calls them instant: its Sp of 74.9 needs a p50 between about 0.45 s
    and 1.3 s (0 ms would give 75.0). The cap leaves S = K = 5, the speed weight 5 and one vote."""
    tasks = [task(i, "u1", Outcome.SUCCESS, i % 3, latency_ms=1000) for i in range(500)]
    ratings = [rating_of(t, 5) for t in tasks]

    result = score(tasks, ratings, NOW)

    r, sp, q, te = 7 / 9, (5 * 2 ** (-1000 / L_MS) + 2.5) / 10, 3.5 / 6, 1 - math.exp(-3 / 90)
    assert result.components.reliability == pytest.approx(100 * r, abs=0.005)  # 77.78
    assert result.components.speed == pytest.approx(100 * sp, abs=0.005)  # 74.88
    assert result.components.quality == pytest.approx(100 * q, abs=0.005)  # 58.33
    assert result.components.tenure == pytest.approx(100 * te, abs=0.005)  # 3.28
    assert result.evidence.n_eff == 5.0
    assert result.evidence.active_days == 3
    assert result.evidence.rating_votes == 1
    assert result.trust_score == pytest.approx(expected(r, sp, q, te), abs=0.005)
    assert result.trust_score == pytest.approx(61.2, abs=0.1)
    assert result.trust_score < 70
    assert result.badge == "Established"


def test_half_failures_slow_answers_and_two_star_ratings_score_46() -> None:
    """On each of the last 100 days (ages 0..99 days) one success answered in 400 s and one agent failure
    at the same instant, from 40 requesters in turn (5 tasks each, so the cap never binds); the 20 most
    recent successes (from 20 different requesters) rated 2 stars when they ended."""
    tasks: list[TaskEvidence] = []
    for day in range(100):
        tasks.append(task(len(tasks), f"u{len(tasks) % 40}", Outcome.SUCCESS, day, latency_ms=400_000))
        tasks.append(task(len(tasks), f"u{len(tasks) % 40}", Outcome.AGENT_FAILURE, day))
    rated = [t for t in tasks if t.outcome is Outcome.SUCCESS][:20]
    ratings = [rating_of(t, 2) for t in rated]

    result = score(tasks, ratings, NOW)

    s = math.fsum(decay(d) for d in range(100))
    votes = math.fsum(decay(d) for d in range(20))
    r = (s + 2) / (2 * s + 4)
    sp = (s * 2 ** (-400_000 / L_MS) + 2.5) / (s + 5)
    q = (2.5 + 0.25 * votes) / (5 + votes)
    te = 1 - math.exp(-100 / 90)
    assert result.components.reliability == pytest.approx(100 * r, abs=0.005)  # 50.0 (reference 50.5)
    assert result.components.speed == pytest.approx(100 * sp, abs=0.005)  # 40.85 (40.9)
    assert result.components.quality == pytest.approx(100 * q, abs=0.005)  # 30.9 (30.3)
    assert result.components.tenure == pytest.approx(100 * te, abs=0.005)  # 67.08 (67.1)
    assert result.evidence.n_eff == pytest.approx(2 * s, abs=0.005)  # 78.9 (75)
    assert result.evidence.p50_latency_ms == 400_000
    assert result.evidence.rating_votes == 20
    assert result.trust_score == pytest.approx(expected(r, sp, q, te), abs=0.005)
    assert result.trust_score == pytest.approx(46.0, abs=0.1)  # 45.96
    assert result.badge == "New"


def test_forty_requesters_200_successes_10_failures_over_150_active_days() -> None:
    """The reference's 89.6 row cannot be rebuilt from evidence: it reports n_eff 156 with 150 active days,
    but with a 30-day half-life, 200 successes on 150 distinct days weigh at most about 92 (51 today, one
    on each older day), so its generator must have set the active days apart from the task dates.

    Built here as stated: one success on each of the last 150 days (ages 0..149 days), 50 more six hours
    older on the 50 most recent days, all answered in 60 s, from 40 requesters in turn by recency; 10
    agent failures at ages 0.5, 15.5, ..., 135.5 days from every fourth requester; the 30 most recent
    successes rated 5 stars when they ended. It scores 89.4: speed and quality rest on less weight."""
    ages = sorted([float(d) for d in range(150)] + [d + 0.25 for d in range(50)])
    tasks = [task(i, f"u{i % 40}", Outcome.SUCCESS, age, latency_ms=60_000) for i, age in enumerate(ages)]
    fail_ages = [15 * j + 0.5 for j in range(10)]
    tasks += [task(1000 + j, f"u{4 * j}", Outcome.AGENT_FAILURE, age) for j, age in enumerate(fail_ages)]
    ratings = [rating_of(t, 5) for t in tasks[:30]]

    result = score(tasks, ratings, NOW)

    s = math.fsum(decay(a) for a in ages)
    f = math.fsum(decay(a) for a in fail_ages)
    votes = math.fsum(decay(a) for a in ages[:30])
    r = (s + 2) / (s + f + 4)
    sp = (s * 2 ** (-60_000 / L_MS) + 2.5) / (s + 5)
    q = (2.5 + votes) / (5 + votes)
    te = 1 - math.exp(-150 / 90)
    assert result.components.reliability == pytest.approx(100 * r, abs=0.005)  # 93.37 (reference 93.2)
    assert result.components.speed == pytest.approx(100 * sp, abs=0.005)  # 84.66 (85.8)
    assert result.components.quality == pytest.approx(100 * q, abs=0.005)  # 91.82 (92.1)
    assert result.components.tenure == pytest.approx(100 * te, abs=0.005)  # 81.11 (81.1)
    assert result.evidence.n_eff == pytest.approx(s + f, abs=0.005)  # 75.5 (156)
    assert result.evidence.distinct_requesters == 40
    assert result.evidence.active_days == 150
    assert result.trust_score == pytest.approx(expected(r, sp, q, te), abs=0.005)
    assert result.trust_score == pytest.approx(89.4, abs=0.05)
    assert result.badge == "Trusted"


def test_the_89_6_row_follows_from_its_own_evidence_figures() -> None:
    """The row's components from the quantities it implies: n_eff 156 and R 93.2 give S = 147.1 and
    F = 8.9; the speed weight is S (every success measured, no cap binding); Q 92.1 from 5-star votes
    implies a total vote weight of 26.6; D = 150."""
    s, f, votes = 147.1, 8.9, 26.6
    r = reliability(s, f)
    sp = speed(s, 60_000)
    q = quality([(votes, 1.0)])
    te = tenure(150)

    assert round(100 * r, 1) == 93.2
    assert round(100 * sp, 1) == 85.8
    assert round(100 * q, 1) == 92.1
    assert round(100 * te, 1) == 81.1
    assert blend(r, sp, q, te) == pytest.approx(89.6, abs=0.05)
