"""SqlTrustStore and SqlRaterStandings: trust evidence, ratings and scores in SQL, and what a rater's
credibility rests on (their paid spend in the ledger, their account's age)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import Float, Integer, String, Text, func, literal, null, select, union_all, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from a2a_gateway.errors import Unavailable
from a2a_gateway.storage.tables import (
    agents,
    ledger_holds,
    trust_evidence,
    trust_ratings,
    trust_scores,
    users,
)
from a2a_gateway.storage.timestamps import from_micros, micros
from a2a_gateway.trust.models import Outcome, RaterStanding, Rating, TaskEvidence, TrustEvent, TrustScore

log = logging.getLogger(__name__)
E = trust_evidence.c
R = trust_ratings.c


def _at(value: int) -> datetime:
    stamp = from_micros(value)
    assert stamp is not None
    return stamp


def _evidence(r: Row[Any]) -> TaskEvidence:
    return TaskEvidence(
        agent_id=r.agent_id,
        task_id=r.task_id,
        requester=r.requester,
        agent_owner=r.agent_owner,
        outcome=Outcome(r.outcome),
        at=_at(r.at_us),
        latency_ms=r.latency_ms,
        credit_weight=r.credit_weight,
    )


def _rating(r: Row[Any]) -> Rating:
    return Rating(
        agent_id=r.agent_id,
        task_id=r.task_id,
        requester=r.requester,
        agent_owner=r.agent_owner,
        rating=r.rating,
        comment=r.comment,
        at=_at(r.at_us),
        credibility=r.credibility,
    )


def _event(r: Row[Any]) -> TrustEvent:
    """One row of the events union as the event the domain would make of the evidence or rating."""
    if r.kind == "rating":
        return TrustEvent.of_rating(
            Rating(
                agent_id=r.agent_id,
                task_id=r.task_id,
                requester=r.requester,
                agent_owner=r.agent_owner,
                rating=r.rating,
                comment=r.comment,
                at=_at(r.at_us),
                credibility=0.0,  # not part of an event
            )
        )
    return TrustEvent.of_evidence(
        TaskEvidence(
            agent_id=r.agent_id,
            task_id=r.task_id,
            requester=r.requester,
            agent_owner=r.agent_owner,
            outcome=Outcome(r.outcome),
            at=_at(r.at_us),
            latency_ms=r.latency_ms,
        )
    )


class _GroupedEvidence:
    """Evidence inserts share transactions: while one batch is being written, the evidence of the calls
    that end meanwhile waits and goes in the next one, with one multi-row INSERT.

    Measured: one transaction per routed call's evidence made every workflow step wait behind the task
    writer for SQLite's write lock (docs/performance.md, Workflows). The first caller writes the batches
    until none is left; every caller learns whether its own row was new.
    """

    def __init__(self, engine: AsyncEngine, insert: Any) -> None:
        self._engine = engine
        self._insert = insert
        self._pending: list[tuple[dict[str, Any], asyncio.Future[bool]]] = []
        self._writing = False

    async def add(self, row: dict[str, Any]) -> bool:
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((row, waiter))
        if not self._writing:
            self._writing = True
            try:
                await asyncio.sleep(0)  # the calls ending in this loop turn join the first batch
                while self._pending:
                    batch, self._pending = self._pending, []
                    await self._write(batch)
            finally:
                self._writing = False
                for _, left in self._pending:  # the writer was cancelled: nobody else will write these
                    if not left.done():
                        left.set_exception(Unavailable("The trust store is unavailable"))
                self._pending = []
        return await waiter

    async def _write(self, batch: list[tuple[dict[str, Any], asyncio.Future[bool]]]) -> None:
        first: dict[str, dict[str, Any]] = {}
        for row, _ in batch:
            first.setdefault(row["task_id"], row)  # a task reported twice in one batch: the first counts
        rows = [first[task_id] for task_id in sorted(first)]  # key order: no lock cycle between processes
        statement = (
            self._insert(trust_evidence)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["task_id"])
            .returning(E.task_id)
        )
        try:
            async with self._engine.begin() as conn:
                new = {r[0] for r in await conn.execute(statement)}
        except BaseException as exc:
            if isinstance(exc, Exception):
                log.exception("storing trust evidence failed", extra={"tasks": len(rows)})
            for _, waiter in batch:  # a failed batch fails its own callers, not the next batch's
                if not waiter.done():
                    waiter.set_exception(Unavailable("The trust store is unavailable"))
            if not isinstance(exc, Exception):
                raise
            return
        for row, waiter in batch:
            if not waiter.done():
                counted = row["task_id"] in new and first[row["task_id"]] is row
                waiter.set_result(counted)


class SqlTrustStore:
    """Implements trust.ports.TrustStore; the primary keys on task id make each task count once."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._insert: Any = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        self._evidence = _GroupedEvidence(engine, self._insert)

    async def add_evidence(self, evidence: TaskEvidence) -> bool:
        """Insert a task's evidence (with the evidence of other calls ending now, in one transaction);
        False when the task already has some."""
        row = {
            "task_id": evidence.task_id,
            "agent_id": evidence.agent_id,
            "requester": evidence.requester,
            "agent_owner": evidence.agent_owner,
            "outcome": evidence.outcome.value,
            "at_us": micros(evidence.at),
            "latency_ms": evidence.latency_ms,
            "credit_weight": evidence.credit_weight,
        }
        return await self._evidence.add(row)

    async def add_rating(self, rating: Rating) -> bool:
        """Insert a task's rating; False when the task is already rated."""
        row = {
            "task_id": rating.task_id,
            "agent_id": rating.agent_id,
            "requester": rating.requester,
            "agent_owner": rating.agent_owner,
            "rating": rating.rating,
            "comment": rating.comment,
            "at_us": micros(rating.at),
            "credibility": rating.credibility,
        }
        return await self._insert_once(trust_ratings, row)

    async def _insert_once(self, table: Any, row: dict[str, Any]) -> bool:
        # ON CONFLICT DO NOTHING: a second writer of the same task is told so by the row count, and a
        # concurrent one waits on the first's key rather than failing its transaction.
        statement = self._insert(table).values(**row).on_conflict_do_nothing(index_elements=["task_id"])
        async with self._engine.begin() as conn:
            result = await conn.execute(statement)
        return bool(result.rowcount)

    async def evidence_since(self, agent_id: str, since: datetime) -> list[TaskEvidence]:
        """An agent's evidence with ``at >= since``."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(trust_evidence).where(E.agent_id == agent_id, E.at_us >= micros(since))
            )
            return [_evidence(r) for r in rows]

    async def ratings_since(self, agent_id: str, since: datetime) -> list[Rating]:
        """An agent's ratings with ``at >= since``."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(trust_ratings).where(R.agent_id == agent_id, R.at_us >= micros(since))
            )
            return [_rating(r) for r in rows]

    async def events(self, agent_id: str, limit: int, offset: int) -> list[TrustEvent]:
        """Evidence and ratings as one list, newest first, then by kind and task id (the event id's
        order: ``task:`` after ``rating:``), paged in SQL."""
        tasks_part = select(
            literal("task", String).label("kind"),
            E.task_id,
            E.agent_id,
            E.requester,
            E.agent_owner,
            E.at_us,
            E.outcome,
            E.latency_ms,
            null().cast(Integer).label("rating"),
            null().cast(Text).label("comment"),
        ).where(E.agent_id == agent_id)
        ratings_part = select(
            literal("rating", String).label("kind"),
            R.task_id,
            R.agent_id,
            R.requester,
            R.agent_owner,
            R.at_us,
            null().cast(String).label("outcome"),
            null().cast(Float).label("latency_ms"),
            R.rating,
            R.comment,
        ).where(R.agent_id == agent_id)
        both = union_all(tasks_part, ratings_part).subquery()
        query = (
            select(both)
            .order_by(both.c.at_us.desc(), both.c.kind.desc(), both.c.task_id.desc())
            .limit(limit)
            .offset(offset)
        )
        async with self._engine.connect() as conn:
            return [_event(r) for r in await conn.execute(query)]

    async def save_score(self, agent_id: str, score: TrustScore) -> None:
        """Keep the score unless a newer one is already stored, and mirror it on the agent's row.

        Two refreshes of one agent can finish in either order; the one computed later saw every event the
        other saw, so the stored score only moves forward in ``computed_at``.
        """
        computed = micros(score.computed_at)
        upsert = self._insert(trust_scores).values(
            agent_id=agent_id, trust_score=score.trust_score, rank_key=score.rank_key, computed_us=computed
        )
        upsert = upsert.on_conflict_do_update(
            index_elements=["agent_id"],
            set_={
                "trust_score": upsert.excluded.trust_score,
                "rank_key": upsert.excluded.rank_key,
                "computed_us": upsert.excluded.computed_us,
            },
            where=trust_scores.c.computed_us <= upsert.excluded.computed_us,
        )
        async with self._engine.begin() as conn:
            if (await conn.execute(upsert)).rowcount:
                await conn.execute(
                    update(agents).where(agents.c.id == agent_id).values(trust_score=score.trust_score)
                )


class SqlRaterStandings:
    """Implements trust.ports.RaterStandings over the users table and the credit ledger's holds."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def standing(self, user_id: str) -> RaterStanding:
        """Credits of the user's own wallet spent on captured holds (never the promotional part), and
        when their account was created; an unknown user has spent nothing and has no account date."""
        spent = select(func.coalesce(func.sum(ledger_holds.c.purchased), 0)).where(
            ledger_holds.c.payer_user_id == user_id, ledger_holds.c.state == "captured"
        )
        async with self._engine.connect() as conn:
            created = (
                await conn.execute(select(users.c.created_us).where(users.c.id == user_id))
            ).scalar_one_or_none()
            paid = (await conn.execute(spent)).scalar_one()
        return RaterStanding(
            paid_spend_credits=int(paid),
            account_created_at=None if created is None else _at(created),
        )
