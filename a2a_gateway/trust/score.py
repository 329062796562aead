"""The trust score: a pure function of an agent's task evidence and ratings at one instant (reference §3.3).

Evidence ages: a task or rating of age ``a`` days weighs ``2^(-a/H)`` (H = 30 days), and nothing older
than the window (180 days) counts, so decay needs no job: recomputing with a later ``now`` applies it.
Self-dealing (the requester owns the agent) is dropped before any component sees it, and a neutral task
(a caller's cancel, an agent's `rejected`, a gateway-side refusal) counts neither way.

Per requester u, with ``k`` the credit weight (1 for purchased credits, 0.25 for promotional or free):
``s_u = Σ w·k`` over its successes, ``f_u = Σ w·k`` over its agent-attributable failures, and
``λ_u = min(1, K / (s_u + f_u))`` (K = 5), so no single requester counts for more than K tasks' worth.

- reliability ``R = (S + 2) / (S + F + 4)`` with ``S = Σ λ_u s_u``, ``F = Σ λ_u f_u`` (Beta(2, 2) prior);
- speed ``Sp = (n·2^(-p50/L) + 5·0.5) / (n + 5)``, p50 the weighted median latency of successes, n the sum
  of their weights;
- quality ``Q = (5·0.5 + Σ v_u q_u) / (5 + Σ v_u)``, one vote per requester: q_u the decayed mean of u's
  ratings mapped to ``(r - 1) / 4``, ``v_u = min(1, Σ decayed weights of u's ratings) · credibility_u``;
- tenure ``Te = 1 - e^(-D/90)``, D distinct (UTC) days with an eligible success (capped, below);
- ``trustScore = round(100·(0.40·R + 0.20·Sp + 0.25·Q + 0.15·Te), 2)``; ``rankKey`` is the same blend
  with R replaced by the Wilson lower bound of S successes in S + F trials (conservative for few tasks).

Two places where §3.3 leaves a choice, settled so that its own properties hold:

- Speed evidence is capped per requester on its own: u's measured successes weigh
  ``w·k·min(1, K / Σ_u w·k)``, summed over those successes only. With §3.3's joint λ_u instead, an extra
  failure from a requester shrinks the weight of that requester's latencies, which can move the median
  and *raise* the score (an extra failure must never do that); with the separate cap, failures never touch
  speed. Both give every requester at most K tasks' worth of speed evidence, and agree whenever a capped
  requester has no failures (all the reference's worked values).
- Tenure is capped per requester too: D is the largest number of distinct active days that can be
  credited with no requester credited for more than K of them (a maximum bipartite b-matching of
  requesters to days). Counting every day would let one account that calls once a day build tenure alone,
  which the per-requester cap exists to prevent; the matching keeps D monotone in extra successes.

A slow extra success can lower the score: it is evidence that the agent is slow. Monotonicity in an
extra success holds with the speed evidence unchanged, and for a success no slower than any before it
while the median is within L.

Rater credibility is ``min(1, paid_spend / 100 credits) · min(1, account_age_days / 7)``. Only credits
the rater bought and spent count as spend: promotional grants do not. A grant is free to whoever signs up,
which is exactly what a sybil farm gets, so counting it would hand every fresh account a full vote;
requiring purchased credits makes each vote cost real money.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from a2a_gateway.trust.models import (
    Components,
    EvidenceSummary,
    Outcome,
    Rating,
    TaskEvidence,
    TrustParams,
    TrustScore,
    badge_for,
)

DEFAULT_PARAMS = TrustParams()
_DAY_SECONDS = 86_400.0
CREDIBLE_SPEND_CREDITS = 100.0  # purchased credits spent for a full vote
CREDIBLE_AGE_DAYS = 7.0  # account age for a full vote
MEDIAN_SLACK = 1e-12  # relative: the running sum's rounding, far below any weight that matters


def credibility(paid_spend_credits: float, account_age_days: float) -> float:
    """A rater's weight in [0, 1]: purchased credits spent (never promotional grants) and account age."""
    spend = min(1.0, max(0.0, paid_spend_credits) / CREDIBLE_SPEND_CREDITS)
    age = min(1.0, max(0.0, account_age_days) / CREDIBLE_AGE_DAYS)
    return spend * age


@dataclass(frozen=True, slots=True)
class RawScore:
    """The score before rounding, component values in [0, 1] (what the properties are stated on)."""

    reliability: float
    speed: float
    quality: float
    tenure: float
    wilson: float
    trust: float  # 0-100
    rank: float  # 0-100
    s: float
    f: float
    successes: int
    failures: int
    distinct_requesters: int
    p50_latency_ms: float | None
    rating_votes: int
    active_days: int


