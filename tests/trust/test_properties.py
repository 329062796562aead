"""Properties of the trust score (reference §3.3) over generated evidence and ratings: bounds, monotonicity
in an extra success or failure, self-dealing ignored, one requester's bounded effect, order independence,
and the prior when nothing counts."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from a2a_gateway.trust.models import BADGES, NEW_BADGE, Outcome, Rating, TaskEvidence, TrustScore
from a2a_gateway.trust.score import DEFAULT_PARAMS, score

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
OWNER = "owner"
POOL = ["u0", "u1", "u2", "u3"]
FRESH = "z"  # a requester the base evidence never names
K = DEFAULT_PARAMS.per_requester_cap
L_MS = DEFAULT_PARAMS.reference_latency_ms
ROUNDING = 0.01 + 1e-9  # one unit of the two decimals the score is reported with

ages = st.floats(min_value=0, max_value=200)  # some beyond the 180-day window
in_window = st.floats(min_value=0, max_value=179)
latencies = st.none() | st.sampled_from([0.0, 1000.0, L_MS, 10 * L_MS]) | st.floats(0, 2_000_000)
credit_weights = st.sampled_from([1.0, 0.25]) | st.floats(min_value=0.01, max_value=1.0)
credibilities = st.sampled_from([0.0, 1.0]) | st.floats(min_value=0, max_value=1)
outcomes = st.sampled_from(list(Outcome))
counted = st.sampled_from([Outcome.SUCCESS, Outcome.AGENT_FAILURE])


def _task(
    n: int, requester: str, outcome: Outcome, age: float, latency: float | None, k: float
) -> TaskEvidence:
    return TaskEvidence(
        agent_id="agent",
        task_id=f"t{n}",
        requester=requester,
        agent_owner=OWNER,
        outcome=outcome,
        at=NOW - timedelta(days=age),
        latency_ms=latency,
        credit_weight=k,
    )


def _rating(n: int, requester: str, stars: int, age: float, cred: float) -> Rating:
    return Rating(
        agent_id="agent",
        task_id=f"r{n}",
        requester=requester,
        agent_owner=OWNER,
        rating=stars,
        comment="",
        at=NOW - timedelta(days=age),
        credibility=cred,
    )


@st.composite
def evidence(
    draw: st.DrawFn, requesters: tuple[str, ...] = (*POOL, OWNER), max_size: int = 30
) -> list[TaskEvidence]:
    row = st.tuples(st.sampled_from(requesters), outcomes, ages, latencies, credit_weights)
    # Some rows come as bursts of identical tasks, so requesters often go past the cap.
    bursts = draw(st.lists(st.tuples(row, st.sampled_from([1, 1, 1, 2, 6, 12])), max_size=max_size))
    rows = [r for r, times in bursts for _ in range(times)][:max_size]
    start = draw(st.integers(0, 10_000))  # task ids differ between independently drawn lists
    return [_task(start * 100 + i, *r) for i, r in enumerate(rows)]


@st.composite
def ratings(
    draw: st.DrawFn, requesters: tuple[str, ...] = (*POOL, OWNER), max_size: int = 12
) -> list[Rating]:
    rows = draw(
        st.lists(
            st.tuples(st.sampled_from(requesters), st.integers(1, 5), ages, credibilities), max_size=max_size
        )
    )
    start = draw(st.integers(0, 10_000))
    return [_rating(start * 100 + i, *row) for i, row in enumerate(rows)]


@st.composite
def one_task(draw: st.DrawFn, outcome: Outcome, latency: st.SearchStrategy[float | None]) -> TaskEvidence:
    requester = draw(st.sampled_from([*POOL, FRESH]))
    return _task(999_999_999, requester, outcome, draw(in_window), draw(latency), draw(credit_weights))


def _others_equal(a: TrustScore, b: TrustScore, *fields: str) -> None:
    for name in fields:
        assert getattr(a.components, name) == getattr(b.components, name), name


@settings(max_examples=300, deadline=None)
@given(evidence(), ratings())
def test_every_number_stays_in_range_and_the_rank_key_is_the_more_cautious(
    tasks: list[TaskEvidence], rated: list[Rating]
) -> None:
    result = score(tasks, rated, NOW)

    assert 0 <= result.trust_score <= 100
    assert 0 <= result.rank_key <= result.trust_score
    for value in result.components.to_dict().values():
        assert 0 <= value <= 100
    assert 0 <= result.evidence.n_eff <= K * result.evidence.distinct_requesters + ROUNDING
    expected_badge = next((name for bar, name in BADGES if result.trust_score >= bar), NEW_BADGE)
    assert result.badge == expected_badge


@settings(max_examples=300, deadline=None)
@given(evidence(), ratings(), st.data())
def test_an_extra_failure_never_raises_the_score(
    tasks: list[TaskEvidence], rated: list[Rating], data: st.DataObject
) -> None:
    """From any requester but the owner, at any age in the window, paid or not; speed, quality and
    tenure do not move at all (failures carry no latency evidence)."""
    failure = data.draw(one_task(Outcome.AGENT_FAILURE, latencies))
    before = score(tasks, rated, NOW)
    after = score([*tasks, failure], rated, NOW)

    assert after.trust_score <= before.trust_score
    assert after.rank_key <= before.rank_key
    assert after.components.reliability <= before.components.reliability
    _others_equal(after, before, "speed", "quality", "tenure")


@settings(max_examples=300, deadline=None)
@given(evidence(), ratings(), st.data())
def test_an_extra_success_never_lowers_the_score_with_speed_evidence_unchanged(
    tasks: list[TaskEvidence], rated: list[Rating], data: st.DataObject
) -> None:
    """ "All else equal": the extra success carries no latency, so only reliability and tenure see it."""
    success = data.draw(one_task(Outcome.SUCCESS, st.none()))
    before = score(tasks, rated, NOW)
    after = score([*tasks, success], rated, NOW)

    assert after.trust_score >= before.trust_score
    assert after.rank_key >= before.rank_key
    assert after.components.reliability >= before.components.reliability
    assert after.components.tenure >= before.components.tenure
    _others_equal(after, before, "speed", "quality")


@settings(max_examples=300, deadline=None)
@given(evidence(), ratings(), st.data())
def test_an_extra_success_no_slower_than_any_before_never_lowers_the_score_of_an_agent_within_l(
    tasks: list[TaskEvidence], rated: list[Rating], data: st.DataObject
) -> None:
    """A measured extra success, at least as fast as every recorded one and within L, for an agent whose
    median is within L (more evidence of a median beyond L rightly pulls speed down)."""
    before = score(tasks, rated, NOW)
    measured = [t.latency_ms for t in tasks if t.latency_ms is not None]
    ceiling = min([*measured, L_MS])
    median = before.evidence.p50_latency_ms
    if median is not None and median > L_MS:
        return
    success = data.draw(one_task(Outcome.SUCCESS, st.floats(0, ceiling)))
    after = score([*tasks, success], rated, NOW)

    assert after.trust_score >= before.trust_score
    assert after.rank_key >= before.rank_key
    assert after.components.speed >= before.components.speed


@settings(max_examples=300, deadline=None)
@given(evidence(), ratings(), evidence(requesters=(OWNER,)), ratings(requesters=(OWNER,)))
def test_self_dealing_changes_nothing(
    tasks: list[TaskEvidence], rated: list[Rating], own_tasks: list[TaskEvidence], own_ratings: list[Rating]
) -> None:
    """Tasks the agent's owner sent it, and ratings they gave it, whatever their outcome and number."""
    assert score([*tasks, *own_tasks], [*rated, *own_ratings], NOW) == score(tasks, rated, NOW)


