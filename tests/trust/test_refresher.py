"""Stored scores follow evidence in passes: many tasks of one agent cost one rescore per pass."""

from __future__ import annotations

from datetime import UTC, datetime

from a2a_gateway.trust.models import Outcome, TaskEvidence
from a2a_gateway.trust.refresher import ScoreRefresher
from a2a_gateway.trust.service import TrustService
from tests.trust.fakes import FakeRaterStandings, FakeTrustStore

NOW = datetime(2026, 12, 2, tzinfo=UTC)


def evidence(task_id: str, agent_id: str = "a") -> TaskEvidence:
    return TaskEvidence(agent_id, task_id, "buyer", "owner", Outcome.SUCCESS, NOW, latency_ms=10.0)


async def test_many_tasks_of_one_agent_cost_one_rescore_per_pass_and_close_leaves_none_behind() -> None:
    store = FakeTrustStore()
    trust = TrustService(store, FakeRaterStandings(), clock=lambda: NOW)
    scores = ScoreRefresher(trust, interval=3600)
    for n in range(50):
        assert await trust.add_task(evidence(f"t{n}"))
        scores.mark("a")
    assert not await trust.add_task(evidence("t0"))  # a task reported again is not new evidence
    assert store.saves == 0  # nothing rescored on the calls' path
    assert await scores.flush() == 1 and store.saves == 1
    assert store.scores["a"].evidence.successes == 50
    assert await scores.flush() == 0
    await trust.add_task(evidence("t-last", agent_id="b"))
    scores.mark("b")
    await scores.start()
    await scores.close()  # stopping runs one last pass
    assert store.saves == 2 and "b" in store.scores
