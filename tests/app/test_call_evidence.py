"""Routing's call-ended listener turns each ended relayed call into trust evidence.

The router hands over what it knew of the agent when it relayed (owner, priced), so the listener reads
neither the registry nor, for a free call, the ledger; a call read back from the store carries neither
and the agent is read. Fakes stand in for the services the listener is given.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from a2a_gateway.app.ended_calls import CallEvidence
from a2a_gateway.errors import NotFound
from a2a_gateway.routing.calls import REPLIED, RoutedCall
from a2a_gateway.trust.models import TaskEvidence

AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@dataclass
class Agent:
    owner_id: str
    price: int

    def price_of(self, skill_id: str | None) -> int:
        return self.price


@dataclass
class Hold:
    price: int
    promo: int


@dataclass
class Fakes:
    agents: dict[str, Agent] = field(default_factory=dict)
    holds: dict[str, Hold] = field(default_factory=dict)
    registry_reads: list[str] = field(default_factory=list)
    hold_reads: list[str] = field(default_factory=list)
    evidence: list[TaskEvidence] = field(default_factory=list)
    marked: list[str] = field(default_factory=list)

    async def get(self, agent_id: str) -> Agent:
        self.registry_reads.append(agent_id)
        if agent_id not in self.agents:
            raise NotFound("no such agent")
        return self.agents[agent_id]

    async def hold_of(self, task_id: str) -> Hold | None:
        self.hold_reads.append(task_id)
        return self.holds.get(task_id)

    async def add_task(self, evidence: TaskEvidence) -> bool:
        self.evidence.append(evidence)
        return True

    def mark(self, agent_id: str) -> None:
        self.marked.append(agent_id)


def _listener(fakes: Fakes) -> CallEvidence:
    any_fakes = cast(Any, fakes)
    return CallEvidence(any_fakes, any_fakes, any_fakes, any_fakes)


def _call(task_id: str, **known: Any) -> RoutedCall:
    return RoutedCall(task_id=task_id, requester="buyer", agent_id="a1", skill_id="echo", started_at=AT,
                      finished_at=AT, first_response_ms=12.0, outcome=REPLIED, **known)  # fmt: skip


def test_a_relayed_call_is_evidence_without_reading_the_registry_and_a_free_one_without_the_ledger() -> None:
    fakes = Fakes(holds={"t-paid": Hold(price=2, promo=0)})
    listener = _listener(fakes)

    async def scenario() -> None:
        await listener.call_ended(_call("t-paid", agent_owner="seller", priced=True))
        await listener.call_ended(_call("t-free", agent_owner="seller", priced=False))

    asyncio.run(scenario())
    assert fakes.registry_reads == []
    assert fakes.hold_reads == ["t-paid"]
    paid, free = fakes.evidence
    assert (paid.agent_owner, paid.credit_weight) == ("seller", 1.0)  # paid with purchased credits
    assert (free.agent_owner, free.credit_weight) == ("seller", 0.25)
    assert fakes.marked == ["a1", "a1"]


def test_a_call_read_back_from_the_store_reads_its_agent_and_a_deleted_agent_gets_nothing() -> None:
    fakes = Fakes(agents={"a1": Agent("seller", 2)}, holds={"t1": Hold(price=2, promo=2)})
    listener = _listener(fakes)

    async def scenario() -> None:
        await listener.call_ended(_call("t1"))
        del fakes.agents["a1"]
        await listener.call_ended(_call("t2"))

    asyncio.run(scenario())
    assert fakes.registry_reads == ["a1", "a1"]
    [evidence] = fakes.evidence
    assert (evidence.task_id, evidence.agent_owner, evidence.credit_weight) == ("t1", "seller", 0.25)