def _age_days(at: datetime, now: datetime) -> float:
    # An event stamped slightly in the future (clocks of two processes) counts as happening now.
    return max(0.0, (now - at).total_seconds() / _DAY_SECONDS)


def _decay(age_days: float, params: TrustParams) -> float:
    return float(2.0 ** (-age_days / params.half_life_days))


def _capped(s: float, f: float, cap: float) -> tuple[float, float]:
    """u's (λ_u·s_u, λ_u·f_u); written as cap·(s/t) so a one-sided requester lands on exactly cap."""
    total = s + f
    if total <= cap:
        return s, f
    return cap * (s / total), cap * (f / total)


def _weighted_median(items: list[tuple[float, float]]) -> float | None:
    """The lower weighted median of (value, weight) pairs: the least value with half the weight at or
    below it. Sorting by (value, weight) makes the result independent of input order.

    Equal values are summed first (exactly rounded, ``math.fsum``), and "half the weight" allows for
    the rounding of the running sum: otherwise N equal latencies of weight K/N each could add up to
    just under the K that K of them of weight 1 make, and move the median (the per-requester cap must
    make them the same evidence).
    """
    grouped: dict[float, list[float]] = defaultdict(list)
    for value, weight in items:
        if weight > 0:
            grouped[value].append(weight)
    if not grouped:
        return None
    ordered = [(value, math.fsum(weights)) for value, weights in sorted(grouped.items())]
    total = math.fsum(w for _, w in ordered)
    half = total / 2 - total * MEDIAN_SLACK
    running = 0.0
    for value, weight in ordered:
        running += weight
        if running >= half:
            return value
    return ordered[-1][0]


def _max_credited_days(days_by_requester: dict[str, set[date]], cap: int) -> int:
    """Most distinct days creditable with at most ``cap`` days per requester (bipartite b-matching).

    Days of requesters with no more than ``cap`` days are all credited; only the few requesters above the
    cap are matched, one slot per creditable day, by augmenting paths (Kuhn's algorithm).
    """
    free: set[date] = set()
    for days in days_by_requester.values():
        if len(days) <= cap:
            free |= days
    over = sorted((u, sorted(days - free)) for u, days in days_by_requester.items() if len(days) > cap)
    holder: dict[date, tuple[str, int]] = {}
    candidates = dict(over)

    def augment(slot: tuple[str, int], seen: set[date]) -> bool:
        for day in candidates[slot[0]]:
            if day in seen:
                continue
            seen.add(day)
            current = holder.get(day)
            if current is None or augment(current, seen):
                holder[day] = slot
                return True
        return False

    for requester, open_days in over:
        for i in range(min(cap, len(open_days))):
            augment((requester, i), set())
    return len(free) + len(holder)


def reliability(s: float, f: float, params: TrustParams = DEFAULT_PARAMS) -> float:
    """R in [0, 1] from effective successes and failures, Beta(2, 2) prior."""
    return (s + params.prior_successes) / (s + f + params.prior_successes + params.prior_failures)


def speed(n: float, p50_ms: float | None, params: TrustParams = DEFAULT_PARAMS) -> float:
    """Sp in [0, 1] from the weight n of measured successes and their weighted median latency."""
    fast = 0.0 if p50_ms is None else float(2.0 ** (-p50_ms / params.reference_latency_ms))
    return (n * fast + params.speed_prior_weight * params.speed_prior) / (n + params.speed_prior_weight)


def quality(votes: Iterable[tuple[float, float]], params: TrustParams = DEFAULT_PARAMS) -> float:
    """Q in [0, 1] from one (weight v_u, mean q_u) vote per requester."""
    cast = list(votes)
    prior = params.quality_prior_weight * params.quality_prior
    return (prior + math.fsum(v * q for v, q in cast)) / (
        params.quality_prior_weight + math.fsum(v for v, _ in cast)
    )


def tenure(active_days: int, params: TrustParams = DEFAULT_PARAMS) -> float:
    """Te in [0, 1) from the number of credited active days."""
    return 1.0 - math.exp(-active_days / params.tenure_scale_days)


def blend(r: float, sp: float, q: float, te: float, params: TrustParams = DEFAULT_PARAMS) -> float:
    """The weighted sum of four components in [0, 1], as a 0-100 score."""
    total = (
        params.weight_reliability * r
        + params.weight_speed * sp
        + params.weight_quality * q
        + params.weight_tenure * te
    )
    return min(100.0, max(0.0, 100.0 * total))