def _same_score(a: TrustScore, b: TrustScore) -> None:
    assert abs(a.trust_score - b.trust_score) <= ROUNDING
    assert abs(a.rank_key - b.rank_key) <= ROUNDING
    for name, value in a.components.to_dict().items():
        assert abs(value - b.components.to_dict()[name]) <= ROUNDING, name
    assert abs(a.evidence.n_eff - b.evidence.n_eff) <= ROUNDING
    assert a.evidence.active_days == b.evidence.active_days
    assert a.evidence.p50_latency_ms == b.evidence.p50_latency_ms


def test_a_capped_burst_of_equal_latencies_is_the_same_median_as_k_of_them() -> None:
    """Hypothesis found it: 14 tasks at 0 ms of weight 5/14 each added up to just under 5 one by one,
    so the median moved past them to the other requester's 1,000 ms (and the score by 0.03)."""
    tasks = [_task(i, "u0", Outcome.SUCCESS, 0.0, None if i < 6 else 1000.0, 1.0) for i in range(12)]
    burst = [_task(10**9 + i, FRESH, Outcome.SUCCESS, 0.0, 0.0, 1.0) for i in range(14)]
    capped, k_of_them = score([*tasks, *burst], [], NOW), score([*tasks, *burst[: int(K)]], [], NOW)
    assert capped.evidence.p50_latency_ms == k_of_them.evidence.p50_latency_ms == 0.0
    _same_score(capped, k_of_them)


@settings(max_examples=200, deadline=None)
@given(evidence(), ratings(), counted, latencies, st.integers(int(K) + 1, 60))
def test_more_than_k_identical_tasks_from_one_requester_move_the_score_as_much_as_k(
    tasks: list[TaskEvidence], rated: list[Rating], outcome: Outcome, latency: float | None, n: int
) -> None:
    """N > K tasks just ended, paid, identical but for their ids, from one new requester, against K of
    them."""
    burst = [_task(10**9 + i, FRESH, outcome, 0.0, latency, 1.0) for i in range(n)]
    _same_score(score([*tasks, *burst], rated, NOW), score([*tasks, *burst[: int(K)]], rated, NOW))


