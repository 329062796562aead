"""Deadlines with an injected sleep that ends only when the test says: a task still running at its deadline
expires, a cleared or replaced deadline never fires, and closing cancels them all. No real waiting."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from a2a_gateway.routing.deadlines import Deadlines
from tests.fakes import ManualSleep


class Tasks:
    """Stands in for the task service: records each expiry and says whether the task was still running."""

    def __init__(self, running: bool = True) -> None:
        self.running = running
        self.expired: list[tuple[str, str, str]] = []
        self.changed = asyncio.Event()

    async def expire(self, owner: str, task_id: str, reason: str) -> bool:
        self.expired.append((owner, task_id, reason))
        self.changed.set()
        return self.running

    def is_live(self, task_id: str) -> bool:
        return True

    async def until_expired(self, count: int) -> None:
        while len(self.expired) < count:
            self.changed.clear()
            await self.changed.wait()


async def settled(condition: Callable[[], bool]) -> None:
    """Let the loop run what it has scheduled (done callbacks, cancellations) until ``condition`` holds."""
    for _ in range(100):
        if condition():
            return
        await asyncio.sleep(0)  # a turn of the loop, not a wait on time
    raise AssertionError("the condition never held")


async def turns(count: int = 5) -> None:
    """Let the loop run a few turns (callbacks scheduled meanwhile run too)."""
    for _ in range(count):
        await asyncio.sleep(0)


@pytest.fixture
def sleep() -> ManualSleep:
    return ManualSleep()


@pytest.fixture
def tasks() -> Tasks:
    return Tasks()


@pytest.fixture
async def deadlines(tasks: Tasks, sleep: ManualSleep) -> Deadlines:
    return Deadlines(tasks, sleep=sleep)


async def test_a_task_expires_when_its_time_is_up_and_not_before(
    deadlines: Deadlines, tasks: Tasks, sleep: ManualSleep
) -> None:
    deadlines.set("alice", "t1", 30)
    await sleep.until_asleep(1)
    assert sleep.pending() == [30] and deadlines.pending() == 1 and tasks.expired == []
    assert sleep.wake() == 1
    await tasks.until_expired(1)
    assert tasks.expired == [("alice", "t1", "The task timed out after 30 s")]
    await settled(lambda: deadlines.pending() == 0)


async def test_a_fractional_limit_is_named_as_given(
    deadlines: Deadlines, tasks: Tasks, sleep: ManualSleep
) -> None:
    deadlines.set("alice", "t1", 1.5)
    await sleep.until_asleep(1)
    sleep.wake()
    await tasks.until_expired(1)
    assert tasks.expired[0][2] == "The task timed out after 1.5 s"


async def test_a_task_that_already_stopped_is_left_alone(sleep: ManualSleep) -> None:
    stopped = Tasks(running=False)
    deadlines = Deadlines(stopped, sleep=sleep)
    deadlines.set("alice", "t1", 5)
    await sleep.until_asleep(1)
    sleep.wake()
    await stopped.until_expired(1)
    await settled(lambda: deadlines.pending() == 0)
    assert sleep.pending() == []


async def test_a_cleared_deadline_never_fires(deadlines: Deadlines, tasks: Tasks, sleep: ManualSleep) -> None:
    deadlines.set("alice", "t1", 30)
    deadlines.set("alice", "t2", 30)
    await sleep.until_asleep(2)
    deadlines.clear("t1")
    deadlines.clear("unknown")  # clearing a task without a deadline is harmless
    await sleep.until_asleep(1)
    assert deadlines.pending() == 1
    sleep.wake()
    await tasks.until_expired(1)
    assert [task_id for _, task_id, _ in tasks.expired] == ["t2"]


async def test_setting_a_deadline_again_replaces_the_first(
    deadlines: Deadlines, tasks: Tasks, sleep: ManualSleep
) -> None:
    deadlines.set("alice", "t1", 30)
    await sleep.until_asleep(1)
    deadlines.set("alice", "t1", 60)
    # The first timer ends (cancelled) after the second one started; it must not drop the second.
    await settled(lambda: sleep.pending() == [60])
    await turns()  # the first timer's done callback runs meanwhile
    assert deadlines.pending() == 1
    sleep.wake()
    await tasks.until_expired(1)
    assert tasks.expired == [("alice", "t1", "The task timed out after 60 s")]


async def test_close_cancels_every_deadline(deadlines: Deadlines, tasks: Tasks, sleep: ManualSleep) -> None:
    for task_id in ("t1", "t2", "t3"):
        deadlines.set("alice", task_id, 30)
    await sleep.until_asleep(3)
    await deadlines.close()
    assert deadlines.pending() == 0 and sleep.pending() == [] and sleep.wake() == 0
    assert tasks.expired == []


async def test_a_failing_expiry_is_logged_not_lost(
    sleep: ManualSleep, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(Tasks):
        async def expire(self, owner: str, task_id: str, reason: str) -> bool:
            await super().expire(owner, task_id, reason)
            raise RuntimeError("store down")

    broken = Broken()
    deadlines = Deadlines(broken, sleep=sleep)
    deadlines.set("alice", "t1", 5)
    await sleep.until_asleep(1)
    sleep.wake()
    await broken.until_expired(1)
    await settled(lambda: deadlines.pending() == 0)
    await turns()
    assert any(r.message == "expiring a task failed" and r.taskId == "t1" for r in caplog.records)


async def test_a_task_that_ends_first_drops_its_deadline(sleep: ManualSleep) -> None:
    from a2a_gateway.agent import AgentDefinition, ArtifactChunk, skill
    from a2a_gateway.protocol import v1
    from a2a_gateway.tasks.broker import TaskEventBroker
    from a2a_gateway.tasks.service import TaskService
    from tests.factories import Clock
    from tests.fakes import FakeTaskRepository

    @skill("quick", "Quick", "Done at once")
    async def quick(ctx):  # type: ignore[no-untyped-def]
        yield ArtifactChunk.of_text("done")

    service = TaskService(
        AgentDefinition(name="A", description="d", skills=[quick]),
        FakeTaskRepository(),
        TaskEventBroker(),
        clock=Clock(),
    )
    deadlines = Deadlines(service, sleep=sleep)
    service.on_end(deadlines.clear)
    message = v1.Message(message_id="m", role=v1.Role.USER, parts=[v1.Part(text="go")])
    started = await service.send(
        "alice",
        v1.SendMessageRequest(
            message=message, configuration=v1.SendMessageConfiguration(return_immediately=True)
        ),
        streaming=False,
    )
    assert started.task is not None
    deadlines.set("alice", started.task.id, 3600)
    await service.get("alice", started.task.id, None)
    await settled(lambda: deadlines.pending() == 0)  # the task ended: its hour-long timer is gone
    await settled(lambda: sleep.pending() == [])
    await service.shutdown()


async def test_a_task_that_ended_before_its_deadline_was_set_gets_none(sleep: ManualSleep) -> None:
    class Ended(Tasks):
        def is_live(self, task_id: str) -> bool:
            return False

    deadlines = Deadlines(Ended(), sleep=sleep)
    deadlines.set("alice", "t1", 3600)
    assert deadlines.pending() == 0 and sleep.pending() == []
