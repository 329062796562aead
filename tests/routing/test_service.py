"""Router over in-memory fakes: where an agent is (cached against an injected monotonic clock), which agent
serves a skill or tags, the health evidence of ended calls, and picking relayed tasks up after a restart.
No app, socket or database."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

import pytest

from a2a_gateway.agent import Skill
from a2a_gateway.auth.models import Principal
from a2a_gateway.errors import InvalidParams
from a2a_gateway.registry.service import RegistryService
from a2a_gateway.registry.spec import AgentPatch, AgentRegistration
from a2a_gateway.routing.calls import LOST, RoutedCall
from a2a_gateway.routing.models import Upstream
from a2a_gateway.routing.service import LOOKUP_TTL_SECONDS, RELAY_SKILL_PREFIX, Router
from a2a_gateway.tasks.service import TaskService
from tests.factories import Clock
from tests.fakes import (
    FakeAgentRepository,
    FakeAssertions,
    FakeCallLog,
    FakeCardSource,
    FakeEndpointCheck,
    FakeUpstream,
)

OWNER = Principal(id="owner", kind="user", scopes=frozenset({"*"}))


@dataclass
class Monotonic:
    """A monotonic clock (seconds) that tests move by hand."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    """A router over a registry, both on fakes."""

    repo: FakeAgentRepository = field(default_factory=FakeAgentRepository)
    clock: Clock = field(default_factory=Clock)
    monotonic: Monotonic = field(default_factory=Monotonic)
    upstream: FakeUpstream = field(default_factory=FakeUpstream)
    calls: FakeCallLog = field(default_factory=FakeCallLog)
    registry: RegistryService = field(init=False)
    router: Router = field(init=False)

    def __post_init__(self) -> None:
        self.registry = RegistryService(self.repo, FakeEndpointCheck(), FakeCardSource(), clock=self.clock)
        self.router = Router(
            self.registry, self.upstream, self.calls, FakeAssertions(), monotonic=self.monotonic
        )

    async def agent(
        self,
        name: str,
        *,
        skills: tuple[str, ...] = ("ocr",),
        tags: tuple[str, ...] = (),
        trust: float = 0.0,
        latency: float | None = None,
        beat: bool = True,
    ) -> str:
        """Register an agent (online unless ``beat`` is False) with server-owned trust and latency."""
        spec = AgentRegistration.model_validate(
            {
                "name": name,
                "endpoint": f"https://{name}.example/a2a",
                "skills": [{"id": s, "name": s, "tags": list(tags)} for s in skills],
            }
        )
        agent = await self.registry.register(OWNER, spec)
        if beat:
            await self.registry.heartbeat(OWNER, agent.id, None, None)
        stored = self.repo.rows[agent.id]
        stored.trust_score, stored.latency_ms = trust, latency
        return agent.id


@pytest.fixture
def world() -> World:
    return World()


# --- lookup ------------------------------------------------------------------------------------------


async def test_lookup_says_where_and_how_to_call_an_agent(world: World) -> None:
    agent_id = await world.agent("ocr")
    stored = world.repo.rows[agent_id]
    stored.protocol_version, stored.streaming = "0.3", False
    assert await world.router.lookup(agent_id) == Upstream(
        "https://ocr.example/a2a", "0.3", False, default_skill="ocr", owner=stored.owner_id
    )


async def test_a_call_of_a_subscription_skill_runs_as_a_subscription(world: World) -> None:
    feed = await world.agent("feed", skills=("quote", "ticks"), tags=("subscription",))
    upstream = await world.router.lookup(feed)
    assert upstream.subscriptions == frozenset({"quote", "ticks"})
    assert (await world.router.skill_for(feed, "ticks")).subscription
    assert (await world.router.skill_for(feed)).subscription  # its default skill is one too
    plain = await world.agent("plain")
    assert not (await world.router.skill_for(plain, "ocr")).subscription


async def test_a_relay_to_an_unknown_agent_is_refused_before_any_task(world: World) -> None:
    with pytest.raises(InvalidParams, match="Unknown agent"):
        await world.router.skill_for("nobody")


async def test_lookups_are_cached_until_the_monotonic_clock_moves_past_the_ttl(world: World) -> None:
    agent_id = await world.agent("ocr")
    first = await world.router.lookup(agent_id)
    await world.registry.update(OWNER, agent_id, AgentPatch(endpoint="https://moved.example/a2a"))
    reads = world.repo.reads
    world.monotonic.now += LOOKUP_TTL_SECONDS - 0.001
    assert await world.router.lookup(agent_id) == first and world.repo.reads == reads
    world.monotonic.now += 0.001
    moved = await world.router.lookup(agent_id)
    assert moved.url == "https://moved.example/a2a" and world.repo.reads == reads + 1


async def test_an_unknown_agent_is_invalid_params_and_not_cached(world: World) -> None:
    for _ in range(2):
        with pytest.raises(InvalidParams) as unknown:
            await world.router.lookup("no-such-agent")
        assert unknown.value.violations == [{"field": "metadata.agentId", "description": "no such agent"}]
    assert world.repo.reads == 2


# --- best_for ----------------------------------------------------------------------------------------


async def test_the_most_trusted_online_agent_offering_the_skill_serves(world: World) -> None:
    await world.agent("offline", trust=99, beat=False)
    await world.agent("other-skill", skills=("translate",), trust=95)
    trusted = await world.agent("trusted", trust=60, latency=500.0)
    await world.agent("fast", trust=59, latency=1.0)
    assert await world.router.best_for("ocr", []) == trusted


async def test_a_degraded_agent_is_passed_over(world: World) -> None:
    failing = await world.agent("failing", trust=90)
    healthy = await world.agent("healthy", trust=10)
    world.repo.rows[failing].call_failing = True
    assert await world.router.best_for("ocr", []) == healthy
    await world.registry.heartbeat(OWNER, healthy, "degraded", None)  # said so itself
    with pytest.raises(InvalidParams):
        await world.router.best_for("ocr", [])


async def test_among_equally_trusted_agents_latency_then_the_latest_heartbeat_decides(world: World) -> None:
    slow = await world.agent("slow", trust=50, latency=300.0)
    quick = await world.agent("quick", trust=50, latency=40.0)
    assert await world.router.best_for("ocr", []) == quick
    world.repo.rows[slow].latency_ms = world.repo.rows[quick].latency_ms = None
    world.clock.now += timedelta(seconds=5)
    await world.registry.heartbeat(OWNER, slow, None, None)
    assert await world.router.best_for("ocr", []) == slow
    world.clock.now += timedelta(seconds=5)
    await world.registry.heartbeat(OWNER, quick, None, None)
    assert await world.router.best_for("ocr", []) == quick


async def test_tags_must_all_match_the_agent_or_its_skills(world: World) -> None:
    await world.agent("nlp-only", skills=("summarize",), tags=("nlp",), trust=90)
    both = await world.agent("both", skills=("translate",), tags=("nlp", "translate"), trust=10)
    assert await world.router.best_for(None, ["NLP", "translate"]) == both
    assert await world.router.best_for("translate", ["nlp"]) == both


@pytest.mark.parametrize(
    ("skill_id", "tags", "named"),
    [("ocr", [], "skill ocr"), (None, ["vision", "pdf"], "skill tags vision, pdf")],
)
async def test_no_match_is_invalid_params_naming_what_was_asked(
    world: World, skill_id: str | None, tags: list[str], named: str
) -> None:
    await world.agent("asleep", skills=("ocr",), tags=("vision", "pdf"), beat=False)
    await world.agent("other", skills=("translate",))
    with pytest.raises(InvalidParams) as none:
        await world.router.best_for(skill_id, tags)
    assert none.value.message == f"No online agent offers {named}"


# --- health evidence -----------------------------------------------------------------------------------


def routed(task_id: str, agent_id: str, **extra: Any) -> RoutedCall:
    return RoutedCall(
        task_id=task_id, requester="caller", agent_id=agent_id, skill_id=None, started_at=Clock().now, **extra
    )


async def test_ended_calls_are_health_evidence_but_cancels_and_lost_calls_are_not(world: World) -> None:
    agent_id = await world.agent("flaky")
    for outcome in (None, "canceled", LOST) * 3:
        world.router.settle(routed(f"t-{outcome}", agent_id, outcome=outcome))
    await world.router.close()
    assert world.repo.health_writes == []
    for n in range(3):
        world.router.settle(routed(f"t{n}", agent_id, outcome="unreachable"))
    world.router.settle(routed("t-ok", agent_id, outcome="completed", first_response_ms=12.0))
    await world.router.release()
    assert world.repo.rows[agent_id].call_failing and world.repo.rows[agent_id].latency_ms == 12.0
    assert world.upstream.closed


async def test_a_call_record_is_queued_as_it_stands(world: World) -> None:
    call = routed("t1", "a1")
    world.router.record(call)
    call.upstream_task_id = "up-1"
    world.router.record(call)
    assert [c.upstream_task_id for c in world.calls.recorded] == [None, "up-1"]


# --- recover -------------------------------------------------------------------------------------------


class Tasks:
    """Stands in for the task service at start-up: adopts what ``adopts`` says, fails the rest."""

    def __init__(self, adopts: dict[str, bool | Exception]) -> None:
        self.adopts = adopts
        self.adopted: list[tuple[str, str, Skill]] = []
        self.kept: list[str] | None = None

    async def adopt(self, owner: str, task_id: str, skill: Skill) -> bool:
        self.adopted.append((owner, task_id, skill))
        answer = self.adopts[task_id]
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def recover(self, keep: list[str]) -> int:
        self.kept = list(keep)
        return 7


async def test_recover_adopts_calls_with_an_upstream_task_and_marks_the_others_lost(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    agent_id = await world.agent("worker")
    gone = await world.agent("gone")
    await world.registry.delete(OWNER, gone)
    start = Clock().now
    records = {
        "resumed": routed("resumed", agent_id, upstream_task_id="up-1"),
        "never-answered": routed("never-answered", agent_id),
        "agent-deleted": routed("agent-deleted", gone, upstream_task_id="up-2"),
        "task-over": routed("task-over", agent_id, upstream_task_id="up-3"),
        "adopt-crashed": routed("adopt-crashed", agent_id, upstream_task_id="up-4"),
        "finished": routed("finished", agent_id, upstream_task_id="up-5", outcome="completed"),
    }
    for n, call in enumerate(records.values()):
        call.started_at = start + timedelta(seconds=n)
    world.calls = FakeCallLog(records.values())
    world.router = Router(
        world.registry, world.upstream, world.calls, FakeAssertions(), monotonic=world.monotonic
    )
    tasks = Tasks({"resumed": True, "task-over": False, "adopt-crashed": RuntimeError("boom")})

    with caplog.at_level(logging.ERROR, logger="a2a_gateway.routing.service"):
        resumed, failed = await world.router.recover(cast(TaskService, tasks))

    assert (resumed, failed) == (1, 7) and tasks.kept == ["resumed"]
    assert [(owner, task_id) for owner, task_id, _ in tasks.adopted] == [
        ("caller", "resumed"),
        ("caller", "task-over"),
        ("caller", "adopt-crashed"),
    ]
    skill = tasks.adopted[0][2]
    assert skill.id == RELAY_SKILL_PREFIX + agent_id and skill.resumable
    assert [c.task_id for c in await world.calls.unfinished()] == ["resumed"]
    for task_id in ("never-answered", "agent-deleted", "task-over", "adopt-crashed"):
        lost = world.calls.rows[task_id]
        assert lost.outcome == LOST and lost.finished_at is not None, task_id
    assert world.calls.rows["finished"].outcome == "completed"
    assert [r.message for r in caplog.records] == ["could not resume a relayed task"]


async def test_concurrent_lookups_share_one_read(world: World) -> None:
    agent_id = await world.agent("ocr")
    reads = world.repo.reads
    found = await asyncio.gather(*(world.router.lookup(agent_id) for _ in range(50)))
    assert len(set(found)) == 1 and world.repo.reads == reads + 1
    # Expired under load: still one read for every caller, not one each (the proxy's latency tail).
    world.monotonic.now += LOOKUP_TTL_SECONDS
    await asyncio.gather(*(world.router.lookup(agent_id) for _ in range(50)))
    assert world.repo.reads == reads + 2


async def test_an_entry_past_half_its_life_is_refreshed_while_callers_keep_using_it(world: World) -> None:
    agent_id = await world.agent("ocr")
    first = await world.router.lookup(agent_id)
    await world.registry.update(OWNER, agent_id, AgentPatch(endpoint="https://moved.example/a2a"))
    reads = world.repo.reads
    world.monotonic.now += LOOKUP_TTL_SECONDS / 2
    assert await world.router.lookup(agent_id) == first  # answered from the cache at once
    await world.router.release()  # waits for the background read
    assert world.repo.reads == reads + 1
    assert (await world.router.lookup(agent_id)).url == "https://moved.example/a2a"


async def test_a_deleted_agent_is_forgotten_when_its_entry_is_read_again(world: World) -> None:
    agent_id = await world.agent("ocr")
    await world.router.lookup(agent_id)
    await world.registry.delete(OWNER, agent_id)
    world.monotonic.now += LOOKUP_TTL_SECONDS
    with pytest.raises(InvalidParams, match="Unknown agent"):
        await world.router.lookup(agent_id)
