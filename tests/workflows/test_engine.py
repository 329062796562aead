"""Runs over in-memory fakes: steps start as soon as their dependencies complete, run in parallel, retry
with backoff, time out, ask for input, fail (skipping every transitive dependent), are canceled, pass
outputs on, and a run taken over by a new driver re-attaches instead of sending again. No real waiting:
sleeps end when the test wakes them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from a2a_gateway.errors import Conflict, InsufficientCredits, NotFound
from a2a_gateway.protocol import v1
from a2a_gateway.workflows.models import EventKind, RunStatus, StepStatus
from a2a_gateway.workflows.service import WorkflowService
from tests.fakes import ManualSleep
from tests.workflows.fakes import (
    Clock,
    FakeAgents,
    FakeBudgets,
    FakeStepTasks,
    MemoryLease,
    MemoryWorkflowStore,
    body,
    complete_echo,
    step,
)

OWNER = "user-1"


class World:
    """One service over fakes, and what a test steers it with."""

    def __init__(
        self, prices: dict[str, int] | None = None, available: int = 1_000_000, *, leased: bool = False
    ) -> None:
        self.clock = Clock()
        self.sleep = ManualSleep()
        self.store = MemoryWorkflowStore()
        self.tasks = FakeStepTasks()
        self.budgets = FakeBudgets(available)
        skills = prices or {"work": 0, "slow": 0, "fast": 0, "echo": 0, "ask": 0}
        self.agents = FakeAgents({"agent-a": dict(skills)}, self.budgets)
        # The lease keeper sleeps too: only the tests about leases have one, so the others count only
        # the sleeps of steps.
        self.lease = MemoryLease(self.clock) if leased else None
        self.service = self.new_service()

    def new_service(self) -> WorkflowService:
        return WorkflowService(
            self.store,
            self.tasks,
            self.budgets,
            self.agents,
            lease=self.lease,
            clock=self.clock,
            sleep=self.sleep,
        )

    async def run(self, *steps: dict[str, Any], inputs: Any = None) -> str:
        workflow = await self.service.create(OWNER, body(*steps))
        run = await self.service.execute(OWNER, workflow.id, inputs)
        return run.id

    def kinds(self, run_id: str) -> list[tuple[str, Any]]:
        return [(e.kind.value, e.data.get("step")) for e in self.store.events[run_id]]


async def test_a_step_starts_when_its_own_dependencies_complete_not_in_waves() -> None:
    w = World()
    # 0 -> {1 slow, 2 fast}; 3 needs 1 and 2; 4 needs only 2.
    run_id = await w.run(
        step("work"),
        step("slow", deps=[0]),
        step("fast", deps=[0]),
        step("work", deps=[1, 2]),
        step("work", deps=[2]),
    )
    w.tasks.complete((await w.tasks.get(0)).task.id)
    await w.tasks.until(lambda: len(w.tasks.order) == 3)
    assert sorted(w.tasks.order[1:]) == [(1, 1), (2, 1)]  # the two branches run at once
    w.tasks.complete((await w.tasks.get(2)).task.id)
    await w.tasks.until(lambda: (4, 1) in w.tasks.order)
    # Step 4 started while the slow branch (1) is still running; step 3 waits for it.
    assert not (await w.tasks.get(1)).task.status.state.terminal
    assert (3, 1) not in w.tasks.order
    w.tasks.complete((await w.tasks.get(1)).task.id)
    await w.tasks.until(lambda: (3, 1) in w.tasks.order)
    w.tasks.complete((await w.tasks.get(3)).task.id)
    w.tasks.complete((await w.tasks.get(4)).task.id)
    await w.service.wait(run_id)
    run = await w.service.get_run(OWNER, run_id)
    assert run.status is RunStatus.COMPLETED
    assert [s.status for s in run.steps] == [StepStatus.COMPLETED] * 5
    assert w.tasks.order == [(0, 1), (1, 1), (2, 1), (4, 1), (3, 1)]
    assert w.kinds(run_id)[-1] == ("run_completed", None)


async def test_independent_steps_overlap() -> None:
    w = World()
    run_id = await w.run(step("slow"), step("slow"))
    await w.tasks.until(lambda: len(w.tasks.open()) == 2)  # both running before either ends
    for fake in w.tasks.open():
        w.tasks.complete(fake.task.id)
    await w.service.wait(run_id)
    assert (await w.service.get_run(OWNER, run_id)).status is RunStatus.COMPLETED


async def test_a_failed_attempt_is_retried_after_its_backoff_with_a_new_message() -> None:
    w = World()
    run_id = await w.run(step("work", retryPolicy={"maxRetries": 2, "backoffMs": 1500}))
    w.tasks.fail((await w.tasks.get(0, 1)).task.id)
    await w.tasks.until(lambda: w.sleep.pending() == [1.5])
    run = await w.service.get_run(OWNER, run_id)
    assert run.steps[0].status is StepStatus.RETRY_WAIT
    w.tasks.fail((await w.tasks.get(0, 1)).task.id)  # (already ended: nothing changes)
    w.clock.advance(1.5)
    w.sleep.wake()
    await w.tasks.until(lambda: (0, 2) in w.tasks.order)
    w.tasks.fail((await w.tasks.get(0, 2)).task.id)
    await w.tasks.until(lambda: w.sleep.pending() == [3.0])  # doubled
    w.clock.advance(3)
    w.sleep.wake()
    await w.tasks.until(lambda: (0, 3) in w.tasks.order)
    w.tasks.complete((await w.tasks.get(0, 3)).task.id)
    await w.service.wait(run_id)
    run = await w.service.get_run(OWNER, run_id)
    assert run.status is RunStatus.COMPLETED
    assert run.steps[0].attempt == 3 and len(run.steps[0].task_ids) == 3
    messages = [c.message_id for c in w.tasks.starts]
    assert len(set(messages)) == 3
    assert [k for k, _ in w.kinds(run_id)].count("step_retry") == 2


async def test_rejected_and_canceled_attempts_are_not_retried() -> None:
    w = World()
    run_id = await w.run(step("work", retryPolicy={"maxRetries": 3, "backoffMs": 100}))
    w.tasks.reject((await w.tasks.get(0)).task.id)
    await w.service.wait(run_id)
    run = await w.service.get_run(OWNER, run_id)
    assert run.status is RunStatus.FAILED and run.steps[0].attempt == 1


async def test_final_failure_skips_every_transitive_dependent_and_nothing_stays_pending() -> None:
    w = World()
    # 0 -> 1 -> 2 -> 3, and 4 independent of them.
    run_id = await w.run(step(), step(deps=[0]), step(deps=[1]), step(deps=[2]), step())
    await w.tasks.until(lambda: len(w.tasks.open()) == 2)
    w.tasks.fail((await w.tasks.get(0)).task.id)
    await w.tasks.until(lambda: w.store.runs[run_id].steps[3].status is StepStatus.SKIPPED)
    # The independent branch goes on; the run ends failed once it has.
    assert w.store.runs[run_id].status is RunStatus.RUNNING
    w.tasks.complete((await w.tasks.get(4)).task.id)
    await w.service.wait(run_id)
    run = await w.service.get_run(OWNER, run_id)
    assert run.status is RunStatus.FAILED
    assert [s.status for s in run.steps] == [
        StepStatus.FAILED,
        StepStatus.SKIPPED,
        StepStatus.SKIPPED,
        StepStatus.SKIPPED,
        StepStatus.COMPLETED,
    ]
    assert "1 step(s) failed" in (run.error or "")
    assert [s for _, s in w.kinds(run_id) if _ == "step_skipped"] == [1, 2, 3]
    assert w.budgets.closed == [] or run_id in w.budgets.closed


async def test_cancel_stops_running_steps_and_skips_the_rest() -> None:
    w = World()
    run_id = await w.run(step("slow"), step("slow"), step(deps=[0, 1]))
    await w.tasks.until(lambda: len(w.tasks.open()) == 2)
    canceled = await w.service.cancel(OWNER, run_id)
    assert canceled.status is RunStatus.CANCELED
    assert [s.status for s in canceled.steps] == [
        StepStatus.CANCELED,
        StepStatus.CANCELED,
        StepStatus.SKIPPED,
    ]
    assert all(f.canceled for f in w.tasks.tasks.values())
    assert w.kinds(run_id)[-1] == ("run_canceled", None)
    with pytest.raises(Conflict):
        await w.service.cancel(OWNER, run_id)


async def test_outputs_pass_to_dependents_through_references() -> None:
    w = World()
    w.tasks.auto["echo"] = complete_echo
    run_id = await w.run(
        step("work"),
        step(
            "echo",
            deps=[0],
            input={"price": {"$ref": "steps.0.output#/quote/price"}, "all": {"$ref": "steps.0.text"}},
        ),
    )
    w.tasks.complete((await w.tasks.get(0)).task.id, data={"quote": {"price": 101.5}}, text="hello")
    await w.service.wait(run_id)
    run = await w.service.get_run(OWNER, run_id)
    assert run.status is RunStatus.COMPLETED
    assert (await w.tasks.get(1)).data == {"price": 101.5, "all": "hello"}
    final = w.store.events[run_id][-1]
    assert final.data["outputs"][0]["step"] == 1


async def test_an_unresolvable_reference_fails_the_step_without_retrying() -> None:
    w = World()
    run_id = await w.run(
        step("work"),
        step(
            "echo", deps=[0], input={"x": {"$ref": "steps.0.output#/missing"}}, retryPolicy={"maxRetries": 3}
        ),
    )
    w.tasks.complete((await w.tasks.get(0)).task.id, data={"other": 1})
    await w.service.wait(run_id)
    run = await w.service.get_run(OWNER, run_id)
    assert run.steps[1].status is StepStatus.FAILED and "missing" in (run.steps[1].error or "")
    assert len(w.tasks.tasks) == 1  # step 1 was never sent


async def test_an_attempt_out_of_time_is_canceled_and_retried() -> None:
    w = World()
    run_id = await w.run(step("slow", timeout=20, retryPolicy={"maxRetries": 1, "backoffMs": 100}))
    await w.tasks.until(lambda: w.sleep.pending() == [20.0])
    w.clock.advance(20)
    w.sleep.wake(20.0)
    await w.tasks.until(lambda: w.tasks.of(0, 1).canceled)
    await w.tasks.until(lambda: w.sleep.pending() == [0.1])
    w.clock.advance(0.1)
    w.sleep.wake()
    await w.tasks.until(lambda: (0, 2) in w.tasks.order)
    w.tasks.complete((await w.tasks.get(0, 2)).task.id)
    await w.service.wait(run_id)
    run = await w.service.get_run(OWNER, run_id)
    assert run.status is RunStatus.COMPLETED
    retry = next(e for e in w.store.events[run_id] if e.kind is EventKind.STEP_RETRY)
    assert "timed out after 20 s" in retry.data["error"]


async def test_a_question_pauses_the_step_until_the_reply() -> None:
    w = World()
    run_id = await w.run(step("ask"))
    w.tasks.ask((await w.tasks.get(0)).task.id, "Which ticker?")
    await w.tasks.until(lambda: w.store.runs[run_id].steps[0].status is StepStatus.INPUT_REQUIRED)
    event = w.store.events[run_id][-1]
    assert event.kind is EventKind.STEP_INPUT_REQUIRED and event.data["question"] == "Which ticker?"
    with pytest.raises(NotFound):
        await w.service.reply(OWNER, run_id, 5, [v1.Part(text="BTC")])
    with pytest.raises(NotFound):
        await w.service.reply("someone-else", run_id, 0, [v1.Part(text="BTC")])
    await w.service.reply(OWNER, run_id, 0, [v1.Part(text="BTC")])
    assert (await w.tasks.get(0)).replies[0][0].text == "BTC"
    await w.tasks.until(lambda: w.store.runs[run_id].steps[0].status is StepStatus.RUNNING)
    with pytest.raises(Conflict):
        await w.service.reply(OWNER, run_id, 0, [v1.Part(text="again")])
    w.tasks.complete((await w.tasks.get(0)).task.id)
    await w.service.wait(run_id)
    assert (await w.service.get_run(OWNER, run_id)).status is RunStatus.COMPLETED


async def test_a_new_driver_resumes_without_sending_completed_or_running_steps_again() -> None:
    w = World()
    run_id = await w.run(step("work"), step("slow", deps=[0]), step("work", deps=[1]), step("slow", deps=[0]))
    w.tasks.complete((await w.tasks.get(0)).task.id)
    await w.tasks.until(lambda: len(w.tasks.open()) == 2)
    w.tasks.fail((await w.tasks.get(3)).task.id)  # it has no retries left: fails for good
    await w.tasks.until(lambda: w.store.runs[run_id].steps[3].status is StepStatus.FAILED)
    await w.service.shutdown()  # the process stops: its tasks go on
    sent = len(w.tasks.starts)
    # The running step's task finishes while no gateway drives the run.
    w.tasks.complete((await w.tasks.get(1)).task.id)
    second = w.new_service()
    assert await second.resume() == 1
    await w.tasks.until(lambda: (2, 1) in w.tasks.order)
    assert len(w.tasks.starts) == sent + 1  # only the step that had not started
    w.tasks.complete((await w.tasks.get(2)).task.id)
    await second.wait(run_id)
    run = await second.get_run(OWNER, run_id)
    assert run.status is RunStatus.FAILED  # step 3 failed before the restart
    assert [s.status for s in run.steps[:3]] == [StepStatus.COMPLETED] * 3
    assert len(w.tasks.tasks) == 4
    await second.shutdown()


async def test_two_takeovers_racing_in_one_process_start_one_driver() -> None:
    """The periodic takeover and a caller's reply can both find a run undriven; the lease admits both
    (same holder), so only one of them may start a driver."""
    w = World(leased=True)
    run_id = await w.run(step("slow"), step("work", deps=[0]))
    await w.tasks.until(lambda: len(w.tasks.open()) == 1)
    await w.service.shutdown()
    second = w.new_service()
    taken = await asyncio.gather(second.resume(), second.resume(), second.resume())
    assert sum(taken) == 1 and second.driving() == 1
    w.tasks.complete((await w.tasks.get(0)).task.id)
    await w.tasks.until(lambda: len(w.tasks.starts) == 2)
    w.tasks.complete((await w.tasks.get(1)).task.id)
    await second.wait(run_id)
    assert (await second.get_run(OWNER, run_id)).status is RunStatus.COMPLETED
    assert len(w.tasks.starts) == 2  # each step sent once
    await second.shutdown()


async def test_a_driver_taking_over_a_half_sent_attempt_finds_its_task() -> None:
    """The attempt's task was made but its id not saved: sending the same message again finds it."""
    w = World()
    run_id = await w.run(step("slow"))
    await w.tasks.until(lambda: len(w.tasks.open()) == 1)
    await w.service.shutdown()
    stored = w.store.runs[run_id]
    stored.steps[0].task_id = None  # as if the process died between the send and the save
    stored.steps[0].task_ids.clear()
    second = w.new_service()
    assert await second.resume() == 1
    await w.tasks.until(lambda: len(w.tasks.starts) == 2)
    assert len(w.tasks.tasks) == 1 and w.tasks.starts[0].message_id == w.tasks.starts[1].message_id
    w.tasks.complete((await w.tasks.get(0)).task.id)
    await second.wait(run_id)
    assert (await second.get_run(OWNER, run_id)).status is RunStatus.COMPLETED
    await second.shutdown()


