"""TrustService over an in-memory store: evidence recorded once per task, every refusal of a rating,
credibility from the rater's standing, decay on read, recent events and history pages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from a2a_gateway.errors import Conflict, Forbidden, InvalidParams, NotFound
from a2a_gateway.protocol import v1
from a2a_gateway.trust.models import Outcome, RatedTask, RaterStanding, TaskEvidence
from a2a_gateway.trust.service import TrustService
from tests.factories import Clock
from tests.trust.fakes import FakeRaterStandings, FakeTrustStore

AGENT = "agent-1"
OWNER = "owner"
ALICE = "alice"
BOB = "bob"


@dataclass
class Trust:
    """The service and the fakes behind it."""

    store: FakeTrustStore = field(default_factory=FakeTrustStore)
    raters: FakeRaterStandings = field(default_factory=FakeRaterStandings)
    clock: Clock = field(default_factory=Clock)
    service: TrustService = field(init=False)

    def __post_init__(self) -> None:
        self.service = TrustService(self.store, self.raters, clock=self.clock, recent_events=3)
        long_ago = self.clock.now - timedelta(days=365)
        for user in (ALICE, BOB, OWNER):
            self.raters.known[user] = RaterStanding(paid_spend_credits=500, account_created_at=long_ago)

    def evidence(
        self, task_id: str, outcome: Outcome = Outcome.SUCCESS, requester: str = ALICE
    ) -> TaskEvidence:
        return TaskEvidence(
            agent_id=AGENT,
            task_id=task_id,
            requester=requester,
            agent_owner=OWNER,
            outcome=outcome,
            at=self.clock.now,
            latency_ms=2000 if outcome is Outcome.SUCCESS else None,
        )


def done(
    task_id: str = "t1", requester: str = ALICE, state: v1.TaskState = v1.TaskState.COMPLETED
) -> RatedTask:
    return RatedTask(task_id=task_id, agent_id=AGENT, requester=requester, agent_owner=OWNER, state=state)


@pytest.fixture
def trust() -> Trust:
    return Trust()


async def test_a_finished_task_is_recorded_and_the_new_score_stored(trust: Trust) -> None:
    result = await trust.service.record_task(trust.evidence("t1"))

    assert result.agent_id == AGENT
    assert result.evidence.successes == 1
    assert result.trust_score > 42.5
    assert trust.store.scores[AGENT] == result


async def test_a_task_reported_twice_counts_once(trust: Trust) -> None:
    first = await trust.service.record_task(trust.evidence("t1"))
    again = await trust.service.record_task(trust.evidence("t1"))
    # a later, different report of the same task does not replace the first either
    other = await trust.service.record_task(trust.evidence("t1", Outcome.AGENT_FAILURE))

    assert list(trust.store.evidence) == ["t1"]
    assert trust.store.evidence["t1"].outcome is Outcome.SUCCESS
    assert again == first
    assert other == first
    assert trust.store.saves == 1
    assert (await trust.service.get(AGENT)).evidence.successes == 1


async def test_the_requester_rates_a_completed_task_once(trust: Trust) -> None:
    await trust.service.record_task(trust.evidence("t1"))

    event = await trust.service.rate(AGENT, "t1", ALICE, rating=5, comment="Excellent work", task_info=done())

    assert event.to_dict()["eventType"] == "rating_received"
    assert (event.rating, event.comment, event.task_id, event.counted) == (5, "Excellent work", "t1", True)
    stored = trust.store.ratings["t1"]
    assert (stored.requester, stored.agent_owner, stored.credibility, stored.at) == (
        ALICE,
        OWNER,
        1.0,
        trust.clock.now,
    )
    assert trust.store.scores[AGENT].evidence.rating_votes == 1
    assert trust.store.scores[AGENT].components.quality > 50

    with pytest.raises(Conflict, match="already been rated"):
        await trust.service.rate(AGENT, "t1", ALICE, rating=1, comment="", task_info=done())
    assert trust.store.ratings["t1"].rating == 5


@pytest.mark.parametrize("bad", [0, 6, -1, 3.5, True, "5", None])
async def test_a_rating_must_be_an_integer_from_1_to_5(trust: Trust, bad: object) -> None:
    with pytest.raises(InvalidParams) as refused:
        await trust.service.rate(AGENT, "t1", ALICE, rating=bad, comment="", task_info=done())
    assert refused.value.violations[0]["field"] == "rating"
    assert trust.store.ratings == {}


@pytest.mark.parametrize("bad", ["x" * 1001, 42, ["text"]])
async def test_a_comment_must_be_short_text(trust: Trust, bad: object) -> None:
    with pytest.raises(InvalidParams) as refused:
        await trust.service.rate(AGENT, "t1", ALICE, rating=4, comment=bad, task_info=done())
    assert refused.value.violations[0]["field"] == "comment"
    assert trust.store.ratings == {}


async def test_no_comment_is_an_empty_one(trust: Trust) -> None:
    event = await trust.service.rate(AGENT, "t1", ALICE, rating=4, comment=None, task_info=done())
    assert event.comment == ""


@pytest.mark.parametrize(
    "task_info",
    [
        None,  # no such task
        RatedTask(
            task_id="t1",
            agent_id="another-agent",
            requester=ALICE,
            agent_owner=OWNER,
            state=v1.TaskState.COMPLETED,
        ),
        RatedTask(
            task_id="t2", agent_id=AGENT, requester=ALICE, agent_owner=OWNER, state=v1.TaskState.COMPLETED
        ),
    ],
)
async def test_an_unknown_task_or_one_of_another_agent_is_not_found(
    trust: Trust, task_info: RatedTask | None
) -> None:
    with pytest.raises(NotFound):
        await trust.service.rate(AGENT, "t1", ALICE, rating=5, comment="", task_info=task_info)
    assert trust.store.ratings == {}


async def test_only_the_tasks_requester_may_rate_it(trust: Trust) -> None:
    with pytest.raises(Forbidden, match="requester"):
        await trust.service.rate(AGENT, "t1", BOB, rating=5, comment="", task_info=done(requester=ALICE))
    with pytest.raises(Forbidden, match="requester"):  # the owner is not the requester either
        await trust.service.rate(AGENT, "t1", OWNER, rating=5, comment="", task_info=done(requester=ALICE))
    assert trust.store.ratings == {}


async def test_an_owner_cannot_rate_a_task_they_sent_their_own_agent(trust: Trust) -> None:
    with pytest.raises(Forbidden, match="owner"):
        await trust.service.rate(AGENT, "t1", OWNER, rating=5, comment="", task_info=done(requester=OWNER))
    assert trust.store.ratings == {}


@pytest.mark.parametrize(
    "state",
    [
        v1.TaskState.FAILED,
        v1.TaskState.CANCELED,
        v1.TaskState.REJECTED,
        v1.TaskState.WORKING,
        v1.TaskState.INPUT_REQUIRED,
        v1.TaskState.SUBMITTED,
    ],
)
async def test_only_a_completed_task_can_be_rated(trust: Trust, state: v1.TaskState) -> None:
    with pytest.raises(Conflict, match="completed") as refused:
        await trust.service.rate(AGENT, "t1", ALICE, rating=5, comment="", task_info=done(state=state))
    assert refused.value.metadata == {"taskState": state.value}
    assert trust.store.ratings == {}


async def test_a_rater_who_never_bought_credits_is_heard_but_carries_no_weight(trust: Trust) -> None:
    """Credibility counts purchased credits spent; the standing port leaves promotional grants out."""
    trust.raters.known[ALICE] = RaterStanding(paid_spend_credits=0, account_created_at=trust.clock.now)

    event = await trust.service.rate(AGENT, "t1", ALICE, rating=1, comment="bad", task_info=done())

    assert event.rating == 1
    assert trust.store.ratings["t1"].credibility == 0.0
    assert trust.store.scores[AGENT].components.quality == 50
    assert trust.store.scores[AGENT].evidence.rating_votes == 0


async def test_credibility_grows_with_paid_spend_and_account_age(trust: Trust) -> None:
    trust.raters.known[ALICE] = RaterStanding(
        paid_spend_credits=50, account_created_at=trust.clock.now - timedelta(days=3.5)
    )
    await trust.service.rate(AGENT, "t1", ALICE, rating=5, comment="", task_info=done())
    assert trust.store.ratings["t1"].credibility == pytest.approx(0.25)

    unknown = "carol"  # no standing at all: no spend, no account date
    await trust.service.rate(
        AGENT, "t2", unknown, rating=5, comment="", task_info=done("t2", requester=unknown)
    )
    assert trust.store.ratings["t2"].credibility == 0.0


async def test_decay_is_applied_when_the_score_is_read(trust: Trust) -> None:
    await trust.service.record_task(trust.evidence("t1"))
    await trust.service.record_task(trust.evidence("t2", requester=BOB))
    stored = trust.store.scores[AGENT]

    trust.clock.now += timedelta(days=30)
    read = await trust.service.get(AGENT)

    assert stored.evidence.n_eff == 2
    assert read.evidence.n_eff == 1
    assert read.trust_score < stored.trust_score
    assert trust.store.scores[AGENT] == stored  # reading writes nothing

    refreshed = await trust.service.refresh(AGENT)  # what a periodic job calls
    assert trust.store.scores[AGENT] == refreshed
    assert refreshed.trust_score == read.trust_score

    trust.clock.now += timedelta(days=200)
    assert (await trust.service.get(AGENT)).trust_score == 42.5


async def test_an_agent_never_seen_scores_the_prior(trust: Trust) -> None:
    result = await trust.service.get("nobody")
    assert (result.agent_id, result.trust_score, result.recent_events) == ("nobody", 42.5, ())


async def test_recent_events_and_history_are_newest_first_in_pages(trust: Trust) -> None:
    for i in range(5):
        await trust.service.record_task(trust.evidence(f"t{i}"))
        trust.clock.now += timedelta(minutes=1)
    await trust.service.record_task(trust.evidence("t5", Outcome.AGENT_FAILURE, requester=BOB))
    trust.clock.now += timedelta(minutes=1)
    await trust.service.rate(AGENT, "t4", ALICE, rating=4, comment="ok", task_info=done("t4"))

    profile = await trust.service.get(AGENT)
    page = await trust.service.history(AGENT, limit=4, offset=1)
    everything = await trust.service.history(AGENT)

    assert [e.id for e in profile.recent_events] == ["rating:t4", "task:t5", "task:t4"]
    assert [e.type for e in profile.recent_events] == ["rating_received", "task_failed", "task_completed"]
    assert [e["id"] for e in profile.to_dict()["recentEvents"]] == ["rating:t4", "task:t5", "task:t4"]
    assert [e.id for e in page] == ["task:t5", "task:t4", "task:t3", "task:t2"]
    assert len(everything) == 7


@pytest.mark.parametrize(
    ("limit", "offset", "field_name"), [(0, 0, "limit"), (101, 0, "limit"), (10, -1, "offset")]
)
async def test_history_pages_are_bounded(trust: Trust, limit: int, offset: int, field_name: str) -> None:
    with pytest.raises(InvalidParams) as refused:
        await trust.service.history(AGENT, limit=limit, offset=offset)
    assert refused.value.violations[0]["field"] == field_name
