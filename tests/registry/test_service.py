"""RegistryService over in-memory fakes: registration and card import, owner checks, edits, deletion,
heartbeats against an injected clock, discovery, and call health (degraded, healed, latency), with no app,
socket or database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from a2a_gateway.auth.models import Principal
from a2a_gateway.errors import InvalidParams, NotFound
from a2a_gateway.protocol import v1
from a2a_gateway.registry import health
from a2a_gateway.registry.models import Agent, DiscoveryQuery
from a2a_gateway.registry.service import RegistryService
from a2a_gateway.registry.spec import AgentPatch, AgentRegistration
from tests.factories import Clock
from tests.fakes import FakeAgentRepository, FakeCardSource, FakeEndpointCheck

ALICE = Principal(id="alice", kind="user", scopes=frozenset({"*"}))
BOB = Principal(id="bob", kind="user", scopes=frozenset({"*"}))
ENDPOINT = "https://agent.example/a2a"
REFUSED = "http://10.0.0.1/a2a"
CARD_URL = "https://agent.example/.well-known/agent-card.json"


@dataclass
class Monotonic:
    """A monotonic clock (seconds) that tests move by hand."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Registry:
    """The service and the fakes behind it."""

    repo: FakeAgentRepository = field(default_factory=FakeAgentRepository)
    endpoints: FakeEndpointCheck = field(default_factory=lambda: FakeEndpointCheck(refused=[REFUSED]))
    cards: FakeCardSource = field(default_factory=FakeCardSource)
    clock: Clock = field(default_factory=Clock)
    monotonic: Monotonic = field(default_factory=Monotonic)
    service: RegistryService = field(init=False)

    def __post_init__(self) -> None:
        self.service = RegistryService(
            self.repo,
            self.endpoints,
            self.cards,
            offline_after_seconds=120,
            clock=self.clock,
            monotonic=self.monotonic,
        )

    async def register(self, owner: Principal = ALICE, **extra: Any) -> Agent:
        return await self.service.register(owner, registration(**extra))

    def stored(self, agent_id: str) -> Agent:
        return self.repo.rows[agent_id]

    async def status(self, agent_id: str) -> str:
        return (await self.service.get(agent_id)).status(self.clock(), self.service.offline_after_seconds)


@pytest.fixture
def reg() -> Registry:
    return Registry()


def registration(**extra: Any) -> AgentRegistration:
    body: dict[str, Any] = {
        "name": "Summarizer",
        "description": "Summarizes text",
        "endpoint": ENDPOINT,
        "skills": [{"id": "summarize", "name": "Summarize", "tags": ["nlp"]}],
        "tags": ["ai"],
        "category": "language",
        "metadata": {"region": "eu"},
        "pricePerTask": 10,
    }
    body.update(extra)
    return AgentRegistration.model_validate(body)


def card(
    *interfaces: v1.AgentInterface, skills: list[dict[str, Any]] | None = None, **extra: Any
) -> v1.AgentCard:
    body: dict[str, Any] = {
        "name": "Card agent",
        "description": "From its card",
        "supportedInterfaces": [i.model_dump(by_alias=True, exclude_none=True) for i in interfaces],
        "version": "1.0.0",
        "capabilities": {"streaming": False},
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "skills": [{"id": "translate", "name": "Translate", "description": "Translates", "tags": ["nlp"]}]
        if skills is None
        else skills,
    }
    body.update(extra)
    return v1.AgentCard.model_validate(body)


def rpc(url: str, version: str = "1.0", binding: str = "JSONRPC") -> v1.AgentInterface:
    return v1.AgentInterface(url=url, protocol_version=version, protocol_binding=binding)


# --- registration ------------------------------------------------------------------------------------


async def test_register_stores_the_agent_for_its_owner(reg: Registry) -> None:
    agent = await reg.register()
    assert agent.owner_id == "alice" and agent.name == "Summarizer" and agent.price_per_task == 10
    assert agent.created_at == agent.updated_at == reg.clock.now and agent.protocol_version == "1.0"
    assert reg.stored(agent.id) == agent and reg.endpoints.checked == [ENDPOINT]
    # Server-owned state starts empty: no heartbeat yet, so offline; no trust.
    assert await reg.status(agent.id) == "offline" and agent.trust_score == 42.5
    assert [a.id for a in await reg.service.mine(ALICE)] == [agent.id]
    assert await reg.service.mine(BOB) == []


async def test_register_refuses_a_forbidden_endpoint_and_stores_nothing(reg: Registry) -> None:
    with pytest.raises(InvalidParams) as refused:
        await reg.register(endpoint=REFUSED)
    assert refused.value.violations[0]["field"] == "endpoint" and reg.repo.rows == {}