async def test_a_run_driven_by_a_live_lease_is_not_taken_over() -> None:
    w = World(leased=True)
    run_id = await w.run(step("slow"))
    other = w.new_service()
    assert await other.resume() == 0  # the first service holds the lease
    w.clock.advance(31)  # past the lease, which the first service did not renew (its sleep is manual)
    assert await other.resume() == 1
    w.tasks.complete((await w.tasks.get(0)).task.id)
    await other.wait(run_id)
    await w.service.shutdown()
    await other.shutdown()


async def test_the_budget_is_held_at_execute_and_closed_at_the_end() -> None:
    w = World(prices={"work": 30, "slow": 50}, available=100)
    workflow = await w.service.create(OWNER, body(step("work"), step("slow")))
    assert workflow.budget == 80
    run = await w.service.execute(OWNER, workflow.id)
    assert w.budgets.open_budgets == {run.id: 80} and w.budgets.available == 20
    await w.tasks.until(lambda: len(w.tasks.tasks) == 2)
    assert all(c.budget_id == run.id for c in w.tasks.starts)
    with pytest.raises(InsufficientCredits):
        await w.service.execute(OWNER, workflow.id)  # 20 left, 80 needed: nothing starts
    assert len(w.store.runs) == 1 and len(w.tasks.tasks) == 2
    for fake in w.tasks.open():
        w.tasks.complete(fake.task.id)
    await w.service.wait(run.id)
    assert w.budgets.closed == [run.id]


