"""The SQL trust store and rater standings on SQLite and (when configured) PostgreSQL: each task counts
once even when reported concurrently, events page newest first, the stored score only moves forward in
time and is what discovery filters on, and a rater's spend counts only wallet credits of captured holds."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import event, insert, inspect, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from a2a_gateway.auth.models import User
from a2a_gateway.registry.models import Agent, DiscoveryQuery, SkillSpec
from a2a_gateway.storage import engine as db
from a2a_gateway.storage.agent_repository import SqlAgentRepository
from a2a_gateway.storage.identity_repository import SqlUserRepository
from a2a_gateway.storage.tables import ledger_holds, trust_evidence, trust_ratings, trust_scores
from a2a_gateway.storage.timestamps import micros
from a2a_gateway.storage.trust_repository import SqlRaterStandings, SqlTrustStore
from a2a_gateway.trust.models import EventType, Outcome, Rating, TaskEvidence, TrustScore
from a2a_gateway.trust.score import score
from a2a_gateway.trust.service import TrustService
from tests.factories import Clock
from tests.trust.fakes import FakeRaterStandings

AGENT, OTHER_AGENT, OWNER = "agent-1", "agent-2", "owner"


@dataclass
class Env:
    engine: AsyncEngine
    store: SqlTrustStore
    agents: SqlAgentRepository
    clock: Clock


@pytest.fixture
async def env(database_url: str) -> AsyncIterator[Env]:
    engine = db.create_engine(database_url)
    await db.upgrade(engine)
    clock = Clock()
    agents = SqlAgentRepository(engine)
    for agent_id in (AGENT, OTHER_AGENT):
        await agents.add(
            Agent(
                id=agent_id, owner_id=OWNER, name=agent_id, description="", endpoint="https://a.example",
                skills=[SkillSpec(id="s", name="S")], tags=[], category=None, metadata={}, price_per_task=0,
                protocol_version="1.0", created_at=clock.now, updated_at=clock.now, last_heartbeat=clock.now,
            )
        )  # fmt: skip
    yield Env(engine, SqlTrustStore(engine), agents, clock)
    await engine.dispose()


def evidence(env: Env, task_id: str, **changes: object) -> TaskEvidence:
    base = TaskEvidence(
        agent_id=AGENT,
        task_id=task_id,
        requester="alice",
        agent_owner=OWNER,
        outcome=Outcome.SUCCESS,
        at=env.clock.now,
        latency_ms=1234.5,
        credit_weight=0.25,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def rating(env: Env, task_id: str, **changes: object) -> Rating:
    base = Rating(
        agent_id=AGENT,
        task_id=task_id,
        requester="alice",
        agent_owner=OWNER,
        rating=4,
        comment="fine",
        at=env.clock.now,
        credibility=0.5,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


TRUST_TABLES = (trust_evidence, trust_ratings, trust_scores)


async def test_the_schema_has_the_tables_as_declared(env: Env) -> None:
    def columns(sync: Connection) -> dict[str, set[str]]:
        found = inspect(sync)
        return {t.name: {c["name"] for c in found.get_columns(t.name)} for t in TRUST_TABLES}

    async with env.engine.connect() as conn:
        migrated = await conn.run_sync(columns)
    assert migrated == {t.name: set(t.c.keys()) for t in TRUST_TABLES}


async def test_evidence_round_trips_and_counts_once_per_task(env: Env) -> None:
    first = evidence(env, "t1")
    assert await env.store.add_evidence(first) is True
    assert await env.store.add_evidence(evidence(env, "t1", outcome=Outcome.AGENT_FAILURE)) is False
    assert await env.store.evidence_since(AGENT, env.clock.now) == [first]


async def test_concurrent_reports_of_one_task_store_one(env: Env) -> None:
    reports = [evidence(env, "t1", latency_ms=float(n)) for n in range(8)]
    added = await asyncio.gather(*(env.store.add_evidence(e) for e in reports))
    assert sorted(added) == [False] * 7 + [True]
    stored = await env.store.evidence_since(AGENT, env.clock.now - timedelta(days=1))
    assert len(stored) == 1 and stored[0] == reports[added.index(True)]

    ratings = [rating(env, "t1", rating=n) for n in range(1, 6)]
    rated = await asyncio.gather(*(env.store.add_rating(r) for r in ratings))
    assert sorted(rated) == [False] * 4 + [True]
    assert await env.store.ratings_since(AGENT, env.clock.now) == [ratings[rated.index(True)]]


async def test_evidence_of_calls_ending_together_shares_transactions(env: Env) -> None:
    """Each call's evidence is its own answer, but calls that end together are written together."""
    begins: list[object] = []

    def began(conn: object) -> None:
        begins.append(conn)

    event.listen(env.engine.sync_engine, "begin", began)
    try:
        reports = [evidence(env, f"t{n}") for n in range(20)] + [evidence(env, "t3", latency_ms=9.0)]
        added = await asyncio.gather(*(env.store.add_evidence(e) for e in reports))
    finally:
        event.remove(env.engine.sync_engine, "begin", began)
    assert added == [True] * 20 + [False]  # the second report of t3 counts nothing
    assert 1 <= len(begins) <= 2  # not one transaction per call
    stored = await env.store.evidence_since(AGENT, env.clock.now - timedelta(days=1))
    assert sorted(e.task_id for e in stored) == sorted(f"t{n}" for n in range(20))
    assert next(e for e in stored if e.task_id == "t3") == reports[3]


