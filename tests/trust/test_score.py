"""The score's parts on small hand-worked cases: decay and window, credit weights, the per-requester caps
(reliability, speed, tenure), neutral outcomes, ratings and credibility, the Wilson rank key, the payload,
and the models' own checks."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from a2a_gateway.protocol import v1
from a2a_gateway.trust.models import (
    Outcome,
    Rating,
    TaskEvidence,
    TrustEvent,
    badge_for,
    credit_weight_for,
    outcome_for,
)
from a2a_gateway.trust.score import credibility, score, wilson_lower_bound

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
OWNER = "owner"
L_MS = 300_000.0
SLOW_MS = 10 * L_MS
counter = iter(range(10**9))


def task(
    requester: str,
    outcome: Outcome = Outcome.SUCCESS,
    age_days: float = 0.0,
    latency_ms: float | None = None,
    k: float = 1.0,
) -> TaskEvidence:
    return TaskEvidence(
        agent_id="agent",
        task_id=f"t{next(counter)}",
        requester=requester,
        agent_owner=OWNER,
        outcome=outcome,
        at=NOW - timedelta(days=age_days),
        latency_ms=latency_ms,
        credit_weight=k,
    )


def rating(requester: str, stars: int, age_days: float = 0.0, cred: float = 1.0) -> Rating:
    return Rating(
        agent_id="agent",
        task_id=f"t{next(counter)}",
        requester=requester,
        agent_owner=OWNER,
        rating=stars,
        comment="",
        at=NOW - timedelta(days=age_days),
        credibility=cred,
    )


def test_evidence_halves_every_30_days_and_leaves_the_window_after_180() -> None:
    assert score([task("a", age_days=30)], [], NOW).evidence.n_eff == 0.5
    assert score([task("a", age_days=60)], [], NOW).evidence.n_eff == 0.25
    assert score([task("a", age_days=179)], [], NOW).evidence.successes == 1
    old = score([task("a", age_days=181)], [], NOW)
    assert old.evidence.successes == 0
    assert old.trust_score == 42.5


def test_the_same_evidence_read_later_has_decayed() -> None:
    tasks = [task(f"u{i}", latency_ms=1000) for i in range(4)]
    today, a_month_on = score(tasks, [], NOW), score(tasks, [], NOW + timedelta(days=30))

    assert today.evidence.n_eff == 4
    assert a_month_on.evidence.n_eff == 2
    assert a_month_on.components.reliability < today.components.reliability


def test_promotional_and_free_tasks_weigh_a_quarter() -> None:
    assert credit_weight_for(price=10, paid_with_purchased_credits=True) == 1.0
    assert credit_weight_for(price=10, paid_with_purchased_credits=False) == 0.25
    assert credit_weight_for(price=0, paid_with_purchased_credits=True) == 0.25

    result = score([task("a", k=0.25), task("b", k=1.0)], [], NOW)
    assert result.evidence.n_eff == 1.25
    assert result.components.reliability == pytest.approx(100 * 3.25 / 5.25, abs=0.005)


def test_one_requester_counts_for_at_most_five_tasks_in_their_own_proportions() -> None:
    ten = [task("spammer") for _ in range(10)]
    assert score(ten, [], NOW).evidence.n_eff == 5
    assert score(ten, [], NOW).components.reliability == pytest.approx(100 * 7 / 9, abs=0.005)

    mixed = [task("u") for _ in range(8)] + [task("u", Outcome.AGENT_FAILURE) for _ in range(2)]
    result = score(mixed, [], NOW)  # λ = 5/10: S = 4, F = 1
    assert result.evidence.n_eff == 5
    assert result.components.reliability == pytest.approx(100 * 6 / 9, abs=0.005)
    assert (result.evidence.successes, result.evidence.failures) == (8, 2)


def test_neutral_tasks_count_neither_way_and_self_dealing_counts_nowhere() -> None:
    base = [task("a"), task("b", Outcome.AGENT_FAILURE)]
    neutral = [task("c", Outcome.NEUTRAL) for _ in range(5)]
    own = [task(OWNER, latency_ms=0) for _ in range(5)]

    assert score([*base, *neutral, *own], [], NOW) == score(base, [], NOW)
    assert score(neutral, [], NOW).evidence.distinct_requesters == 0


def test_outcomes_of_terminal_states() -> None:
    assert outcome_for(v1.TaskState.COMPLETED, agent_at_fault=False) is Outcome.SUCCESS
    assert outcome_for(v1.TaskState.FAILED, agent_at_fault=True) is Outcome.AGENT_FAILURE
    assert outcome_for(v1.TaskState.FAILED, agent_at_fault=False) is Outcome.NEUTRAL  # gateway-side
    assert outcome_for(v1.TaskState.CANCELED, agent_at_fault=True) is Outcome.NEUTRAL  # the caller's
    assert outcome_for(v1.TaskState.REJECTED, agent_at_fault=True) is Outcome.NEUTRAL  # the agent declined
    with pytest.raises(ValueError, match="terminal"):
        outcome_for(v1.TaskState.WORKING, agent_at_fault=True)


def test_speed_uses_the_weighted_median_latency_of_successes() -> None:
    fast = [task(f"f{i}", latency_ms=1000) for i in range(3)]
    slow = [task(f"s{i}", latency_ms=SLOW_MS) for i in range(2)]
    failures = [task(f"x{i}", Outcome.AGENT_FAILURE, latency_ms=SLOW_MS) for i in range(5)]

    result = score([*fast, *slow, *failures], [], NOW)

    assert result.evidence.p50_latency_ms == 1000  # failures carry no speed evidence
    assert result.components.speed == pytest.approx(100 * (5 * 2 ** (-1000 / L_MS) + 2.5) / 10, abs=0.005)


def test_a_failure_never_moves_speed_even_from_a_requester_past_the_cap() -> None:
    """§3.3's joint λ_u would shrink a capped requester's latency weight with each of its failures: here
    the median would flip from 3000 s to 1 s and the score rise by about 10 points on an extra failure.
    Speed evidence is capped on its own, so failures leave it alone."""
    slow = [task("slow", latency_ms=SLOW_MS) for _ in range(5)] + [task("slow", Outcome.AGENT_FAILURE)]
    fast = [task(f"f{i}", latency_ms=1000) for i in range(4)]
    before = score([*slow, *fast], [], NOW)
    after = score([*slow, *fast, task("slow", Outcome.AGENT_FAILURE)], [], NOW)

    assert before.evidence.p50_latency_ms == after.evidence.p50_latency_ms == SLOW_MS
    assert after.components.speed == before.components.speed
    assert after.trust_score < before.trust_score


def test_a_slow_success_can_lower_the_score() -> None:
    """Speed is part of trust: successes that took ten times the reference latency, enough of them to
    move the median, lower the score though reliability rises."""
    tasks = [task(f"u{i}", latency_ms=1000) for i in range(3)]
    before = score(tasks, [], NOW)
    after = score([*tasks, *(task(f"v{i}", latency_ms=SLOW_MS) for i in range(4))], [], NOW)

    assert after.components.reliability > before.components.reliability
    assert after.components.speed < before.components.speed
    assert after.trust_score < before.trust_score


def test_one_requester_builds_at_most_five_days_of_tenure() -> None:
    daily = [task("loyal", age_days=d) for d in range(180)]
    assert score(daily, [], NOW).evidence.active_days == 5

    shared = [task(f"u{d % 36}", age_days=d) for d in range(180)]  # 36 requesters, 5 days each
    assert score(shared, [], NOW).evidence.active_days == 180
    assert score(shared, [], NOW).components.tenure == pytest.approx(100 * (1 - math.exp(-2)), abs=0.005)


def test_tenure_credits_the_most_days_the_per_requester_cap_allows() -> None:
    """A called on days 0..9, B on days 0..2: B's 3 days, and 5 of A's other 7 (a matching, not a greedy
    pick of A's days first, which could leave B's days uncredited)."""
    a = [task("a", age_days=d) for d in range(10)]
    b = [task("b", age_days=d) for d in range(3)]
    assert score([*a, *b], [], NOW).evidence.active_days == 8

    c = [task("c", age_days=d) for d in (0, 1, 2, 3, 4, 5)]  # two requesters over the cap on 6+10 days
    assert score([*a, *c], [], NOW).evidence.active_days == 10


def test_one_vote_per_requester_decayed_and_weighted_by_credibility() -> None:
    assert score([], [rating("a", 5) for _ in range(10)], NOW).components.quality == pytest.approx(
        100 * 3.5 / 6, abs=0.005
    )
    # a 5 today and a 1 a month ago: q = (1*1 + 0.5*0) / 1.5, vote min(1, 1.5) = 1
    mixed = score([], [rating("a", 5), rating("a", 1, age_days=30)], NOW)
    assert mixed.components.quality == pytest.approx(100 * (2.5 + 2 / 3) / 6, abs=0.005)
    # a single month-old 5: vote 0.5
    old = score([], [rating("a", 5, age_days=30)], NOW)
    assert old.components.quality == pytest.approx(100 * 3.0 / 5.5, abs=0.005)
    # half credibility halves the vote; none makes it no vote at all
    half = score([], [rating("a", 5, cred=0.5)], NOW)
    assert half.components.quality == pytest.approx(100 * 3.0 / 5.5, abs=0.005)
    none = score([], [rating("a", 5, cred=0.0)], NOW)
    assert none.evidence.rating_votes == 0
    assert none.components.quality == 50
    own = score([], [rating(OWNER, 5)], NOW)
    assert own.components.quality == 50


def test_credibility_needs_purchased_spend_and_a_week_of_account_age() -> None:
    assert credibility(100, 7) == 1.0
    assert credibility(1000, 365) == 1.0
    assert credibility(50, 7) == 0.5
    assert credibility(100, 3.5) == 0.5
    assert credibility(50, 3.5) == 0.25
    assert credibility(0, 365) == 0.0  # only granted credits: no vote
    assert credibility(-5, -1) == 0.0


def test_rank_key_blends_the_wilson_lower_bound() -> None:
    assert wilson_lower_bound(0, 0) == 0
    # Evan Miller's SQL form for 9 up, 1 down
    pos, neg = 9, 1
    n = pos + neg
    sql = ((pos + 1.9208) / n - 1.96 * math.sqrt(pos * neg / n + 0.9604) / n) / (1 + 3.8416 / n)
    assert wilson_lower_bound(pos, n) == pytest.approx(sql, abs=1e-4)

    tasks = [task(f"u{i}") for i in range(9)] + [task("x", Outcome.AGENT_FAILURE)]
    result = score(tasks, [], NOW)
    rest = 0.20 * 0.5 + 0.25 * 0.5 + 0.15 * (1 - math.exp(-1 / 90))
    assert result.rank_key == pytest.approx(100 * (0.40 * wilson_lower_bound(9, 10) + rest), abs=0.005)
    assert result.rank_key < result.trust_score


def test_badges_use_nexus_thresholds() -> None:
    assert [badge_for(s) for s in (0, 49.99, 50, 69.99, 70, 89.99, 90, 100)] == [
        "New",
        "New",
        "Established",
        "Established",
        "Trusted",
        "Trusted",
        "Verified Elite",
        "Verified Elite",
    ]


def test_the_payload_has_the_seed_fields_and_the_explanation() -> None:
    body = score([task("a", latency_ms=1500)], [rating("a", 4)], NOW).to_dict()

    assert set(body) == {
        "agentId",
        "trustScore",
        "components",
        "recentEvents",
        "evidence",
        "params",
        "badge",
        "rankKey",
        "computedAt",
    }
    assert set(body["components"]) == {"reliability", "speed", "quality", "tenure"}
    assert body["evidence"] == {
        "nEff": 1.0,
        "successes": 1,
        "failures": 0,
        "distinctRequesters": 1,
        "p50LatencyMs": 1500,
        "ratingVotes": 1,
        "activeDays": 1,
    }
    assert body["params"]["halfLifeDays"] == 30
    assert body["params"]["perRequesterCap"] == 5
    assert body["params"]["priors"]["reliability"] == {"successes": 2, "failures": 2}
    assert body["params"]["weights"] == {"reliability": 0.4, "speed": 0.2, "quality": 0.25, "tenure": 0.15}


def test_events_name_no_requester_and_say_whether_they_counted() -> None:
    done = TrustEvent.of_evidence(task("a", latency_ms=10))
    own = TrustEvent.of_evidence(task(OWNER))
    canceled = TrustEvent.of_evidence(task("a", Outcome.NEUTRAL))
    rated = TrustEvent.of_rating(rating("a", 4))

    assert (done.type, done.counted) == ("task_completed", True)
    assert (own.counted, canceled.type, canceled.counted) == (False, "task_not_counted", False)
    assert rated.to_dict()["rating"] == 4
    for event in (done, own, canceled, rated):
        assert "a" not in event.to_dict().values()
        assert OWNER not in event.to_dict().values()


def test_models_refuse_impossible_values() -> None:
    with pytest.raises(ValueError, match="credit_weight"):
        task("a", k=0.0)
    with pytest.raises(ValueError, match="latency"):
        task("a", latency_ms=-1)
    with pytest.raises(ValueError, match="latency"):
        task("a", latency_ms=math.inf)
    with pytest.raises(ValueError, match="timezone"):
        TaskEvidence("agent", "t", "a", OWNER, Outcome.SUCCESS, datetime(2026, 1, 1))
    for stars in (0, 6, True):
        with pytest.raises(ValueError, match="rating"):
            rating("a", stars)
    with pytest.raises(ValueError, match="credibility"):
        rating("a", 5, cred=1.5)