async def test_creation_checks_that_one_run_is_affordable() -> None:
    w = World(prices={"work": 60}, available=100)
    with pytest.raises(InsufficientCredits):
        await w.service.create(OWNER, body(step("work"), step("work")))
    assert w.store.workflows == {}
    w.agents.owners["agent-a"] = OWNER  # one's own agent is free
    free = await w.service.create(OWNER, body(step("work"), step("work")))
    assert free.budget == 0


async def test_events_resume_after_the_last_event_id() -> None:
    w = World()
    run_id = await w.run(step("work"), step("work", deps=[0]))
    w.tasks.complete((await w.tasks.get(0)).task.id)
    await w.tasks.until(lambda: (1, 1) in w.tasks.order)
    seen = [e async for e in _take(await w.service.events(OWNER, run_id), 2)]
    assert [e.seq for e in seen] == [1, 2]
    later = await w.service.events(OWNER, run_id, after_seq=seen[-1].seq)
    w.tasks.complete((await w.tasks.get(1)).task.id)
    rest = [e async for e in later]
    assert rest[0].seq == 3 and rest[-1].kind is EventKind.RUN_COMPLETED
    assert [e.seq for e in rest] == list(range(3, 3 + len(rest)))
    with pytest.raises(NotFound):
        await w.service.events("someone-else", run_id)


