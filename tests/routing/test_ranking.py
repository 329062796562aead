"""The ranking policy on its own: which agent offers a skill, and which of them serves the next call."""

from __future__ import annotations

from datetime import UTC, datetime

from a2a_gateway.registry.models import Agent, SkillSpec
from a2a_gateway.routing import ranking

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def agent(
    agent_id: str, *, trust: float = 0.0, latency: float | None = None, skills: tuple[str, ...] = ("s",)
) -> Agent:
    return Agent(
        id=agent_id,
        owner_id="o",
        name=agent_id,
        description="",
        endpoint=f"https://{agent_id}.example",
        skills=[SkillSpec(id=s, name=s) for s in skills],
        tags=[],
        category=None,
        metadata={},
        price_per_task=0,
        protocol_version="1.0",
        created_at=T0,
        updated_at=T0,
        trust_score=trust,
        latency_ms=latency,
    )


def test_offers_matches_a_skill_by_id_and_any_agent_when_none_is_named() -> None:
    both = agent("a", skills=("ocr", "translate"))
    assert ranking.offers(both, "ocr") and ranking.offers(both, "translate")
    assert not ranking.offers(both, "OCR") and not ranking.offers(both, "summarize")
    assert ranking.offers(both, None)


def test_no_candidates_no_choice() -> None:
    assert ranking.best([]) is None


def test_trust_comes_first_whatever_the_latency() -> None:
    slow_trusted, fast = agent("slow", trust=80, latency=900.0), agent("fast", trust=79.5, latency=1.0)
    assert ranking.best([fast, slow_trusted]) is slow_trusted


def test_among_equally_trusted_the_fastest_serves_and_unmeasured_ones_come_last() -> None:
    unmeasured, slow = agent("new", trust=50), agent("slow", trust=50, latency=300.0)
    quick = agent("quick", trust=50, latency=40.0)
    assert ranking.best([unmeasured, slow, quick]) is quick
    assert ranking.best([unmeasured, slow]) is slow


def test_the_given_order_decides_last() -> None:
    # Discovery hands candidates over freshest heartbeat first; equals keep that order.
    first, second = agent("first", trust=10, latency=5.0), agent("second", trust=10, latency=5.0)
    assert ranking.best([first, second]) is first and ranking.best([second, first]) is second
    never_measured = [agent("x"), agent("y")]
    assert ranking.best(never_measured) is never_measured[0]