async def test_import_card_takes_the_1_0_json_rpc_interface_and_the_cards_skills(reg: Registry) -> None:
    reg.cards.cards[CARD_URL] = card(
        rpc("https://agent.example/grpc", binding="GRPC"),
        rpc("https://agent.example/v03", "0.3.0"),
        rpc("https://agent.example/v1", "1.0"),
    )
    agent = await reg.service.import_card(ALICE, CARD_URL, AgentPatch(name="Renamed", tags=["x"]))
    assert agent.endpoint == "https://agent.example/v1" and agent.protocol_version == "1.0"
    assert agent.name == "Renamed" and agent.description == "From its card" and agent.tags == ["x"]
    assert [(s.id, s.tags) for s in agent.skills] == [("translate", ["nlp"])]
    assert agent.card_url == CARD_URL and agent.streaming is False and agent.owner_id == "alice"
    assert reg.stored(agent.id) == agent and reg.endpoints.checked == ["https://agent.example/v1"]


async def test_import_card_falls_back_to_0_3_and_a_default_skill(reg: Registry) -> None:
    reg.cards.cards[CARD_URL] = card(rpc("https://agent.example/v03", "0.3.0"), skills=[])
    agent = await reg.service.import_card(ALICE, CARD_URL, AgentPatch())
    assert agent.protocol_version == "0.3" and agent.endpoint == "https://agent.example/v03"
    assert [(s.id, s.name) for s in agent.skills] == [("default", "Card agent")]


@pytest.mark.parametrize(
    "published",
    [
        pytest.param(lambda: card(rpc("https://agent.example/grpc", binding="GRPC")), id="no-json-rpc"),
        pytest.param(lambda: card(rpc("https://agent.example/v2", "2.0")), id="unknown-version"),
        pytest.param(lambda: None, id="not-published"),
    ],
)
async def test_import_card_without_a_usable_card_is_refused_and_stores_nothing(
    reg: Registry, published: Any
) -> None:
    found = published()
    if found is not None:
        reg.cards.cards[CARD_URL] = found
    with pytest.raises(InvalidParams) as refused:
        await reg.service.import_card(ALICE, CARD_URL, AgentPatch())
    assert refused.value.violations[0]["field"] == "cardUrl" and reg.repo.rows == {}


async def test_import_card_behind_a_forbidden_endpoint_is_refused(reg: Registry) -> None:
    reg.cards.cards[CARD_URL] = card(rpc(REFUSED))
    with pytest.raises(InvalidParams) as refused:
        await reg.service.import_card(ALICE, CARD_URL, AgentPatch())
    assert refused.value.violations[0]["field"] == "endpoint" and reg.repo.rows == {}


@pytest.mark.parametrize(
    "published",
    [
        pytest.param(
            lambda: card(rpc(ENDPOINT), skills=[{"id": "s", "name": "A", "description": ""}] * 2),
            id="duplicate-skill-ids",
        ),
        pytest.param(
            lambda: card(rpc(ENDPOINT), skills=[{"id": "", "name": "A", "description": ""}]), id="no-skill-id"
        ),
        pytest.param(lambda: card(rpc(ENDPOINT), name=""), id="no-name"),
        pytest.param(lambda: card(rpc("ftp://agent.example/a2a")), id="not-http"),
        pytest.param(lambda: card(rpc("https://user:secret@agent.example/a2a")), id="credentials-in-url"),
    ],
)
async def test_a_card_the_registry_cannot_hold_is_invalid_params_not_a_crash(
    reg: Registry, published: Any
) -> None:
    reg.cards.cards[CARD_URL] = published()
    with pytest.raises(InvalidParams) as refused:
        await reg.service.import_card(ALICE, CARD_URL, AgentPatch())
    assert refused.value.violations and reg.repo.rows == {}
    assert "secret" not in refused.value.message and "secret" not in str(refused.value.violations)


# --- owner checks, edits, deletion ---------------------------------------------------------------------


async def test_anyone_reads_only_the_owner_changes(reg: Registry) -> None:
    agent = await reg.register()
    assert (await reg.service.get(agent.id)).id == agent.id
    attempts = [
        reg.service.owned(BOB, agent.id),
        reg.service.update(BOB, agent.id, AgentPatch(name="Mine now")),
        reg.service.replace(BOB, agent.id, registration(name="Mine now")),
        reg.service.heartbeat(BOB, agent.id, "online", None),
        reg.service.delete(BOB, agent.id),
    ]
    for attempt in attempts:
        with pytest.raises(NotFound):
            await attempt
    assert reg.stored(agent.id) == agent
    with pytest.raises(NotFound):
        await reg.service.get("no-such-agent")