async def test_another_users_workflow_and_run_are_not_found() -> None:
    w = World()
    run_id = await w.run(step("work"))
    workflow_id = w.store.runs[run_id].workflow_id
    for call in (
        w.service.get("intruder", workflow_id),
        w.service.execute("intruder", workflow_id),
        w.service.get_run("intruder", run_id),
        w.service.cancel("intruder", run_id),
    ):
        with pytest.raises(NotFound):
            await call
    assert await w.service.list_workflows("intruder") == []
    w.tasks.complete((await w.tasks.get(0)).task.id)
    await w.service.wait(run_id)


async def _take(events: Any, n: int) -> Any:
    count = 0
    async for event in events:
        yield event
        count += 1
        if count == n:
            return


class CommittingStore(MemoryWorkflowStore):
    """Like a database writer: a save, once handed over, commits when ``gate`` opens, whether or not
    its caller is still waiting (canceled meanwhile)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.gate.set()
        self.waiting = 0

    async def save_run(self, run: Any, events: Any, expected_seq: int) -> bool:
        async def commit() -> bool:
            self.waiting += 1
            await self.gate.wait()
            self.waiting -= 1
            return await MemoryWorkflowStore.save_run(self, run, events, expected_seq)

        return await asyncio.shield(asyncio.ensure_future(commit()))


async def test_a_cancel_that_lands_while_a_step_saves_still_cancels_the_run() -> None:
    w = World()
    w.store = CommittingStore()
    w.service = w.new_service()
    run_id = await w.run(step("slow"), step("slow"))
    await w.tasks.until(lambda: len(w.tasks.open()) == 2)
    w.store.gate.clear()
    w.tasks.complete((await w.tasks.get(0)).task.id)  # step 0's save is handed over and waits
    await w.tasks.until(lambda: w.store.waiting == 1)
    canceling = asyncio.create_task(w.service.cancel(OWNER, run_id))  # cancels step tasks mid-save
    await w.tasks.until(
        lambda: (
            w.tasks.tasks and all(f.canceled or f.task.status.state.terminal for f in w.tasks.tasks.values())
        )
    )
    w.store.gate.set()
    canceled = await canceling
    assert canceled.status is RunStatus.CANCELED
    assert w.kinds(run_id)[-1] == ("run_canceled", None)