@settings(max_examples=200, deadline=None)
@given(
    evidence(),
    ratings(),
    st.lists(st.tuples(st.floats(0, 5), st.floats(0, 2_000_000)), min_size=6, max_size=10),
    st.lists(st.floats(0, 5), max_size=4),
    st.integers(2, 5),
)
def test_a_requester_past_the_cap_gains_nothing_by_repeating_itself(
    tasks: list[TaskEvidence],
    rated: list[Rating],
    successes: list[tuple[float, float]],
    failures: list[float],
    copies: int,
) -> None:
    """A new requester's recent paid tasks (at least 6 measured successes, so over K tasks' worth), then
    the same tasks again ``copies`` times over (same instants, outcomes and latencies)."""
    rows: list[tuple[str, Outcome, float, float | None, float]]
    rows = [(FRESH, Outcome.SUCCESS, age, lat, 1.0) for age, lat in successes]
    rows += [(FRESH, Outcome.AGENT_FAILURE, age, None, 1.0) for age in failures]
    once = [_task(10**9 + i, *row) for i, row in enumerate(rows)]
    repeated = [_task(10**9 + c * 100 + i, *row) for c in range(copies) for i, row in enumerate(rows)]
    _same_score(score([*tasks, *repeated], rated, NOW), score([*tasks, *once], rated, NOW))


@settings(max_examples=300, deadline=None)
@given(evidence(), ratings(), evidence(requesters=(FRESH,), max_size=40), ratings(requesters=(FRESH,)))
def test_one_requester_adds_at_most_k_tasks_worth_one_vote_and_k_active_days(
    tasks: list[TaskEvidence], rated: list[Rating], theirs: list[TaskEvidence], their_ratings: list[Rating]
) -> None:
    """Any number of tasks (any outcome, age, latency, credit) and ratings from one new requester: its
    evidence weighs at most K, it gets one vote, it credits at most K days, and reliability and quality
    stay between what K fresh paid failures / successes and one 1-star / 5-star full vote would give."""
    before = score(tasks, rated, NOW)
    after = score([*tasks, *theirs], [*rated, *their_ratings], NOW)

    assert after.evidence.n_eff - before.evidence.n_eff <= K + ROUNDING
    assert after.evidence.active_days - before.evidence.active_days <= K
    assert after.evidence.distinct_requesters - before.evidence.distinct_requesters <= 1
    assert after.evidence.rating_votes - before.evidence.rating_votes <= 1

    def fresh(outcome: Outcome) -> list[TaskEvidence]:
        return [_task(2 * 10**9 + i, FRESH, outcome, 0.0, None, 1.0) for i in range(int(K))]

    worst = score([*tasks, *fresh(Outcome.AGENT_FAILURE)], rated, NOW).components.reliability
    best = score([*tasks, *fresh(Outcome.SUCCESS)], rated, NOW).components.reliability
    assert worst - ROUNDING <= after.components.reliability <= best + ROUNDING

    def vote(stars: int) -> float:
        return score(tasks, [*rated, _rating(2 * 10**9, FRESH, stars, 0.0, 1.0)], NOW).components.quality

    assert vote(1) - ROUNDING <= after.components.quality <= vote(5) + ROUNDING


@settings(max_examples=300, deadline=None)
@given(evidence(), ratings(), st.randoms(use_true_random=False))
def test_the_order_of_events_does_not_matter(
    tasks: list[TaskEvidence], rated: list[Rating], rnd: random.Random
) -> None:
    shuffled_tasks, shuffled_ratings = list(tasks), list(rated)
    rnd.shuffle(shuffled_tasks)
    rnd.shuffle(shuffled_ratings)
    assert score(shuffled_tasks, shuffled_ratings, NOW) == score(tasks, rated, NOW)


@settings(max_examples=200, deadline=None)
@given(evidence(), ratings())
def test_with_nothing_in_the_window_the_score_is_the_prior(
    tasks: list[TaskEvidence], rated: list[Rating]
) -> None:
    """Everything aged out of the window, or only what never counts (self-dealing, neutral outcomes)."""
    later = NOW + timedelta(days=DEFAULT_PARAMS.window_days + 201)
    assert score(tasks, rated, later).trust_score == 42.5

    uncounted = [t for t in tasks if t.self_dealing or t.outcome is Outcome.NEUTRAL]
    neutral = [replace(t, outcome=Outcome.NEUTRAL) for t in tasks]
    own = [r for r in rated if r.self_dealing]
    for nothing in (uncounted, neutral):
        result = score(nothing, own, NOW)
        assert result.trust_score == 42.5
        assert result.components.to_dict() == {"reliability": 50, "speed": 50, "quality": 50, "tenure": 0}
        assert result.evidence.n_eff == 0
    assert score([], [], NOW).trust_score == 42.5
