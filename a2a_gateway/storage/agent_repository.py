"""SqlAgentRepository: registered agents, their tag index, and discovery in SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from a2a_gateway.registry.health import HealthChange
from a2a_gateway.registry.models import Agent, DiscoveryPage, DiscoveryQuery, SkillSpec
from a2a_gateway.storage.tables import agent_tags, agents
from a2a_gateway.storage.timestamps import from_micros, micros


def _row(agent: Agent) -> dict[str, Any]:
    skills = [
        {
            "id": s.id,
            "name": s.name,
            "description": s.description,
            "tags": s.tags,
            "inputSchema": s.input_schema,
            "outputSchema": s.output_schema,
            **({"price": s.price} if s.price is not None else {}),
        }
        for s in agent.skills
    ]
    search = " ".join([agent.name, agent.description, *(s.name for s in agent.skills)]).lower()
    return {
        "id": agent.id,
        "owner_id": agent.owner_id,
        "name": agent.name,
        "description": agent.description,
        "endpoint": agent.endpoint,
        "skills": orjson.dumps(skills).decode(),
        "tags": orjson.dumps(agent.tags).decode(),
        "category": agent.category,
        "metadata": orjson.dumps(agent.metadata).decode(),
        "price_per_task": agent.price_per_task,
        "protocol_version": agent.protocol_version,
        "reported_status": agent.reported_status,
        "trust_score": agent.trust_score,
        "search_text": search,
        "last_heartbeat_us": micros(agent.last_heartbeat) if agent.last_heartbeat else None,
        "created_us": micros(agent.created_at),
        "updated_us": micros(agent.updated_at),
        "card_url": agent.card_url,
        "streaming": agent.streaming,
    }


def _agent(r: Row[Any]) -> Agent:
    skills = [
        SkillSpec(
            id=s["id"],
            name=s["name"],
            description=s.get("description", ""),
            tags=s.get("tags", []),
            input_schema=s.get("inputSchema", {}),
            output_schema=s.get("outputSchema", {}),
            price=s.get("price"),
        )
        for s in orjson.loads(r.skills)
    ]
    created, updated = from_micros(r.created_us), from_micros(r.updated_us)
    assert created is not None and updated is not None
    return Agent(
        id=r.id,
        owner_id=r.owner_id,
        name=r.name,
        description=r.description,
        endpoint=r.endpoint,
        skills=skills,
        tags=orjson.loads(r.tags),
        category=r.category,
        metadata=orjson.loads(r.metadata),
        price_per_task=r.price_per_task,
        protocol_version=r.protocol_version,
        created_at=created,
        updated_at=updated,
        reported_status=r.reported_status,
        last_heartbeat=from_micros(r.last_heartbeat_us),
        trust_score=r.trust_score,
        card_url=r.card_url,
        streaming=bool(r.streaming),
        call_failing=bool(r.call_failing),
        latency_ms=r.latency_ms,
        probed_at=from_micros(r.probed_us),
        probe_ok=None if r.probe_ok is None else bool(r.probe_ok),
    )


class SqlAgentRepository:
    """Implements registry.ports.AgentRepository."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, agent: Agent) -> None:
        """Insert an agent and its tags."""
        async with self._engine.begin() as conn:
            await conn.execute(agents.insert().values(**_row(agent)))
            await self._write_tags(conn, agent)

    async def save(self, agent: Agent) -> None:
        """Replace an agent's row and tags in one transaction; the trust score stays as stored (only the
        trust service writes it, and an edit read before its latest score must not put an older one back)."""
        row = _row(agent)
        del row["trust_score"]
        async with self._engine.begin() as conn:
            await conn.execute(agents.update().where(agents.c.id == agent.id).values(**row))
            await conn.execute(delete(agent_tags).where(agent_tags.c.agent_id == agent.id))
            await self._write_tags(conn, agent)

    async def save_heartbeat(self, agent: Agent) -> None:
        """Write only what a heartbeat changes (status, metadata, time), so an edit of the agent made
        while the beat was handled (a new price, say) is not put back to what the beat had read."""
        async with self._engine.begin() as conn:
            await conn.execute(
                agents.update()
                .where(agents.c.id == agent.id)
                .values(
                    reported_status=agent.reported_status,
                    metadata=orjson.dumps(agent.metadata).decode(),
                    last_heartbeat_us=micros(agent.last_heartbeat) if agent.last_heartbeat else None,
                )
            )

    async def set_trust(self, agent_id: str, score: float) -> None:
        """Write an agent's trust score (server-owned; the trust store keeps it current)."""
        async with self._engine.begin() as conn:
            await conn.execute(agents.update().where(agents.c.id == agent_id).values(trust_score=score))

    async def _write_tags(self, conn: AsyncConnection, agent: Agent) -> None:
        tags = sorted({t[:50] for t in agent.all_tags()})
        if tags:
            await conn.execute(agent_tags.insert(), [{"agent_id": agent.id, "tag": t} for t in tags])

    async def get(self, agent_id: str) -> Agent | None:
        """One agent."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(agents).where(agents.c.id == agent_id))).first()
        return None if row is None else _agent(row)

    async def delete(self, agent_id: str) -> bool:
        """Remove an agent (its tags go with it)."""
        async with self._engine.begin() as conn:
            await conn.execute(delete(agent_tags).where(agent_tags.c.agent_id == agent_id))
            result = await conn.execute(delete(agents).where(agents.c.id == agent_id))
        return bool(result.rowcount)

    async def for_owner(self, owner_id: str) -> list[Agent]:
        """An owner's agents, newest first."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(agents).where(agents.c.owner_id == owner_id).order_by(agents.c.created_us.desc())
            )
            return [_agent(r) for r in rows]

    async def discover(
        self, query: DiscoveryQuery, now: datetime, offline_after_seconds: float
    ) -> DiscoveryPage:
        """Filter in SQL (tags via the tag index, all must match), rank by trust, then recency."""
        filters: list[Any] = []
        tags = sorted({t.strip().lower() for t in query.skill_tags if t.strip()})
        if tags:
            matching = (
                select(agent_tags.c.agent_id)
                .where(agent_tags.c.tag.in_(tags))
                .group_by(agent_tags.c.agent_id)
                .having(func.count(agent_tags.c.tag) == len(tags))
            )
            filters.append(agents.c.id.in_(matching))
        if query.category:
            filters.append(agents.c.category == query.category)
        if query.min_trust_score is not None:
            filters.append(agents.c.trust_score >= query.min_trust_score)
        if query.text:
            # LIKE wildcards in the user's text are dropped rather than escaped: they mean nothing here.
            words = "".join(c for c in query.text.lower() if c not in "%_\\")
            pattern = f"%{words}%"
            filters.append(agents.c.search_text.like(pattern))
        cutoff = micros(now) - int(offline_after_seconds * 1_000_000)
        fresh = and_(agents.c.last_heartbeat_us.is_not(None), agents.c.last_heartbeat_us >= cutoff)
        # The same rule as Agent.status: offline, else degraded (said so, or failing calls), else online.
        if query.status == "offline":
            filters.append(or_(~fresh, agents.c.reported_status == "offline"))
        elif query.status == "online":
            filters.append(and_(fresh, agents.c.reported_status == "online", ~agents.c.call_failing))
        elif query.status == "degraded":
            said = agents.c.reported_status == "degraded"
            failing = and_(agents.c.call_failing, agents.c.reported_status != "offline")
            filters.append(and_(fresh, or_(said, failing)))
        async with self._engine.connect() as conn:
            total = (
                await conn.execute(select(func.count()).select_from(agents).where(*filters))
            ).scalar_one()
            rows = await conn.execute(
                select(agents)
                .where(*filters)
                .order_by(
                    agents.c.trust_score.desc(),
                    func.coalesce(agents.c.last_heartbeat_us, 0).desc(),
                    agents.c.created_us.desc(),
                    agents.c.id,
                )
                .limit(query.limit)
                .offset(query.offset)
            )
            return DiscoveryPage(agents=[_agent(r) for r in rows], total=int(total))

    async def all(self) -> list[Agent]:
        """Every agent, oldest first."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(select(agents).order_by(agents.c.created_us, agents.c.id))
            return [_agent(r) for r in rows]

    async def set_health(self, agent_id: str, change: HealthChange) -> None:
        """Update only the health columns, so a concurrent edit of the agent is not overwritten."""
        values: dict[str, Any] = {"call_failing": change.failing}
        if change.latency_ms is not None:
            values["latency_ms"] = change.latency_ms
        async with self._engine.begin() as conn:
            await conn.execute(update(agents).where(agents.c.id == agent_id).values(**values))

    async def set_probe(self, agent_id: str, ok: bool, at: datetime) -> None:
        """Store the latest health-check result."""
        async with self._engine.begin() as conn:
            await conn.execute(
                update(agents).where(agents.c.id == agent_id).values(probe_ok=ok, probed_us=micros(at))
            )
