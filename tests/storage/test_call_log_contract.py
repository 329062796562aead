"""Routed-call records and agent health columns, on SQLite and PostgreSQL: records ride in the task
writer's batches, open records are found again, health updates touch only their own columns."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from a2a_gateway.registry.health import HealthChange
from a2a_gateway.registry.models import Agent, DiscoveryQuery, SkillSpec
from a2a_gateway.routing.calls import RoutedCall
from a2a_gateway.storage import engine as db
from a2a_gateway.storage.agent_repository import SqlAgentRepository
from a2a_gateway.storage.call_log import SqlCallLog
from a2a_gateway.storage.task_repository import SqlTaskRepository

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture
async def stores(database_url: str) -> AsyncIterator[dict[str, Any]]:
    engine = db.create_engine(database_url)
    await db.upgrade(engine)
    tasks = SqlTaskRepository(engine)
    yield {"calls": SqlCallLog(engine, tasks.writer), "agents": SqlAgentRepository(engine)}
    await tasks.close()
    await engine.dispose()


async def test_records_are_written_updated_and_found_while_open(stores: dict[str, Any]) -> None:
    calls: SqlCallLog = stores["calls"]
    open_call = RoutedCall(task_id="t1", requester="u", agent_id="a", skill_id="s", started_at=T0)
    calls.record(open_call)
    open_call.upstream_task_id, open_call.upstream_context_id = "up-1", "ctx-1"
    calls.record(open_call)  # the latest state of the object is what lands
    done = RoutedCall(task_id="t2", requester="u", agent_id="a", skill_id=None, started_at=T0)
    done.first_response_ms, done.finished_at, done.outcome = 1.5, T0 + timedelta(seconds=2), "completed"
    calls.record(done)
    got = await calls.get("t1")
    assert got is not None and got.upstream_task_id == "up-1" and got.outcome is None
    assert [c.task_id for c in await calls.unfinished()] == ["t1"]
    finished = await calls.get("t2")
    assert finished is not None and finished.duration_ms == 2000 and finished.first_response_ms == 1.5
    open_call.outcome, open_call.error = "unreachable", "The agent could not be reached"
    calls.record(open_call)
    assert await calls.unfinished() == []
    assert await calls.get("missing") is None


async def test_health_columns_and_degraded_discovery(stores: dict[str, Any]) -> None:
    agents: SqlAgentRepository = stores["agents"]
    agent = Agent(
        id="a1", owner_id="o", name="A", description="", endpoint="https://a.example",
        skills=[SkillSpec(id="s", name="S")], tags=[], category=None, metadata={}, price_per_task=0,
        protocol_version="1.0", created_at=T0, updated_at=T0, last_heartbeat=T0, streaming=False,
    )  # fmt: skip
    await agents.add(agent)
    await agents.set_health("a1", HealthChange(failing=True, latency_ms=12.5))
    await agents.set_probe("a1", False, T0)
    stored = await agents.get("a1")
    assert stored is not None and stored.call_failing and stored.latency_ms == 12.5
    assert stored.probe_ok is False and stored.probed_at == T0 and stored.streaming is False
    # Saving the agent (an owner's edit) leaves the server-owned health alone.
    stored.name = "renamed"
    await agents.save(stored)
    again = await agents.get("a1")
    assert again is not None and again.call_failing and again.name == "renamed"

    async def found(status: str) -> list[str]:
        page = await agents.discover(DiscoveryQuery(status=status), T0, 120)
        return [a.id for a in page.agents]

    assert await found("degraded") == ["a1"] and await found("online") == []
    await agents.set_health("a1", HealthChange(failing=False, latency_ms=None))
    assert await found("online") == ["a1"] and await found("degraded") == []
    healed = await agents.get("a1")
    assert healed is not None and healed.latency_ms == 12.5  # no new latency: the old one stays
