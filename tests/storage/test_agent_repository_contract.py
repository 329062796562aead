"""The agent repository contract (discovery SQL included), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from a2a_gateway.registry.models import Agent, DiscoveryQuery, SkillSpec
from a2a_gateway.storage import engine as db
from a2a_gateway.storage.agent_repository import SqlAgentRepository

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture
async def repo(database_url: str) -> AsyncIterator[SqlAgentRepository]:
    engine = db.create_engine(database_url)
    await db.upgrade(engine)
    yield SqlAgentRepository(engine)
    await engine.dispose()


def agent(
    agent_id: str, *, tags: list[str], trust: float, beat: datetime | None, category: str = "c"
) -> Agent:
    return Agent(
        id=agent_id,
        owner_id="o",
        name=f"Agent {agent_id}",
        description="does things",
        endpoint="https://a.example",
        skills=[SkillSpec(id="s", name=f"Skill {agent_id}", tags=tags)],
        tags=[],
        category=category,
        metadata={},
        price_per_task=0,
        protocol_version="1.0",
        created_at=T0,
        updated_at=T0,
        last_heartbeat=beat,
        trust_score=trust,
    )


async def test_round_trip_update_delete(repo: SqlAgentRepository) -> None:
    original = agent("a1", tags=["x"], trust=1.0, beat=T0)
    await repo.add(original)
    assert await repo.get("a1") == original
    original.skills[0].tags = ["y"]
    original.reported_status = "degraded"
    await repo.save(original)
    assert (await repo.get("a1")) == original
    assert [a.id for a in await repo.for_owner("o")] == ["a1"]
    assert (
        await repo.delete("a1") is True and await repo.get("a1") is None and await repo.delete("a1") is False
    )


async def test_an_edit_read_before_a_trust_update_does_not_put_the_older_score_back(
    repo: SqlAgentRepository,
) -> None:
    await repo.add(agent("t1", tags=[], trust=42.5, beat=T0))
    read_by_an_edit = await repo.get("t1")
    assert read_by_an_edit is not None
    await repo.set_trust("t1", 77.0)  # the trust service, meanwhile
    read_by_an_edit.description = "edited"
    await repo.save(read_by_an_edit)
    stored = await repo.get("t1")
    assert stored is not None and stored.description == "edited" and stored.trust_score == 77.0


async def test_a_heartbeat_read_before_an_edit_does_not_put_the_older_record_back(
    repo: SqlAgentRepository,
) -> None:
    await repo.add(agent("h1", tags=[], trust=10.0, beat=T0))
    read_by_a_beat = await repo.get("h1")
    edited = await repo.get("h1")
    assert read_by_a_beat is not None and edited is not None
    edited.price_per_task, edited.description = 5, "now priced"
    await repo.save(edited)  # the owner's PATCH, meanwhile
    read_by_a_beat.reported_status = "degraded"
    read_by_a_beat.metadata = {"load": 1}
    read_by_a_beat.last_heartbeat = T0 + timedelta(seconds=30)
    await repo.save_heartbeat(read_by_a_beat)
    stored = await repo.get("h1")
    assert stored is not None
    assert (stored.price_per_task, stored.description) == (5, "now priced")
    assert (stored.reported_status, stored.metadata) == ("degraded", {"load": 1})
    assert stored.last_heartbeat == T0 + timedelta(seconds=30)


async def test_discovery_sql(repo: SqlAgentRepository) -> None:
    await repo.add(agent("a", tags=["nlp", "translate"], trust=40, beat=T0))
    await repo.add(agent("b", tags=["nlp"], trust=90, beat=T0 - timedelta(minutes=10)))
    await repo.add(agent("c", tags=["trading"], trust=60, beat=None, category="finance"))

    async def ids(**kwargs: object) -> list[str]:
        page = await repo.discover(DiscoveryQuery(**kwargs), T0, 120)  # type: ignore[arg-type]
        return [a.id for a in page.agents]

    assert await ids() == ["b", "c", "a"]
    assert await ids(skill_tags=["nlp", "translate"]) == ["a"]
    assert await ids(skill_tags=["nlp"]) == ["b", "a"]
    assert await ids(status="online") == ["a"]
    assert await ids(status="offline") == ["b", "c"]
    assert await ids(category="finance") == ["c"]
    assert await ids(min_trust_score=50) == ["b", "c"]
    assert await ids(text="skill c") == ["c"]
    page = await repo.discover(DiscoveryQuery(limit=1, offset=1), T0, 120)
    assert [a.id for a in page.agents] == ["c"] and page.total == 3