async def test_reads_are_per_agent_and_from_an_instant(env: Env) -> None:
    old = evidence(env, "old", at=env.clock.now - timedelta(days=200))
    mine = evidence(env, "t1", latency_ms=None, outcome=Outcome.NEUTRAL, credit_weight=1.0)
    theirs = evidence(env, "t2", agent_id=OTHER_AGENT)
    for e in (old, mine, theirs):
        assert await env.store.add_evidence(e)
    for r in (
        rating(env, "old", at=old.at),
        rating(env, "t1", comment=""),
        rating(env, "t2", agent_id=OTHER_AGENT),
    ):
        assert await env.store.add_rating(r)
    since = env.clock.now - timedelta(days=180)
    assert await env.store.evidence_since(AGENT, since) == [mine]
    assert [r.task_id for r in await env.store.ratings_since(AGENT, since)] == ["t1"]
    assert (await env.store.ratings_since(AGENT, since))[0].comment == ""


async def test_events_page_newest_first_with_ratings_and_tasks_together(env: Env) -> None:
    t0 = env.clock.now
    await env.store.add_evidence(evidence(env, "a", at=t0))
    await env.store.add_evidence(
        evidence(env, "b", at=t0 + timedelta(seconds=1), outcome=Outcome.AGENT_FAILURE, latency_ms=None)
    )
    await env.store.add_evidence(evidence(env, "c", at=t0 + timedelta(seconds=1), requester=OWNER))
    await env.store.add_rating(rating(env, "a", at=t0 + timedelta(seconds=1)))
    await env.store.add_rating(rating(env, "z", at=t0 + timedelta(seconds=2), rating=1, comment="bad"))
    await env.store.add_evidence(evidence(env, "x", agent_id=OTHER_AGENT, at=t0 + timedelta(seconds=9)))

    events = await env.store.events(AGENT, 10, 0)
    # Newest first; at one instant the event ids' order, descending (task:c, task:b, rating:a).
    assert [e.id for e in events] == ["rating:z", "task:c", "task:b", "rating:a", "task:a"]
    by_id = {e.id: e for e in events}
    assert by_id["rating:z"].type is EventType.RATING_RECEIVED and by_id["rating:z"].rating == 1
    assert by_id["rating:z"].comment == "bad" and by_id["rating:z"].counted
    assert by_id["task:b"].type is EventType.TASK_FAILED and by_id["task:b"].latency_ms is None
    assert by_id["task:c"].counted is False  # the owner's own call
    assert by_id["task:a"].latency_ms == 1234.5 and by_id["task:a"].at == t0
    assert [e.id for e in await env.store.events(AGENT, 2, 1)] == ["task:c", "task:b"]
    assert await env.store.events(AGENT, 5, 5) == []
    assert await env.store.events("nobody", 5, 0) == []


def scored(env: Env, value: float, minutes: int) -> TrustScore:
    at = env.clock.now + timedelta(minutes=minutes)
    return dataclasses.replace(score([], [], at), trust_score=value, rank_key=value - 1, computed_at=at)


async def test_the_score_lands_on_the_agent_and_only_moves_forward(env: Env) -> None:
    await env.store.save_score(AGENT, scored(env, 61.5, minutes=2))
    await env.store.save_score(AGENT, scored(env, 20.0, minutes=1))  # computed earlier, saved later
    stored = await env.agents.get(AGENT)
    assert stored is not None and stored.trust_score == 61.5
    async with env.engine.connect() as conn:
        row = (await conn.execute(select(trust_scores))).one()
    assert (row.agent_id, row.trust_score, row.rank_key) == (AGENT, 61.5, 60.5)
    await env.store.save_score(AGENT, scored(env, 55.0, minutes=3))
    stored = await env.agents.get(AGENT)
    assert stored is not None and stored.trust_score == 55.0

    page = await env.agents.discover(DiscoveryQuery(min_trust_score=50), env.clock.now, 120)
    assert [a.id for a in page.agents] == [AGENT]
    await env.store.save_score("unknown-agent", scored(env, 99.0, minutes=1))  # no agent row: no error


async def test_the_service_over_sql_records_rates_and_scores(env: Env) -> None:
    service = TrustService(env.store, FakeRaterStandings(), clock=env.clock)
    before = await service.get(AGENT)
    after = await service.record_task(evidence(env, "t1", credit_weight=1.0))
    assert before.trust_score == 42.5 and after.trust_score > before.trust_score
    stored = await env.agents.get(AGENT)
    assert stored is not None and stored.trust_score == after.trust_score
    assert [e.id for e in (await service.get(AGENT)).recent_events] == ["task:t1"]


async def test_rater_standing_counts_wallet_credits_of_captured_holds_only(env: Env) -> None:
    created = env.clock.now - timedelta(days=3)
    users = SqlUserRepository(env.engine)
    assert await users.add(User(id="alice", email="a@example.com", password_hash="x", created_at=created))

    def hold(task: str, payer: str, promo: int, purchased: int, state: str) -> dict[str, object]:
        return {
            "task_id": task, "payer_user_id": payer, "payee_user_id": OWNER, "price": promo + purchased,
            "fee_bps": 500, "promo": promo, "purchased": purchased, "state": state,
            "created_us": micros(created), "expires_us": None, "settled_us": None,
        }  # fmt: skip

    async with env.engine.begin() as conn:
        await conn.execute(
            insert(ledger_holds),
            [
                hold("h1", "alice", 30, 70, "captured"),  # 70 of her own credits spent
                hold("h2", "alice", 100, 0, "captured"),  # paid wholly with a promotional grant
                hold("h3", "alice", 0, 50, "released"),  # given back
                hold("h4", "alice", 0, 40, "pending"),  # not spent (yet)
                hold("h5", "bob", 0, 500, "captured"),
            ],
        )
    standings = SqlRaterStandings(env.engine)
    alice = await standings.standing("alice")
    assert alice.paid_spend_credits == 70 and alice.account_created_at == created
    nobody = await standings.standing("nobody")
    assert nobody.paid_spend_credits == 0 and nobody.account_created_at is None