def wilson_lower_bound(successes: float, trials: float, z: float = 1.96) -> float:
    """The Wilson score interval's lower bound for a success rate (0 with no trials)."""
    if trials <= 0:
        return 0.0
    p = successes / trials
    z2 = z * z
    centre = p + z2 / (2 * trials)
    spread = z * math.sqrt(max(0.0, p * (1 - p) / trials + z2 / (4 * trials * trials)))
    return max(0.0, (centre - spread) / (1 + z2 / trials))


def compute(
    evidence: Iterable[TaskEvidence], ratings: Iterable[Rating], now: datetime, params: TrustParams
) -> RawScore:
    """The unrounded score (see the module docstring for the formula)."""
    cap = params.per_requester_cap
    eligible = [
        (e, _age_days(e.at, now)) for e in evidence if e.outcome is not Outcome.NEUTRAL and not e.self_dealing
    ]
    eligible = [(e, age) for e, age in eligible if age <= params.window_days]

    successes: dict[str, list[float]] = defaultdict(list)
    failures: dict[str, list[float]] = defaultdict(list)
    measured: dict[str, list[tuple[float, float]]] = defaultdict(list)
    active: dict[str, set[date]] = defaultdict(set)
    for e, age in eligible:
        weight = _decay(age, params) * e.credit_weight
        if e.outcome is Outcome.SUCCESS:
            successes[e.requester].append(weight)
            active[e.requester].add(e.at.astimezone(UTC).date())
            if e.latency_ms is not None:
                measured[e.requester].append((e.latency_ms, weight))
        else:
            failures[e.requester].append(weight)

    requesters = set(successes) | set(failures)
    capped = [_capped(math.fsum(successes[u]), math.fsum(failures[u]), cap) for u in requesters]
    s = math.fsum(c[0] for c in capped)
    f = math.fsum(c[1] for c in capped)
    reliability_ = reliability(s, f, params)

    latencies: list[tuple[float, float]] = []
    for items in measured.values():
        total = math.fsum(w for _, w in items)
        scale = 1.0 if total <= cap else cap / total
        latencies.extend((latency, w * scale) for latency, w in items)
    n = math.fsum(w for _, w in latencies)
    p50 = _weighted_median(latencies)
    speed_ = speed(n, p50, params)

    by_rater: dict[str, list[tuple[float, Rating]]] = defaultdict(list)
    for r in ratings:
        age = _age_days(r.at, now)
        if not r.self_dealing and age <= params.window_days:
            by_rater[r.requester].append((_decay(age, params), r))
    votes: list[tuple[float, float]] = []  # (v_u, q_u)
    for rated in by_rater.values():
        weight = math.fsum(w for w, _ in rated)
        mean = math.fsum(w * (r.rating - 1) / 4 for w, r in rated) / weight
        vote = min(1.0, weight) * max(r.credibility for _, r in rated)
        if vote > 0:
            votes.append((vote, mean))
    quality_ = quality(votes, params)
    days = _max_credited_days(active, max(1, int(cap)))
    tenure_ = tenure(days, params)
    wilson = wilson_lower_bound(s, s + f, params.wilson_z)
    return RawScore(
        reliability=reliability_,
        speed=speed_,
        quality=quality_,
        tenure=tenure_,
        wilson=wilson,
        trust=blend(reliability_, speed_, quality_, tenure_, params),
        rank=blend(wilson, speed_, quality_, tenure_, params),
        s=s,
        f=f,
        successes=sum(len(v) for v in successes.values()),
        failures=sum(len(v) for v in failures.values()),
        distinct_requesters=len(requesters),
        p50_latency_ms=p50,
        rating_votes=len(votes),
        active_days=days,
    )


def score(
    evidence: Iterable[TaskEvidence],
    ratings: Iterable[Rating],
    now: datetime,
    params: TrustParams = DEFAULT_PARAMS,
) -> TrustScore:
    """An agent's trust score at ``now`` from its task evidence and ratings (trusted as given: the
    service checks who may rate; this function drops self-dealing, neutral and out-of-window events)."""
    raw = compute(evidence, ratings, now, params)
    trust_score = round(raw.trust, 2)
    return TrustScore(
        trust_score=trust_score,
        components=Components(
            reliability=round(100 * raw.reliability, 2),
            speed=round(100 * raw.speed, 2),
            quality=round(100 * raw.quality, 2),
            tenure=round(100 * raw.tenure, 2),
        ),
        evidence=EvidenceSummary(
            n_eff=round(raw.s + raw.f, 2),
            successes=raw.successes,
            failures=raw.failures,
            distinct_requesters=raw.distinct_requesters,
            p50_latency_ms=raw.p50_latency_ms,
            rating_votes=raw.rating_votes,
            active_days=raw.active_days,
        ),
        params=params,
        badge=badge_for(trust_score),
        rank_key=round(raw.rank, 2),
        computed_at=now,
    )