async def test_a_per_agent_key_owns_its_own_agent_only(reg: Registry) -> None:
    first, second = await reg.register(), await reg.register(name="Second")
    key = Principal(id="alice", kind="user", scopes=frozenset({"*"}), key_kind="agent", agent_id=first.id)
    changed = await reg.service.update(key, first.id, AgentPatch(description="by its key"))
    assert changed.description == "by its key"
    for attempt in (
        reg.service.update(key, second.id, AgentPatch(description="not its agent")),
        reg.service.heartbeat(key, second.id, None, None),
        reg.service.delete(key, second.id),
    ):
        with pytest.raises(NotFound):
            await attempt
    assert reg.stored(second.id) == second


async def test_update_changes_the_named_fields_and_rechecks_the_endpoint(reg: Registry) -> None:
    agent = await reg.register()
    reg.stored(agent.id).trust_score = 70.0  # server-owned: an edit keeps it
    reg.clock.now += timedelta(minutes=1)
    patch = AgentPatch.model_validate(
        {"name": "Better", "endpoint": "https://new.example", "pricePerTask": 3}
    )
    changed = await reg.service.update(ALICE, agent.id, patch)
    assert (changed.name, changed.endpoint, changed.price_per_task) == ("Better", "https://new.example", 3)
    assert changed.description == "Summarizes text" and changed.metadata == {"region": "eu"}
    assert changed.updated_at == reg.clock.now and changed.created_at == agent.created_at
    assert changed.trust_score == 70.0 and reg.stored(agent.id) == changed
    assert reg.endpoints.checked[-1] == "https://new.example"
    with pytest.raises(InvalidParams):
        await reg.service.update(ALICE, agent.id, AgentPatch(endpoint=REFUSED, name="Worse"))
    assert reg.stored(agent.id) == changed


async def test_delete_removes_the_agent_and_its_call_health(reg: Registry) -> None:
    agent = await reg.register()
    await reg.service.record_outcome(agent.id, True, 5.0)
    assert reg.service.health.verdict(agent.id) is not None
    await reg.service.delete(ALICE, agent.id)
    assert reg.repo.rows == {} and reg.service.health.verdict(agent.id) is None
    with pytest.raises(NotFound):
        await reg.service.delete(ALICE, agent.id)


# --- heartbeats and discovery -------------------------------------------------------------------------


class EditedWhileRead(FakeAgentRepository):
    """A repository where the owner's edit lands right after each read (a PATCH racing a heartbeat)."""

    edit: Any = None

    async def get(self, agent_id: str) -> Agent | None:
        found = await super().get(agent_id)
        if self.edit is not None and agent_id in self.rows:
            self.edit(self.rows[agent_id])
        return found


async def test_a_heartbeat_racing_an_edit_keeps_the_edit() -> None:
    reg = Registry(repo=EditedWhileRead())
    agent = await reg.register()
    repo = reg.repo
    assert isinstance(repo, EditedWhileRead)

    def priced(row: Agent) -> None:
        row.price_per_task = 7

    repo.edit = priced
    await reg.service.heartbeat(ALICE, agent.id, "degraded", None)
    stored = reg.stored(agent.id)
    assert stored.price_per_task == 7 and stored.reported_status == "degraded"


async def test_heartbeat_keeps_an_agent_online_until_the_injected_clock_says_otherwise(reg: Registry) -> None:
    agent = await reg.register()
    beat = await reg.service.heartbeat(ALICE, agent.id, None, {"load": 0.5})
    assert beat.last_heartbeat == reg.clock.now and beat.metadata == {"region": "eu", "load": 0.5}
    assert await reg.status(agent.id) == "online"
    reg.clock.now += timedelta(seconds=120)
    assert await reg.status(agent.id) == "online"
    reg.clock.now += timedelta(seconds=1)
    assert await reg.status(agent.id) == "offline"
    await reg.service.heartbeat(ALICE, agent.id, "degraded", None)
    assert await reg.status(agent.id) == "degraded"


async def test_a_heartbeat_with_an_unknown_status_changes_nothing(reg: Registry) -> None:
    agent = await reg.register()
    with pytest.raises(InvalidParams) as refused:
        await reg.service.heartbeat(ALICE, agent.id, "asleep", {"load": 1})
    assert refused.value.violations[0]["field"] == "status" and reg.stored(agent.id) == agent


async def test_discover_asks_the_store_with_the_clock_and_offline_window(reg: Registry) -> None:
    agent = await reg.register()
    await reg.service.heartbeat(ALICE, agent.id, None, None)
    query = DiscoveryQuery(skill_tags=["NLP"], status="online")
    page = await reg.service.discover(query)
    assert [a.id for a in page.agents] == [agent.id] and page.total == 1
    assert reg.repo.discovered == [(query, reg.clock.now, 120)]
    reg.clock.now += timedelta(seconds=121)
    assert (await reg.service.discover(query)).agents == []
    assert [a.id for a in await reg.service.all()] == [agent.id]


# --- call health ---------------------------------------------------------------------------------------


async def test_failing_calls_make_an_agent_degraded_and_successes_heal_it(reg: Registry) -> None:
    agent = await reg.register()
    await reg.service.heartbeat(ALICE, agent.id, None, None)
    for _ in range(health.FAILURES_IN_A_ROW - 1):
        await reg.service.record_outcome(agent.id, False, None)
    assert await reg.status(agent.id) == "online"
    await reg.service.record_outcome(agent.id, False, None)
    assert await reg.status(agent.id) == "degraded"
    degraded = await reg.service.discover(DiscoveryQuery(status="degraded"))
    assert [a.id for a in degraded.agents] == [agent.id]
    # Three failures in ten calls still fail half the window until four successes follow them.
    for _ in range(3):
        await reg.service.record_outcome(agent.id, True, 20.0)
        assert await reg.status(agent.id) == "degraded"
    await reg.service.record_outcome(agent.id, True, 20.0)
    assert await reg.status(agent.id) == "online"
    # A write when the verdict is first known or flips, or the latency first becomes known; no other.
    writes = [(c.failing, c.latency_ms) for _, c in reg.repo.health_writes]
    assert writes == [(False, None), (True, None), (True, 20.0), (False, 20.0)]
    # An owner's edit meanwhile does not overwrite what health stored.
    await reg.service.update(ALICE, agent.id, AgentPatch(name="Edited"))
    assert reg.stored(agent.id).latency_ms == 20.0


async def test_latency_drift_is_stored_at_most_once_per_refresh_interval(reg: Registry) -> None:
    agent = await reg.register()
    await reg.service.record_outcome(agent.id, True, 100.0)
    await reg.service.record_outcome(agent.id, True, 200.0)  # drifted, but stored a moment ago
    assert [c.latency_ms for _, c in reg.repo.health_writes] == [100.0]
    reg.monotonic.now += health.REFRESH_SECONDS
    await reg.service.record_outcome(agent.id, True, 200.0)
    assert [c.latency_ms for _, c in reg.repo.health_writes] == [100.0, 151.0]
    assert reg.stored(agent.id).latency_ms == 151.0 and not reg.stored(agent.id).call_failing


async def test_a_probe_is_stored_and_counts_like_a_call(reg: Registry) -> None:
    agent = await reg.register()
    for _ in range(health.FAILURES_IN_A_ROW):
        await reg.service.record_probe(agent.id, False, None)
    stored = reg.stored(agent.id)
    assert stored.probe_ok is False and stored.probed_at == reg.clock.now and stored.call_failing


async def test_a_probe_result_is_stored_after_the_latency_it_measured(reg: Registry) -> None:
    agent = await reg.register()
    seen: list[float | None] = []
    store_probe = reg.repo.set_probe

    async def watching(agent_id: str, ok: bool, at: datetime) -> None:
        seen.append(reg.repo.rows[agent_id].latency_ms)  # what a reader sees once probe_ok is set
        await store_probe(agent_id, ok, at)

    reg.repo.set_probe = watching  # type: ignore[method-assign]
    await reg.service.record_probe(agent.id, True, 42.0)
    assert seen == [42.0] and reg.stored(agent.id).probe_ok is True


async def test_a_put_resets_what_a_card_import_had_set(reg: Registry) -> None:
    reg.cards.cards[CARD_URL] = card(rpc("https://agent.example/v03", "0.3.0"), skills=[])
    imported = await reg.service.import_card(ALICE, CARD_URL, AgentPatch())
    assert imported.protocol_version == "0.3" and imported.card_url == CARD_URL
    spec = AgentRegistration.model_validate(
        {"name": "Plain", "endpoint": "https://agent.example/v1", "skills": [{"id": "s", "name": "S"}]}
    )
    replaced = await reg.service.replace(ALICE, imported.id, spec)
    assert replaced.protocol_version == "1.0" and replaced.card_url is None and replaced.streaming
    stored = reg.repo.rows[imported.id]
    assert stored.protocol_version == "1.0" and stored.card_url is None
